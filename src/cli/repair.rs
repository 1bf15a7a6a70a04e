//! `geokv repair [--keyspace KS] [--dc DC] --endpoint ADMIN` (nodetool
//! repair): an anti-entropy sweep of the node at `--endpoint` with every
//! other replica of its ranges, or with `--dc DC` a sweep of every member of
//! DC in turn among DC's replicas only (Cassandra's `nodetool repair -dc`:
//! no session leaves the datacenter), each started with
//! `POST /repair/start[?dc=DC]` and followed through `GET /repair/status`
//! with a progress bar; then one summary line per node (`--json`: one object).
//! Exits non-zero when a sweep failed or reported errors.
//!
//! Owns the choice of nodes ([`targets`], pure), the polling and the
//! summary ([`summary_table`], [`summary_json`], pure). Must not repair
//! anything itself.
use std::time::Duration;

use anyhow::{bail, Context};
use geokv::admin::repair_job::JobStatus;
use geokv::layout::{Layout, NodeState};
use serde_json::{json, Value};

use super::render::table;
use super::ring::http;

/// Arguments of `geokv repair`.
#[derive(clap::Args, Debug)]
pub struct RepairArgs {
    #[command(flatten)]
    pub tls: super::admin_http::AdminTlsArgs,
    /// Repair only this keyspace (default: every keyspace).
    #[arg(long)]
    pub keyspace: Option<String>,
    /// Repair this datacenter: every member of it in turn, each comparing
    /// its ranges with the other replicas in this datacenter only (default:
    /// the node at --endpoint, with every replica in every datacenter).
    #[arg(long)]
    pub dc: Option<String>,
    /// A node's admin address (host:port).
    #[arg(long, env = "GEOKV_ADMIN_ENDPOINT", default_value = "127.0.0.11:7072")]
    pub endpoint: String,
    /// Print one JSON object instead of a progress bar and a table.
    #[arg(long)]
    pub json: bool,
}

/// `(node id, admin address)` of the nodes to repair: the members of `dc`
/// in layout order, or the node whose admin address is `endpoint`.
pub fn targets(layout: &Layout, dc: Option<&str>, endpoint: &str) -> Vec<(String, String)> {
    let member = |s: NodeState| matches!(s, NodeState::Normal | NodeState::Joining);
    let all = layout.nodes().filter(|(_, _, n)| member(n.state));
    match dc {
        Some(dc) => all
            .filter(|(d, _, _)| *d == dc)
            .map(|(_, _, n)| (n.id.clone(), n.admin_address.to_string()))
            .collect(),
        None => {
            let id = (layout.nodes())
                .find(|(_, _, n)| n.admin_address.to_string() == endpoint)
                .map_or_else(|| endpoint.to_string(), |(_, _, n)| n.id.clone());
            vec![(id, endpoint.to_string())]
        }
    }
}

/// Runs `geokv repair`.
pub async fn run(args: RepairArgs) -> anyhow::Result<()> {
    let body = http(&args.endpoint, "GET", "/layout").await?;
    let layout: Layout = serde_json::from_str(&body).context("decoding the layout")?;
    let nodes = targets(&layout, args.dc.as_deref(), &args.endpoint);
    if nodes.is_empty() {
        bail!(
            "no member of datacenter {:?} to repair",
            args.dc.unwrap_or_default()
        );
    }
    let mut done = Vec::new();
    for (id, addr) in nodes {
        let s = one(&id, &addr, &start_path(&args), args.json).await;
        done.push((id, s.unwrap_or_else(|e| failed(format!("{e:#}")))));
    }
    if args.json {
        println!("{}", summary_json(&done));
    } else {
        print!("{}", summary_table(&done));
    }
    let bad = done.iter().filter(|(_, s)| !ok(s)).count();
    if bad > 0 {
        bail!(
            "{bad} of {} repair(s) failed or reported errors",
            done.len()
        );
    }
    Ok(())
}

fn failed(error: String) -> JobStatus {
    JobStatus {
        state: "failed".into(),
        error: Some(error),
        ..JobStatus::default()
    }
}

fn ok(s: &JobStatus) -> bool {
    s.state == "done" && s.summary.as_ref().is_some_and(|x| x.errors.is_empty())
}

/// `POST /repair/start` with the keyspace and datacenter asked for.
fn start_path(args: &RepairArgs) -> String {
    let enc = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    let mut q = Vec::new();
    if let Some(k) = &args.keyspace {
        q.push(format!("keyspace={}", enc(k)));
    }
    if let Some(dc) = &args.dc {
        q.push(format!("dc={}", enc(dc)));
    }
    match q.is_empty() {
        true => "/repair/start".into(),
        false => format!("/repair/start?{}", q.join("&")),
    }
}

