//! Test topologies: the small clusters unit tests place keys on, written
//! out the same way everywhere (datacenter `d` on 127.0.0.`d+1`, node `i`
//! alone in rack `r{i+1}` on ports `3i+1..=3i+3`, 16 vnodes, one keyspace
//! `ks`). Test code only.

use std::net::IpAddr;

use super::generate;

/// The topology file of `dcs` (each a datacenter and its node ids) with
/// keyspace `ks` replicated as `replication` (e.g. `&[("dc1", 3)]`).
pub(crate) fn yaml(dcs: &[(&str, &[&str])], replication: &[(&str, u32)]) -> String {
    let dcs = (dcs.iter().enumerate())
        .map(|(d, (dc, nodes))| {
            let ip = IpAddr::from([127, 0, 0, d as u8 + 1]);
            let nodes = (nodes.iter().enumerate())
                .map(|(i, id)| {
                    let p = 3 * i as u16 + 1;
                    generate::node(*id, ip, [p, p + 1, p + 2])
                })
                .collect();
            (dc.to_string(), nodes)
        })
        .collect();
    generate::one_rack_per_node("t", 16, dcs, &[("ks", replication)]).to_yaml()
}

/// dc1 = a, b, c, d and dc2 = x; `ks` has 3 replicas in dc1, 1 in dc2.
pub(crate) fn four_and_one() -> String {
    yaml(
        &[("dc1", &["a", "b", "c", "d"]), ("dc2", &["x"])],
        &[("dc1", 3), ("dc2", 1)],
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
