//! `geokv status`: asks one node for its view of the cluster and prints the
//! nodes grouped by datacenter and rack with up/down and φ, then keyspaces.
//!
//! Owns the layout only; the data comes from the Status RPC via the SDK.
use std::fmt::Write as _;

use geokv::client::ClusterStatus;
use serde_json::json;

use crate::cli::connect::ConnectArgs;

/// Arguments of `geokv status`.
#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// Runs `geokv status`.
pub async fn run(args: StatusArgs) -> anyhow::Result<()> {
    let client = args.connect.client(None).await?;
    let status = client.status().await?;
    if args.json {
        println!("{}", to_json(&status));
    } else {
        print!("{}", table(&status));
    }
    Ok(())
}

/// The human layout: datacenter, then rack, then one line per node.
fn table(status: &ClusterStatus) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "cluster {} (answered by {} in {})",
        status.cluster, status.answered_by, status.local_datacenter
    );
    let width = status.nodes.iter().map(|n| n.id.len()).max().unwrap_or(0);
    for (dc, nodes) in status.by_datacenter() {
        let up = nodes.iter().filter(|n| n.up).count();
        let _ = writeln!(out, "datacenter {dc} ({up}/{} up)", nodes.len());
        let mut rack: Option<&str> = None;
        for node in nodes {
            if rack != Some(node.rack.as_str()) {
                rack = Some(&node.rack);
                let _ = writeln!(out, "  rack {}", node.rack);
            }
            let _ = writeln!(
                out,
                "    {:width$}  {:4}  phi={:<7.2}  {}",
                node.id,
                if node.up { "UP" } else { "DOWN" },
                node.phi,
                node.client_address,
            );
        }
    }
    if !status.keyspaces.is_empty() {
        let _ = writeln!(out, "keyspaces");
        for ks in &status.keyspaces {
            let rf: Vec<String> = ks
                .replication
                .iter()
                .map(|(dc, n)| format!("{dc}={n}"))
                .collect();
            let _ = writeln!(out, "  {}  {}", ks.name, rf.join(" "));
        }
    }
    out
}

fn to_json(status: &ClusterStatus) -> serde_json::Value {
    json!({
        "cluster": status.cluster,
        "answered_by": status.answered_by,
        "local_datacenter": status.local_datacenter,
        "nodes": status.nodes.iter().map(|n| json!({
            "id": n.id,
            "datacenter": n.datacenter,
            "rack": n.rack,
            "client_address": n.client_address,
            "admin_address": n.admin_address,
            "up": n.up,
            "phi": n.phi,
            "heartbeat": n.heartbeat,
        })).collect::<Vec<_>>(),
        "keyspaces": status.keyspaces.iter().map(|k| json!({
            "name": k.name,
            "replication": k.replication,
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use geokv::client::{KeyspaceInfo, NodeInfo};

    #[test]
    fn table_groups_by_datacenter_and_rack() {
        let node = |id: &str, dc: &str, rack: &str, up: bool| NodeInfo {
            id: id.into(),
            datacenter: dc.into(),
            rack: rack.into(),
            client_address: format!("{id}:7070"),
            admin_address: String::new(),
            up,
            phi: if up { 0.5 } else { 12.0 },
            heartbeat: 1,
        };
        let status = ClusterStatus {
            cluster: "dev".into(),
            answered_by: "n1".into(),
            local_datacenter: "dc1".into(),
            nodes: vec![
                node("n3", "dc2", "r1", false),
                node("n2", "dc1", "r2", true),
                node("n1", "dc1", "r1", true),
            ],
            keyspaces: vec![KeyspaceInfo {
                name: "default".into(),
                replication: [("dc1".to_string(), 3), ("dc2".to_string(), 3)].into(),
            }],
        };
        let expected = "\
cluster dev (answered by n1 in dc1)
datacenter dc1 (2/2 up)
  rack r1
    n1  UP    phi=0.50     n1:7070
  rack r2
    n2  UP    phi=0.50     n2:7070
datacenter dc2 (0/1 up)
  rack r1
    n3  DOWN  phi=12.00    n3:7070
keyspaces
  default  dc1=3 dc2=3
";
        assert_eq!(table(&status), expected);
        assert_eq!(to_json(&status)["nodes"][0]["up"], false);
    }
}
