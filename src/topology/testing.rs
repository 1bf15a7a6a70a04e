//! Test topologies: the small clusters unit tests place keys on, written
//! out the same way everywhere (datacenter `d` on 127.0.0.`d+1`, node `i`
//! alone in rack `r{i+1}` on ports `3i+1..=3i+3`, 16 vnodes, one keyspace
//! `ks`). Test code only.

/// The topology file of `dcs` (each a datacenter and its node ids) with
/// keyspace `ks` replicated as `replication` (e.g. `"dc1: 3, dc2: 1"`).
pub(crate) fn yaml(dcs: &[(&str, &[&str])], replication: &str) -> String {
    let mut s = String::from("\ncluster_name: t\ndefaults: { vnodes: 16 }\ndatacenters:\n");
    for (d, (dc, nodes)) in dcs.iter().enumerate() {
        s += &format!("  - name: {dc}\n    racks:\n");
        let ip = format!("127.0.0.{}", d + 1);
        for (i, id) in nodes.iter().enumerate() {
            let p = 3 * i + 1;
            s += &format!(
                "      - {{ name: r{}, nodes: [ {{ id: {id}, client_address: {ip}:{}, \
                 peer_address: {ip}:{}, admin_address: {ip}:{} }} ] }}\n",
                i + 1,
                p,
                p + 1,
                p + 2
            );
        }
    }
    s + &format!("keyspaces:\n  ks: {{ replication: {{ {replication} }} }}\n")
}

/// dc1 = a, b, c, d and dc2 = x; `ks` has 3 replicas in dc1, 1 in dc2.
pub(crate) fn four_and_one() -> String {
    yaml(
        &[("dc1", &["a", "b", "c", "d"]), ("dc2", &["x"])],
        "dc1: 3, dc2: 1",
    )
}

#[test]
fn a_test_topology_parses_with_every_node_in_its_own_rack() {
    let t = super::Topology::parse("t.yaml", &four_and_one()).expect("parses");
    let ids: Vec<String> = t.nodes().into_iter().map(|n| n.id).collect();
    assert_eq!(ids, ["a", "b", "c", "d", "x"]);
    let x = t.nodes().into_iter().find(|n| n.id == "x").expect("x");
    assert_eq!(x.peer_address.to_string(), "127.0.0.2:2");
}
