//! The topologies the benchmarks and `geokv dev` generate on addresses of
//! their own: the YAML text (built by [`crate::topology::generate`]) and the
//! file it is written to. Must not start nodes (that is
//! [`super::LocalCluster`]).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::topology::{generate, NodeSpec, Topology};

/// A topology file: one rack per node, node ids `<dc>-n<i>`, client gRPC on
/// `:7070`, internode on `:7071`, admin on `:7072` of each given IP, and the
/// `default` keyspace replicated `rf` times in every datacenter.
pub fn topology_yaml(cluster_name: &str, dcs: &[(&str, &[&str])], rf: u32) -> String {
    let nodes = |dc: &str, ips: &[&str]| -> Vec<NodeSpec> {
        (ips.iter().enumerate())
            .map(|(i, ip)| {
                let ip: IpAddr = ip.parse().expect("the benchmarks' node IPs are literals");
                generate::node(format!("{dc}-n{}", i + 1), ip, [7070, 7071, 7072])
            })
            .collect()
    };
    let topology_dcs = (dcs.iter())
        .map(|(dc, ips)| (dc.to_string(), nodes(dc, ips)))
        .collect();
    let replication: Vec<(&str, u32)> = dcs.iter().map(|(dc, _)| (*dc, rf)).collect();
    generate::one_rack_per_node(
        cluster_name,
        256,
        topology_dcs,
        &[("default", replication.as_slice())],
    )
    .to_yaml()
}

/// Writes `yaml` to `<dir>/topology.yaml`, parses it, and returns both.
pub fn write_topology(
    dir: &Path,
    yaml: &str,
) -> Result<(Topology, PathBuf), crate::topology::TopologyError> {
    let path = dir.join("topology.yaml");
    std::fs::create_dir_all(dir).map_err(|e| io_topology_error(&path, e))?;
    std::fs::write(&path, yaml).map_err(|e| io_topology_error(&path, e))?;
    Ok((Topology::load(&path)?, path))
}

fn io_topology_error(path: &Path, e: std::io::Error) -> crate::topology::TopologyError {
    crate::topology::TopologyError {
        file: path.display().to_string(),
        path: String::new(),
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_topologies_parse() {
        let two = topology_yaml(
            "bench",
            &[
                ("dc1", &["127.0.0.41", "127.0.0.42", "127.0.0.43"]),
                ("dc2", &["127.0.0.51", "127.0.0.52", "127.0.0.53"]),
            ],
            3,
        );
        let t = Topology::parse("two.yaml", &two).expect("valid");
        assert_eq!(t.nodes().len(), 6);
        assert_eq!(t.keyspace("default").unwrap().replication["dc2"], 3);
        let node = t.node_by_id("dc2-n3").unwrap();
        assert_eq!(node.admin_address.to_string(), "127.0.0.53:7072");
        let one = topology_yaml("bench", &[("dc1", &["127.0.0.31"])], 1);
        assert_eq!(Topology::parse("one.yaml", &one).unwrap().nodes().len(), 1);
    }
}
