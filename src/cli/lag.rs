//! `geokv lag --endpoint ADMIN [--json]`: replication lag and backlog for
//! every datacenter pair, from every node's view. It reads the layout from
//! one node, then `GET /status.json` of every member (the status page's
//! data: each queue this node holds, by destination, with its oldest
//! entry's age), and prints one line per (node, destination datacenter)
//! and one per datacenter pair (the worst lag, summed backlogs).
//!
//! Owns the aggregation ([`views`], [`pairs`], pure) and the tables.
//! Must not change anything on the cluster.
use std::collections::BTreeMap;

use anyhow::Context;
use geokv::layout::{Layout, NodeState};
use serde::Serialize;
use serde_json::{json, Value};

use super::render::table;
use super::ring::http;

/// Arguments of `geokv lag`.
#[derive(clap::Args, Debug)]
pub struct LagArgs {
    #[command(flatten)]
    pub tls: super::admin_http::AdminTlsArgs,
    /// A node's admin address (host:port).
    #[arg(long, env = "GEOKV_ADMIN_ENDPOINT", default_value = "127.0.0.11:7072")]
    pub endpoint: String,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// One node's queues towards one datacenter.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct View {
    pub node: String,
    pub from_dc: String,
    pub to_dc: String,
    pub lag_secs: f64,
    pub entries: f64,
    pub bytes: f64,
    pub in_flight: f64,
}

/// One datacenter pair: the worst lag among its nodes, backlogs summed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Pair {
    pub from_dc: String,
    pub to_dc: String,
    pub lag_secs: f64,
    pub entries: f64,
    pub bytes: f64,
    /// Nodes of `from_dc` that answered.
    pub nodes: usize,
}

/// The views in `/status.json` answers: `(node, from_dc, answer)`.
pub fn views(answers: &[(String, String, Value)]) -> Vec<View> {
    let mut out: BTreeMap<(String, String), View> = BTreeMap::new();
    for (node, from_dc, s) in answers {
        for b in s["backlog"].as_array().into_iter().flatten() {
            let to_dc = b["dc"].as_str().unwrap_or_default().to_string();
            if to_dc.is_empty() {
                continue;
            }
            let v = out.entry((node.clone(), to_dc.clone())).or_insert(View {
                node: node.clone(),
                from_dc: from_dc.clone(),
                to_dc,
                lag_secs: 0.0,
                entries: 0.0,
                bytes: 0.0,
                in_flight: 0.0,
            });
            let f = |k: &str| b[k].as_f64().unwrap_or(0.0);
            v.lag_secs = v.lag_secs.max(f("oldest_secs"));
            v.entries += f("entries");
            v.bytes += f("bytes");
            v.in_flight += f("in_flight");
        }
    }
    out.into_values().collect()
}

/// Every pair of datacenters in `dcs` (from ≠ to, and each to itself for
/// hints within it), with the answering nodes' views folded in.
pub fn pairs(dcs: &[String], answered: &BTreeMap<String, usize>, views: &[View]) -> Vec<Pair> {
    let mut out = Vec::new();
    for from in dcs {
        for to in dcs {
            let mine = views
                .iter()
                .filter(|v| &v.from_dc == from && &v.to_dc == to);
            let mut p = Pair {
                from_dc: from.clone(),
                to_dc: to.clone(),
                lag_secs: 0.0,
                entries: 0.0,
                bytes: 0.0,
                nodes: answered.get(from).copied().unwrap_or(0),
            };
            for v in mine {
                p.lag_secs = p.lag_secs.max(v.lag_secs);
                p.entries += v.entries;
                p.bytes += v.bytes;
            }
            out.push(p);
        }
    }
    out
}

