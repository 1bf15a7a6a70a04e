//! Topology parsing and validation tests: the shipped files load, and every
//! rejection names the right field path and reason.

use super::*;

const BASE: &str = "
cluster_name: t
defaults: {vnodes: 8}
datacenters:
  - name: dc1
    racks:
      - name: r1
        nodes:
          - {id: a1, client_address: '10.0.0.1:7070', peer_address: '10.0.0.1:7071'}
          - {id: a2, client_address: '10.0.0.2:7070', peer_address: '10.0.0.2:7071', weight: 2.0}
      - name: r2
        nodes:
          - {id: a3, client_address: '10.0.0.3:7070', peer_address: '10.0.0.3:7071', vnodes: 3}
  - name: dc2
    racks:
      - name: r1
        nodes:
          - {id: b1, client_address: '10.0.1.1:7070', peer_address: '10.0.1.1:7071', admin_address: '10.0.1.1:9000'}
keyspaces:
  default:
    replication: {dc1: 3, dc2: 1}
";

fn err_of(yaml: &str) -> TopologyError {
    match Topology::parse("t.yaml", yaml) {
        Ok(_) => panic!("expected an error for:\n{yaml}"),
        Err(e) => e,
    }
}

/// `BASE` with `from` replaced (exactly once) by `to`, and the error it gives.
fn err_with(from: &str, to: &str) -> TopologyError {
    assert_eq!(
        BASE.matches(from).count(),
        1,
        "fixture edit must be unique: {from}"
    );
    err_of(&BASE.replace(from, to))
}

fn assert_err(e: &TopologyError, path: &str, reason_part: &str) {
    assert_eq!(e.file, "t.yaml", "{e}");
    assert_eq!(e.path, path, "{e}");
    assert!(
        e.reason.contains(reason_part),
        "reason {:?} lacks {reason_part:?}",
        e.reason
    );
    assert!(
        e.to_string().starts_with(&format!("t.yaml: {path}: ")),
        "{e}"
    );
}

#[test]
fn base_fixture_parses_and_resolves_defaults() {
    let t = Topology::parse("t.yaml", BASE).unwrap();
    assert_eq!(t.source, "t.yaml");
    let n = t.nodes();
    let ids: Vec<_> = n
        .iter()
        .map(|n| (n.idx.0, n.id.as_str(), n.dc.as_str(), n.rack.as_str()))
        .collect();
    assert_eq!(
        ids,
        [
            (0, "a1", "dc1", "r1"),
            (1, "a2", "dc1", "r1"),
            (2, "a3", "dc1", "r2"),
            (3, "b1", "dc2", "r1")
        ]
    );
    assert_eq!(
        n.iter().map(|n| n.vnodes).collect::<Vec<_>>(),
        [8, 16, 3, 8]
    );
    assert_eq!(n[0].admin_address, "10.0.0.1:7072".parse().unwrap());
    assert_eq!(n[3].admin_address, "10.0.1.1:9000".parse().unwrap());
    assert_eq!(t.node_by_id("a3").unwrap().idx, NodeIdx(2));
    assert!(t.node_by_id("zz").is_none());
    assert_eq!(t.keyspace("default").unwrap().replication["dc1"], 3);
    assert!(t.keyspace("nope").is_none());
    assert_eq!(t.datacenter_names(), ["dc1", "dc2"]);
}

#[test]
fn shipped_files_validate() {
    let dev = Topology::dev();
    assert_eq!(dev.source, "<embedded dev>");
    assert_eq!(dev.cluster_name, "geokv-dev");
    assert_eq!(dev.nodes().len(), 6);
    assert_eq!(dev.keyspace("dc1_only").unwrap().replication.len(), 1);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("topology");
    let dev_file = Topology::load(&root.join("dev.yaml")).unwrap();
    assert_eq!(dev_file.datacenters, dev.datacenters);
    let three = Topology::load(&root.join("three-dc.yaml")).unwrap();
    assert_eq!(three.datacenter_names(), ["us-east", "eu-west", "ap-south"]);
    for dc in &three.datacenters {
        assert_eq!(dc.racks.len(), 3);
        assert!((4..=5).contains(&dc.node_count()));
    }
    assert!(three.nodes().iter().any(|n| n.vnodes == 512));
    assert!(three.source.ends_with("three-dc.yaml"));
}

#[test]
fn load_reports_unreadable_file() {
    let dir = tempfile::tempdir().unwrap();
    let e = Topology::load(&dir.path().join("missing.yaml")).unwrap_err();
    assert!(e.file.ends_with("missing.yaml"));
    assert!(e.reason.contains("cannot read"), "{e}");
    let f = dir.path().join("t.yaml");
    std::fs::write(&f, BASE).unwrap();
    assert_eq!(Topology::load(&f).unwrap().nodes().len(), 4);
}

