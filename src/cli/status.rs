//! `geokv status`: asks one node for its view of the cluster and prints the
//! nodes by datacenter and rack with up/down and φ, then keyspaces. Each
//! node's load (data size), version and hint backlog come from its admin
//! port's `GET /status.json` ("?" when it does not answer), ownership in
//! `--keyspace` from the answering node's.
//!
//! Owns the layout only; the data comes from the Status RPC via the SDK
//! and the admin port.
//!
//! Must not: compute liveness or ownership itself (the nodes report them).
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use geokv::client::ClusterStatus;
use serde_json::{json, Value};

use crate::cli::connect::ConnectArgs;

/// Arguments of `geokv status`.
#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Ownership in this keyspace.
    #[arg(long, default_value = "default")]
    pub keyspace: String,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// What a node's admin port adds to the Status RPC's line.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Extra {
    pub load_bytes: Option<f64>,
    pub version: Option<String>,
    pub hint_backlog: Option<f64>,
    /// Effective ownership in the keyspace asked, in percent.
    pub ownership_pct: Option<f64>,
}

/// Every node's `/status.json` (2 s each at most), then ownership from
/// the answering node's.
async fn extras(status: &ClusterStatus, keyspace: &str) -> BTreeMap<String, Extra> {
    let mut out = BTreeMap::new();
    let mut owned = BTreeMap::new();
    for n in &status.nodes {
        let ask = super::ring::http(&n.admin_address, "GET", "/status.json");
        let v: Option<Value> = match tokio::time::timeout(Duration::from_secs(2), ask).await {
            Ok(Ok(body)) => serde_json::from_str(&body).ok(),
            _ => None,
        };
        let Some(v) = v else {
            out.insert(n.id.clone(), Extra::default());
            continue;
        };
        if n.id == status.answered_by {
            for m in v["nodes"].as_array().into_iter().flatten() {
                if let (Some(id), Some(p)) = (m["id"].as_str(), m["ownership"][keyspace].as_f64()) {
                    owned.insert(id.to_string(), p);
                }
            }
        }
        out.insert(
            n.id.clone(),
            Extra {
                load_bytes: v["load_bytes"].as_f64(),
                version: v["version"].as_str().map(str::to_string),
                hint_backlog: v["hint_backlog"].as_f64(),
                ownership_pct: None,
            },
        );
    }
    for (id, e) in out.iter_mut() {
        e.ownership_pct = owned.get(id).copied();
    }
    out
}

/// `1.5 MiB`-style sizes.
pub fn human_bytes(b: f64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let (mut v, mut i) = (b, 0);
    while v >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{v:.0} B")
    } else {
        format!("{v:.1} {}", units[i])
    }
}

/// Runs `geokv status`.
pub async fn run(args: StatusArgs) -> anyhow::Result<()> {
    let client = args.connect.client(None).await?;
    let status = client.status().await?;
    let extra = extras(&status, &args.keyspace).await;
    if args.json {
        println!("{}", to_json(&status, &extra));
    } else {
        print!("{}", table(&status, &extra, &args.keyspace));
    }
    Ok(())
}

/// The human layout: a line per datacenter (up count), then one table
/// line per node by datacenter and rack, then keyspaces.
fn table(status: &ClusterStatus, extra: &BTreeMap<String, Extra>, keyspace: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "cluster {} (answered by {} in {})",
        status.cluster, status.answered_by, status.local_datacenter
    );
    let owns = format!("OWNS ({keyspace})");
    let mut t = super::render::table([
        "DC", "RACK", "NODE", "STATE", "PHI", "LOAD", &owns, "HINTS", "VERSION", "ADDRESS",
    ]);
    for (dc, nodes) in status.by_datacenter() {
        let up = nodes.iter().filter(|n| n.up).count();
        let _ = writeln!(out, "datacenter {dc}: {up}/{} up", nodes.len());
        for node in nodes {
            let e = extra.get(&node.id).cloned().unwrap_or_default();
            let q = || "?".to_string();
            t.add_row([
                dc.to_string(),
                node.rack.clone(),
                node.id.clone(),
                (if node.up { "UP" } else { "DOWN" }).to_string(),
                format!("{:.2}", node.phi),
                e.load_bytes.map_or_else(q, human_bytes),
                e.ownership_pct.map_or_else(q, |p| format!("{p:.1}%")),
                e.hint_backlog.map_or_else(q, |h| format!("{h}")),
                e.version.unwrap_or_else(q),
                node.client_address.clone(),
            ]);
        }
    }
    let _ = writeln!(out, "{t}");
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

fn to_json(status: &ClusterStatus, extra: &BTreeMap<String, Extra>) -> serde_json::Value {
    let e = |id: &str| extra.get(id).cloned().unwrap_or_default();
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
            "load_bytes": e(&n.id).load_bytes,
            "ownership_pct": e(&n.id).ownership_pct,
            "hint_backlog": e(&n.id).hint_backlog,
            "version": e(&n.id).version,
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
        let mut extra = BTreeMap::new();
        extra.insert(
            "n1".to_string(),
            Extra {
                load_bytes: Some(1536.0 * 1024.0),
                version: Some("0.1.0".into()),
                hint_backlog: Some(4.0),
                ownership_pct: Some(66.7),
            },
        );
        let text = table(&status, &extra, "default");
        let lines: Vec<Vec<&str>> = text
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(lines[0].join(" "), "cluster dev (answered by n1 in dc1)");
        assert_eq!(lines[1].join(" "), "datacenter dc1: 2/2 up");
        assert_eq!(lines[2].join(" "), "datacenter dc2: 0/1 up");
        assert_eq!(lines[3][..3], ["DC", "RACK", "NODE"]);
        assert_eq!(
            lines[4],
            ["dc1", "r1", "n1", "UP", "0.50", "1.5", "MiB", "66.7%", "4", "0.1.0", "n1:7070"]
        );
        assert_eq!(
            lines[5],
            ["dc1", "r2", "n2", "UP", "0.50", "?", "?", "?", "?", "n2:7070"]
        );
        assert_eq!(lines[6][..5], ["dc2", "r1", "n3", "DOWN", "12.00"]);
        assert_eq!(
            lines[7..],
            [vec!["keyspaces"], vec!["default", "dc1=3", "dc2=3"]]
        );
        let j = to_json(&status, &extra);
        assert_eq!(j["nodes"][2]["load_bytes"], 1536.0 * 1024.0);
        assert_eq!(j["nodes"][2]["version"], "0.1.0");
        assert_eq!(human_bytes(512.0), "512 B");
        assert_eq!(j["nodes"][0]["up"], false);
    }
}