/// Runs `geokv lag`.
pub async fn run(args: LagArgs) -> anyhow::Result<()> {
    let body = http(&args.endpoint, "GET", "/layout").await?;
    let layout: Layout = serde_json::from_str(&body).context("decoding the layout")?;
    let mut dcs: Vec<String> = layout.datacenters.iter().map(|d| d.name.clone()).collect();
    dcs.dedup();
    let mut answers = Vec::new();
    let mut unreachable = Vec::new();
    let mut answered: BTreeMap<String, usize> = BTreeMap::new();
    for (dc, _, n) in layout.nodes() {
        if matches!(n.state, NodeState::Left | NodeState::Removed) {
            continue;
        }
        let addr = n.admin_address.to_string();
        match http(&addr, "GET", "/status.json").await {
            Ok(b) => {
                let v: Value = serde_json::from_str(&b).unwrap_or_default();
                *answered.entry(dc.to_string()).or_default() += 1;
                answers.push((n.id.clone(), dc.to_string(), v));
            }
            Err(e) => unreachable.push((n.id.clone(), format!("{e:#}"))),
        }
    }
    let views = views(&answers);
    let pairs = pairs(&dcs, &answered, &views);
    if args.json {
        let unreachable: BTreeMap<_, _> = unreachable.into_iter().collect();
        println!(
            "{}",
            json!({ "pairs": pairs, "views": views, "unreachable": unreachable })
        );
        return Ok(());
    }
    print!("{}", pairs_table(&pairs));
    println!();
    print!("{}", views_table(&views));
    for (id, e) in unreachable {
        println!("{id}: unreachable ({e})");
    }
    Ok(())
}

/// The per-pair table.
pub fn pairs_table(pairs: &[Pair]) -> String {
    let mut t = table([
        "FROM DC",
        "TO DC",
        "LAG (s)",
        "ENTRIES",
        "BYTES",
        "NODES ANSWERED",
    ]);
    for p in pairs {
        t.add_row([
            p.from_dc.clone(),
            p.to_dc.clone(),
            format!("{:.1}", p.lag_secs),
            format!("{}", p.entries),
            format!("{}", p.bytes),
            p.nodes.to_string(),
        ]);
    }
    format!("{t}\n")
}

/// The per-node table.
pub fn views_table(views: &[View]) -> String {
    let mut t = table([
        "NODE",
        "FROM DC",
        "TO DC",
        "LAG (s)",
        "ENTRIES",
        "BYTES",
        "IN FLIGHT",
    ]);
    for v in views {
        t.add_row([
            v.node.clone(),
            v.from_dc.clone(),
            v.to_dc.clone(),
            format!("{:.1}", v.lag_secs),
            format!("{}", v.entries),
            format!("{}", v.bytes),
            format!("{}", v.in_flight),
        ]);
    }
    format!("{t}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(rows: &[(&str, &str, f64, f64)]) -> Value {
        json!({ "backlog": rows.iter().map(|(dest, dc, entries, age)| json!({
            "dest": dest, "dc": dc, "entries": entries, "bytes": entries * 10.0,
            "oldest_secs": age, "in_flight": 1.0,
        })).collect::<Vec<_>>() })
    }

    #[test]
    fn pairs_take_the_worst_lag_and_sum_backlogs_across_nodes() {
        let answers = vec![
            (
                "a".into(),
                "dc1".into(),
                answer(&[("dc:dc2", "dc2", 5.0, 2.5), ("node:b", "dc1", 1.0, 0.5)]),
            ),
            (
                "b".into(),
                "dc1".into(),
                answer(&[("dc:dc2", "dc2", 7.0, 4.0)]),
            ),
            ("c".into(), "dc2".into(), answer(&[])),
        ];
        let v = views(&answers);
        assert_eq!(v.len(), 3);
        assert_eq!(
            (v[0].node.as_str(), v[0].to_dc.as_str(), v[0].lag_secs),
            ("a", "dc1", 0.5)
        );
        let dcs = vec!["dc1".to_string(), "dc2".to_string()];
        let answered = BTreeMap::from([("dc1".to_string(), 2), ("dc2".to_string(), 1)]);
        let p = pairs(&dcs, &answered, &v);
        assert_eq!(p.len(), 4);
        let d12 = p
            .iter()
            .find(|p| p.from_dc == "dc1" && p.to_dc == "dc2")
            .unwrap();
        assert_eq!(
            (d12.lag_secs, d12.entries, d12.bytes, d12.nodes),
            (4.0, 12.0, 120.0, 2)
        );
        let d21 = p
            .iter()
            .find(|p| p.from_dc == "dc2" && p.to_dc == "dc1")
            .unwrap();
        assert_eq!((d21.lag_secs, d21.entries, d21.nodes), (0.0, 0.0, 1));
        let text = pairs_table(&p);
        assert!(
            text.lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>()
                    == ["dc1", "dc2", "4.0", "12", "120", "2"]),
            "{text}"
        );
        assert!(views_table(&v).lines().count() == 4);
    }
}