#[test]
fn rejects_unknown_fields_with_their_path() {
    let e = err_with("id: a3,", "id: a3, rack: r9,");
    assert_err(
        &e,
        "datacenters[0].racks[1].nodes[0].rack",
        "unknown field `rack`",
    );
    let e = err_with("cluster_name: t", "cluster_name: t\nsource: x");
    assert_err(&e, "source", "unknown field `source`");
    let e = err_with(
        "replication: {dc1: 3, dc2: 1}",
        "replication: {dc1: 3, dc2: 1}\n    strategy: simple",
    );
    assert_err(&e, "keyspaces.default.strategy", "unknown field `strategy`");
}

#[test]
fn rejects_unparsable_addresses_with_their_path() {
    let e = err_with(
        "peer_address: '10.0.1.1:7071'",
        "peer_address: 'localhost:7071'",
    );
    assert_err(
        &e,
        "datacenters[1].racks[0].nodes[0].peer_address",
        "invalid socket address",
    );
    let e = err_with(
        "client_address: '10.0.0.2:7070'",
        "client_address: '10.0.0.2'",
    );
    assert_err(
        &e,
        "datacenters[0].racks[0].nodes[1].client_address",
        "invalid socket address",
    );
    let e = err_with(
        "'10.0.0.1:7070', peer_address: '10.0.0.1:7071'",
        "'0.0.0.0:7070', peer_address: '10.0.0.1:7071'",
    );
    assert_err(
        &e,
        "datacenters[0].racks[0].nodes[0].client_address",
        "not an address peers can connect to",
    );
}

#[test]
fn rejects_missing_and_mistyped_fields() {
    let e = err_with("cluster_name: t\n", "");
    assert_err(&e, "(root)", "missing field `cluster_name`");
    let e = err_with("{vnodes: 8}", "{vnodes: many}");
    assert_err(&e, "defaults.vnodes", "invalid type");
    let e = err_of("");
    assert_eq!(e.file, "t.yaml");
}

#[test]
fn rejects_duplicate_node_ids() {
    let e = err_with("id: b1,", "id: a2,");
    assert_err(
        &e,
        "datacenters[1].racks[0].nodes[0].id",
        "duplicate node id 'a2' (also at datacenters[0].racks[0].nodes[1])",
    );
}

#[test]
fn rejects_duplicate_addresses_across_nodes() {
    let e = err_with(
        "peer_address: '10.0.0.3:7071'",
        "peer_address: '10.0.0.1:7071'",
    );
    assert_err(&e, "datacenters[0].racks[1].nodes[0].peer_address", "peer_address 10.0.0.1:7071 is already used by node a1 at datacenters[0].racks[0].nodes[0].peer_address");
    // A peer address colliding with another node's client address.
    let e = err_with(
        "peer_address: '10.0.1.1:7071'",
        "peer_address: '10.0.0.2:7070'",
    );
    assert_err(
        &e,
        "datacenters[1].racks[0].nodes[0].peer_address",
        "already used by node a2 at datacenters[0].racks[0].nodes[1].client_address",
    );
}

#[test]
fn rejects_duplicate_addresses_within_a_node_and_defaulted_admin() {
    let e = err_with(
        "peer_address: '10.0.0.2:7071'",
        "peer_address: '10.0.0.2:7070'",
    );
    assert_err(
        &e,
        "datacenters[0].racks[0].nodes[1].peer_address",
        "already used by node a2 at datacenters[0].racks[0].nodes[1].client_address",
    );
    let e = err_with(
        "admin_address: '10.0.1.1:9000'",
        "admin_address: '10.0.1.1:7071'",
    );
    assert_err(
        &e,
        "datacenters[1].racks[0].nodes[0].admin_address",
        "already used by node b1",
    );
    // Two nodes on one IP: distinct client/peer ports, but both default the admin port.
    let e = err_with(
        "'10.0.0.2:7070', peer_address: '10.0.0.2:7071'",
        "'10.0.0.1:8070', peer_address: '10.0.0.1:8071'",
    );
    assert_err(&e, "datacenters[0].racks[0].nodes[1].admin_address", "defaulted to the client IP and defaults.admin_port) 10.0.0.1:7072 is already used by node a1");
}

#[test]
fn rejects_unknown_datacenter_in_keyspace() {
    let e = err_with("{dc1: 3, dc2: 1}", "{dc1: 3, dc9: 1}");
    assert_err(
        &e,
        "keyspaces.default.replication.dc9",
        "unknown datacenter 'dc9' (known: dc1, dc2)",
    );
}