/// Starts a sweep on one node (`path`) and follows it to the end.
async fn one(id: &str, addr: &str, path: &str, quiet: bool) -> anyhow::Result<JobStatus> {
    http(addr, "POST", path).await?;
    let bar = if quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(0)
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {prefix} [{elapsed_precise}] {bar:40} {pos}/{len} ranges {msg}",
        )
        .expect("a valid template"),
    );
    bar.set_prefix(id.to_string());
    loop {
        let body = http(addr, "GET", "/repair/status").await?;
        let s: JobStatus = serde_json::from_str(&body).context("decoding the repair status")?;
        bar.set_length(s.ranges_total);
        bar.set_position(s.ranges_done);
        if s.state != "running" {
            bar.finish_with_message(s.state.clone());
            return Ok(s);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// One line per repaired node.
pub fn summary_table(done: &[(String, JobStatus)]) -> String {
    let mut t = table([
        "NODE",
        "STATE",
        "RANGES",
        "COMPARED",
        "SESSIONS",
        "LEAVES DIFF",
        "PULLED",
        "PUSHED",
        "PEERS DOWN",
        "SECONDS",
        "ERRORS",
    ]);
    for (id, s) in done {
        let m = s.summary.clone().unwrap_or_default();
        let errors = match (&s.error, m.errors.len()) {
            (Some(e), _) => e.clone(),
            (None, 0) => "-".into(),
            (None, n) => format!("{n}: {}", m.errors[0]),
        };
        t.add_row([
            id.clone(),
            s.state.clone(),
            m.ranges.to_string(),
            m.ranges_compared.to_string(),
            m.sessions.to_string(),
            m.leaves_differing.to_string(),
            m.keys_pulled.to_string(),
            m.keys_pushed.to_string(),
            m.peers_skipped.to_string(),
            format!("{:.1}", s.elapsed_secs),
            errors,
        ]);
    }
    format!("{t}\n")
}

/// `{"ok": bool, "nodes": {id: status}}`.
pub fn summary_json(done: &[(String, JobStatus)]) -> Value {
    json!({
        "ok": done.iter().all(|(_, s)| ok(s)),
        "nodes": done.iter().map(|(id, s)| (id.clone(), json!(s))).collect::<serde_json::Map<_, _>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use geokv::repair::Summary;

    #[test]
    fn targets_are_the_endpoint_or_every_member_of_a_datacenter() {
        let layout = Layout::seed(&geokv::topology::Topology::dev());
        let in_dc = |dc: &str| -> Vec<String> {
            (layout.nodes().filter(|(d, _, _)| *d == dc))
                .map(|(_, _, n)| n.id.clone())
                .collect()
        };
        let (first_dc, _, first) = layout.nodes().next().expect("a node");
        let (first_dc, first) = (first_dc.to_string(), first.clone());
        let ids = |v: Vec<(String, String)>| v.into_iter().map(|x| x.0).collect::<Vec<_>>();
        let members = in_dc(&first_dc);
        assert!(members.len() > 1);
        assert_eq!(ids(targets(&layout, Some(&first_dc), "x")), members);
        assert!(targets(&layout, Some("dc9"), "x").is_empty());
        let addr = first.admin_address.to_string();
        assert_eq!(targets(&layout, None, &addr), [(first.id, addr.clone())]);
        assert_eq!(ids(targets(&layout, None, "elsewhere:1")), ["elsewhere:1"]);
    }

    #[test]
    fn the_summary_says_what_each_node_did_and_fails_on_errors() {
        let done = |errors: Vec<String>| JobStatus {
            state: "done".into(),
            elapsed_secs: 1.25,
            summary: Some(Summary {
                ranges: 8,
                ranges_compared: 8,
                sessions: 16,
                leaves_differing: 3,
                keys_pulled: 5,
                errors,
                ..Summary::default()
            }),
            ..JobStatus::default()
        };
        let rows = vec![
            ("dc1-n1".to_string(), done(vec![])),
            ("dc1-n2".to_string(), failed("connection refused".into())),
        ];
        let text = summary_table(&rows);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].contains("NODE") && lines[0].contains("LEAVES DIFF"),
            "{text}"
        );
        let n1: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(n1[..8], ["dc1-n1", "done", "8", "8", "16", "3", "5", "0"]);
        assert!(n1[8..] == ["0", "1.2", "-"], "{text}");
        assert!(lines[2].contains("failed") && lines[2].contains("connection refused"));
        let j = summary_json(&rows);
        assert_eq!(j["ok"], false);
        assert_eq!(j["nodes"]["dc1-n1"]["summary"]["sessions"], 16);
        assert_eq!(summary_json(&rows[..1])["ok"], true);
        assert_eq!(
            summary_json(&[("x".into(), done(vec!["e".into()]))])["ok"],
            false
        );
    }
}
