//! The topologies the benchmarks and `geokv dev` generate on addresses of
//! their own: the YAML text and the file it is written to. Must not start
//! nodes (that is [`super::LocalCluster`]).

use std::path::{Path, PathBuf};

use crate::topology::Topology;

/// A topology file: one rack per node, node ids `<dc>-n<i>`, client gRPC on
/// `:7070`, internode on `:7071`, admin on `:7072` of each given IP, and the
/// `default` keyspace replicated `rf` times in every datacenter.
pub fn topology_yaml(cluster_name: &str, dcs: &[(&str, &[&str])], rf: u32) -> String {
    let mut y = format!("cluster_name: {cluster_name}\ndefaults:\n  vnodes: 256\ndatacenters:\n");
    for (dc, ips) in dcs {
        y += &format!("  - name: {dc}\n    racks:\n");
        for (i, ip) in ips.iter().enumerate() {
            y += &format!(
                "      - name: r{r}\n        nodes:\n          - id: {dc}-n{r}\n            client_address: {ip}:7070\n            peer_address: {ip}:7071\n            admin_address: {ip}:7072\n",
                r = i + 1
            );
        }
    }
    let replication: Vec<String> = dcs.iter().map(|(dc, _)| format!("{dc}: {rf}")).collect();
    y += &format!(
        "keyspaces:\n  default:\n    replication: {{{}}}\n",
        replication.join(", ")
    );
    y
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
