//! `geokv ring --endpoint ADMIN_ADDR` (the layout version and every node
//! with dc/rack/state/token count/ownership %) and `geokv keyspace create`
//! (a new layout version with one more keyspace), both over a node's admin
//! port (`GET /layout`, `POST /keyspaces`).
//!
//! Owns the printing (the exchange is `admin_http`'s); the ownership
//! numbers come from `geokv::view::http::ownership`.
//! Must not: compute placement itself or change the layout except through
//! the admin port.
use std::fmt::Write as _;

use anyhow::Context;
use geokv::layout::Layout;
use geokv::movement::progress::MovementProgress;
use geokv::view::http::{ownership, NodeOwnership};

/// Arguments of `geokv ring`.
#[derive(clap::Args, Debug)]
pub struct RingArgs {
    /// A node's admin address (host:port).
    #[arg(long, env = "GEOKV_ADMIN_ENDPOINT", default_value = "127.0.0.11:7072")]
    pub endpoint: String,
    /// Ownership in this keyspace (default: `default`, or the first one).
    #[arg(long)]
    pub keyspace: Option<String>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub tls: super::admin_http::AdminTlsArgs,
}

/// `geokv keyspace ...`.
#[derive(clap::Subcommand, Debug)]
pub enum KeyspaceCommand {
    /// Create a keyspace cluster-wide (a new layout version; moves no data).
    Create(CreateArgs),
}

#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    pub name: String,
    /// Replicas per datacenter, e.g. dc1=3,dc2=2.
    #[arg(long)]
    pub rf: String,
    /// A node's admin address (host:port).
    #[arg(long, env = "GEOKV_ADMIN_ENDPOINT", default_value = "127.0.0.11:7072")]
    pub endpoint: String,
    /// Print one JSON object: `{"keyspace","replication","version"}`.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub tls: super::admin_http::AdminTlsArgs,
}

/// One request to `endpoint` (with `GEOKV_TOKEN` as the admin token, if
/// set); the body of a 2xx answer.
pub(super) async fn http(endpoint: &str, method: &str, path: &str) -> anyhow::Result<String> {
    let token = super::admin_http::env_token();
    super::admin_http::request(endpoint, method, path, token.as_deref(), "").await
}

/// Runs `geokv ring`.
pub async fn run(args: RingArgs) -> anyhow::Result<()> {
    let body = http(&args.endpoint, "GET", "/layout").await?;
    let layout: Layout = serde_json::from_str(&body).context("decoding the layout")?;
    let ks = (args.keyspace.clone())
        .or_else(|| {
            layout
                .keyspaces
                .contains_key("default")
                .then(|| "default".into())
        })
        .or_else(|| layout.keyspaces.keys().next().cloned())
        .unwrap_or_default();
    let rows = ownership(&layout, &ks);
    let (reports, held) = if layout.movements.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        super::movement::reports(&layout).await
    };
    let progress = geokv::movement::progress::movements(&layout, &reports, &held);
    if args.json {
        let v = serde_json::json!({
            "cluster": layout.cluster_name,
            "version": layout.version,
            "keyspace": ks,
            "movements": layout.movements,
            "progress": progress,
            "streaming": reports.into_iter().collect::<std::collections::BTreeMap<_, _>>(),
            "nodes": rows,
        });
        println!("{v}");
    } else {
        print!("{}", table(&layout, &ks, &rows, &progress));
        if !layout.movements.is_empty() {
            print!("{}", super::movement::lines(&reports));
        }
    }
    Ok(())
}

fn table(layout: &Layout, ks: &str, rows: &[NodeOwnership], moving: &[MovementProgress]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "cluster {} layout v{} (ownership in keyspace {ks})",
        layout.cluster_name, layout.version
    );
    for m in moving {
        let _ = writeln!(
            out,
            "  movement in {}: {} ({}): {}/{} ranges, {} keys, {:.1} MB",
            m.dc,
            m.movement,
            m.phase,
            m.ranges_done,
            m.ranges_total,
            m.keys,
            m.bytes as f64 / 1e6
        );
        for h in &m.held {
            let _ = writeln!(out, "    held by {h}");
        }
    }
    out.push_str(&nodes_table(rows));
    out
}

/// One line per node, columns as wide as their widest cell (comfy-table),
/// the numbers right-aligned.
fn nodes_table(rows: &[NodeOwnership]) -> String {
    let mut t = super::render::table(["NODE", "DC", "RACK", "STATE", "TOKENS", "OWNERSHIP"]);
    for r in rows {
        t.add_row([
            r.id.clone(),
            r.dc.clone(),
            r.rack.clone(),
            format!("{:?}", r.state).to_lowercase(),
            r.tokens.to_string(),
            format!("{:.1}%", r.ownership_pct),
        ]);
    }
    for i in [4, 5] {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(comfy_table::CellAlignment::Right);
        }
    }
    format!("{t}\n")
}

/// Runs `geokv keyspace ...`.
pub async fn keyspace(cmd: KeyspaceCommand) -> anyhow::Result<()> {
    match cmd {
        KeyspaceCommand::Create(a) => {
            a.tls.choose();
            let rf = a.rf.replace('=', ":");
            let path = format!("/keyspaces?name={}&rf={rf}", a.name);
            let body = http(&a.endpoint, "POST", &path).await?;
            let v: serde_json::Value =
                serde_json::from_str(&body).context("decoding the answer")?;
            if a.json {
                println!("{}", created_json(&a.name, &a.rf, &v));
            } else {
                println!("keyspace {} created: layout v{}", a.name, v["version"]);
            }
            Ok(())
        }
    }
}

/// `geokv keyspace create --json`: the keyspace, its replicas per
/// datacenter (from `--rf dc1=3,dc2=2`) and the layout version the node
/// answered with.
fn created_json(name: &str, rf: &str, answer: &serde_json::Value) -> serde_json::Value {
    let replication: serde_json::Map<String, serde_json::Value> = (rf.split(','))
        .filter_map(|pair| pair.split_once(['=', ':']))
        .map(|(dc, n)| {
            let n = n.trim();
            let n = (n.parse::<u64>())
                .map_or_else(|_| serde_json::Value::from(n), serde_json::Value::from);
            (dc.trim().to_string(), n)
        })
        .collect();
    serde_json::json!({"keyspace": name, "replication": replication, "version": answer["version"]})
}

#[cfg(test)]
mod tests {
    use super::*;
    use geokv::layout::NodeState;

    fn row(id: &str, tokens: usize, pct: f64) -> NodeOwnership {
        NodeOwnership {
            id: id.into(),
            dc: "dc1".into(),
            rack: "r1".into(),
            state: NodeState::Normal,
            tokens,
            ownership_pct: pct,
        }
    }

    #[test]
    fn node_columns_line_up_whatever_the_id_length() {
        let rows = [
            row("n1", 256, 50.0),
            row("a-node-id-longer-than-sixteen", 16, 100.0),
        ];
        let text = nodes_table(&rows);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        let col = lines[0].find("DC").unwrap();
        assert!(
            lines[1..].iter().all(|l| l.find("dc1") == Some(col)),
            "{text}"
        );
        assert!(
            lines[1].contains("normal") && lines[2].contains("100.0%"),
            "{text}"
        );
    }

    #[test]
    fn keyspace_create_json_has_the_replication_and_the_new_version() {
        let v = created_json("carts", "dc1=3, dc2=2", &serde_json::json!({"version": 12}));
        assert_eq!(
            v,
            serde_json::json!({"keyspace": "carts", "replication": {"dc1": 3, "dc2": 2}, "version": 12})
        );
    }
}