#[test]
fn rejects_rf_larger_than_the_datacenter() {
    let e = err_with("{dc1: 3, dc2: 1}", "{dc1: 3, dc2: 2}");
    assert_err(
        &e,
        "keyspaces.default.replication.dc2",
        "replication factor 2 exceeds the 1 node(s) of datacenter dc2",
    );
}

#[test]
fn rejects_keyspace_problems() {
    let e = err_with("{dc1: 3, dc2: 1}", "{dc1: 0, dc2: 0}");
    assert_err(&e, "keyspaces.default.replication", "replicates nowhere");
    let e = err_with("  default:\n    replication: {dc1: 3, dc2: 1}\n", "  {}\n");
    assert_err(&e, "keyspaces", "at least one keyspace");
    let e = err_with("  default:", "  'my ks':");
    assert_err(&e, "keyspaces.my ks", "contains ' '");
}

/// A keyspace name is one length byte in a repair record's key
/// (`repair::plan::repair_key`): a longer one made every record of the
/// keyspace unparseable (set aside, never repaired; review Low of stop 23).
#[test]
fn rejects_a_keyspace_name_over_255_bytes() {
    let long = "k".repeat(256);
    let e = err_with("  default:", &format!("  {long}:"));
    assert_err(
        &e,
        &format!("keyspaces.{long}"),
        "256 bytes long; at most 255",
    );
    let fits = BASE.replace("  default:", &format!("  {}:", "k".repeat(255)));
    Topology::parse("t.yaml", &fits).expect("255 bytes fit");
}

#[test]
fn rejects_empty_structure() {
    let e = err_of("cluster_name: t\ndatacenters: []\nkeyspaces: {}\n");
    assert_err(&e, "datacenters", "at least one datacenter");
    let e = err_with("  - name: dc2\n    racks:\n      - name: r1\n        nodes:\n          - {id: b1, client_address: '10.0.1.1:7070', peer_address: '10.0.1.1:7071', admin_address: '10.0.1.1:9000'}\n", "  - name: dc2\n    racks: []\n");
    assert_err(&e, "datacenters[1].racks", "at least one rack");
    let e = err_with("      - name: r2\n        nodes:\n          - {id: a3, client_address: '10.0.0.3:7070', peer_address: '10.0.0.3:7071', vnodes: 3}\n", "      - name: r2\n        nodes: []\n");
    assert_err(&e, "datacenters[0].racks[1].nodes", "at least one node");
}

#[test]
fn rejects_duplicate_dc_and_rack_names() {
    let e = err_with("- name: dc2", "- name: dc1");
    assert_err(
        &e,
        "datacenters[1].name",
        "duplicate datacenter name 'dc1' (also at datacenters[0])",
    );
    let e = err_with("- name: r2", "- name: r1");
    assert_err(
        &e,
        "datacenters[0].racks[1].name",
        "duplicate rack name 'r1' in datacenter dc1",
    );
    // The same rack name in different datacenters is fine (dc2 has r1 too).
    assert!(Topology::parse("t.yaml", BASE).is_ok());
}

#[test]
fn rejects_bad_weight_and_vnodes() {
    let e = err_with("weight: 2.0", "weight: 0.0");
    assert_err(
        &e,
        "datacenters[0].racks[0].nodes[1].weight",
        "weight must be a finite number > 0, got 0",
    );
    let e = err_with("weight: 2.0", "weight: -1");
    assert_err(&e, "datacenters[0].racks[0].nodes[1].weight", "> 0, got -1");
    let e = err_with("weight: 2.0", "weight: .nan");
    assert_err(&e, "datacenters[0].racks[0].nodes[1].weight", "finite");
    let e = err_with("weight: 2.0", "weight: 0.01");
    assert_err(
        &e,
        "datacenters[0].racks[0].nodes[1].weight",
        "gives 0 vnodes",
    );
    let e = err_with("weight: 2.0", "weight: 2.0, vnodes: 4");
    assert_err(
        &e,
        "datacenters[0].racks[0].nodes[1].weight",
        "either weight or vnodes, not both",
    );
    let e = err_with("vnodes: 3", "vnodes: 0");
    assert_err(
        &e,
        "datacenters[0].racks[1].nodes[0].vnodes",
        "between 1 and 16384, got 0",
    );
    let e = err_with("{vnodes: 8}", "{vnodes: 0}");
    assert_err(&e, "defaults.vnodes", "got 0");
}

#[test]
fn rejects_bad_names() {
    let e = err_with("id: a1,", "id: 'a#1',");
    assert_err(&e, "datacenters[0].racks[0].nodes[0].id", "contains '#'");
    let e = err_with("- name: r2", "- name: ''");
    assert_err(&e, "datacenters[0].racks[1].name", "must not be empty");
}
