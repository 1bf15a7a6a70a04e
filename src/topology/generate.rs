//! Generated topologies: the one builder of topology YAML for the
//! benchmarks' local clusters, the integration tests and the unit tests. It
//! builds a [`Topology`] value (every node alone in a rack of its own) and
//! serializes it with `serde_yaml`, so no caller writes YAML by hand.
//!
//! Must not validate (that is [`Topology::parse`]) or write files.
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use super::{Datacenter, KeyspaceSpec, NodeDefaults, NodeSpec, Rack, Topology};

/// Node `id` at `ip` with its client gRPC, internode gRPC and admin ports.
pub fn node(id: impl Into<String>, ip: IpAddr, [client, peer, admin]: [u16; 3]) -> NodeSpec {
    NodeSpec {
        id: id.into(),
        client_address: SocketAddr::new(ip, client),
        peer_address: SocketAddr::new(ip, peer),
        admin_address: Some(SocketAddr::new(ip, admin)),
        weight: None,
        vnodes: None,
    }
}

/// A topology of `dcs` (each a datacenter and its nodes, node `i` alone in
/// rack `r{i+1}`), `vnodes` per node and `keyspaces` (each a name and its
/// replicas per datacenter).
pub fn one_rack_per_node(
    cluster_name: &str,
    vnodes: u32,
    dcs: Vec<(String, Vec<NodeSpec>)>,
    keyspaces: &[(&str, &[(&str, u32)])],
) -> Topology {
    let datacenters = dcs
        .into_iter()
        .map(|(name, nodes)| Datacenter {
            name,
            racks: (nodes.into_iter().enumerate())
                .map(|(i, n)| Rack {
                    name: format!("r{}", i + 1),
                    nodes: vec![n],
                })
                .collect(),
        })
        .collect();
    let keyspaces = keyspaces
        .iter()
        .map(|(name, rf)| {
            let replication = rf.iter().map(|(dc, r)| (dc.to_string(), *r)).collect();
            (name.to_string(), KeyspaceSpec { replication })
        })
        .collect::<BTreeMap<_, _>>();
    Topology {
        cluster_name: cluster_name.to_string(),
        defaults: NodeDefaults {
            vnodes,
            ..NodeDefaults::default()
        },
        datacenters,
        keyspaces,
        source: String::new(),
    }
}

impl Topology {
    /// This topology as a topology file ([`Topology::parse`] reads it back).
    pub fn to_yaml(&self) -> String {
        serde_yaml::to_string(self).expect("a topology has string keys only: it serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_topology_reads_back_as_itself() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let t = one_rack_per_node(
            "g",
            32,
            vec![
                (
                    "dc1".into(),
                    vec![
                        node("a", ip("127.0.0.1"), [1, 2, 3]),
                        node("b", ip("127.0.0.2"), [1, 2, 3]),
                    ],
                ),
                ("dc2".into(), vec![node("x", ip("127.0.0.3"), [4, 5, 6])]),
            ],
            &[("ks", &[("dc1", 2), ("dc2", 1)]), ("one", &[("dc1", 1)])],
        );
        let back = Topology::parse("g.yaml", &t.to_yaml()).expect("valid");
        assert_eq!(back.datacenters, t.datacenters);
        assert_eq!(back.keyspaces, t.keyspaces);
        assert_eq!(back.defaults.vnodes, 32);
        assert_eq!(back.datacenters[0].racks[1].name, "r2");
        let x = back.node_by_id("x").unwrap();
        assert_eq!(x.admin_address.to_string(), "127.0.0.3:6");
    }
}
