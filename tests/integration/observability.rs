//! `/metrics` of a real node (of two, so writes cross a batching lane) is
//! standard Prometheus: the exposition format's Content-Type, `# HELP` and
//! `# TYPE` on every family, build and node info, process and RocksDB
//! figures, entries per batch in buckets of entries; `promtool check metrics` finds
//! nothing and `promtool check rules` accepts the shipped alert rules (both
//! when promtool is on PATH; `scripts/ensure-deps` installs it as root).
//! The node logs with `--log-format json`: every line of its log is JSON.

use crate::common::*;
use geokv::proto::v1::Consistency;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// The family a sample line belongs to, given the declared families.
fn family_of<'a>(sample: &'a str, declared: &BTreeMap<String, String>) -> Option<&'a str> {
    let name = sample.split(['{', ' ']).next()?;
    if declared.contains_key(name) {
        return Some(name);
    }
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if declared.get(base).map(String::as_str) == Some("histogram") {
                return Some(base);
            }
        }
    }
    None
}

fn run_promtool(args: &[&str], stdin: &str) -> Option<(bool, String)> {
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(stdin.as_bytes()).ok()?;
    let out = child.wait_with_output().ok()?;
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    Some((out.status.success(), text))
}

#[tokio::test]
async fn metrics_endpoint_is_standard_prometheus() {
    let spec = Spec {
        // Two replicas, so a write crosses a batching lane.
        dcs: vec![("dc1", 2)],
        replication: vec![("dc1", 2)],
        extra_keyspaces: Vec::new(),
        gossip_interval_ms: 100,
        extra_args: vec!["--log-format".into(), "json".into()],
    };
    let cluster = Cluster::start(spec).await;
    let mut client = cluster.client("dc1-n1").await;
    put(&mut client, "k", "v", Vec::new(), Consistency::One)
        .await
        .unwrap();
    get(&mut client, "k", Consistency::One).await.unwrap();

    let admin = cluster.node("dc1-n1").admin_address;
    // Process and engine figures come from a periodic task: wait for both,
    // and for the batch the put's write to dc1-n2 went in.
    let batch_entries = "geokv_internode_batch_entries_bucket{le=\"64\"} ";
    let started = Instant::now();
    let (status, headers, body) = loop {
        let got = admin_raw(admin, "GET", "/metrics", cluster.admin_token.as_deref()).await;
        if got.body.contains("\nprocess_resident_memory_bytes ")
            && got.body.contains("geokv_engine_sst_bytes{")
            && got.body.contains(batch_entries)
        {
            break (got.status, got.headers, got.body);
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{}", got.body);
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(status, 200);
    assert_eq!(
        headers.get("content-type").map(String::as_str),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );

    let mut declared = BTreeMap::new();
    let mut helped = BTreeSet::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            declared.insert(name.to_string(), kind.to_string());
        } else if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            assert!(!help.trim().is_empty(), "empty HELP for {name}");
            helped.insert(name.to_string());
        }
    }
    for line in body
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let family = family_of(line, &declared).unwrap_or_else(|| panic!("no # TYPE for {line}"));
        assert!(helped.contains(family), "no # HELP for {family}");
    }
    for family in [
        "geokv_requests_total",
        "geokv_request_seconds",
        "geokv_membership_up",
        "geokv_engine_memtable_bytes",
        "geokv_engine_pending_compaction_bytes",
        "geokv_engine_block_cache_usage_bytes",
        "geokv_engine_write_stall_seconds",
        "process_cpu_seconds_total",
        "process_open_fds",
        "process_threads",
    ] {
        assert!(declared.contains_key(family), "{family} missing:\n{body}");
    }
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        body.lines().any(|l| l.starts_with("geokv_build_info{")
            && l.contains(&format!("version=\"{version}\""))
            && l.ends_with(" 1")),
        "{body}"
    );
    assert!(body.contains("geokv_node_info{"), "{body}");
    // Entries per batch, in buckets of entries (1, 2, 4, …, 64), not seconds.
    for le in ["1", "2", "4", "8", "16", "32", "64", "+Inf"] {
        let bucket = format!("geokv_internode_batch_entries_bucket{{le=\"{le}\"}} ");
        assert!(body.contains(&bucket), "{bucket} missing:\n{body}");
    }
    assert!(!body.contains("geokv_internode_batch_entries_bucket{le=\"0.0002\"}"));
    assert!(
        body.contains("geokv_engine_block_cache_hits_total"),
        "{body}"
    );

    // `--log-format json`: node.log is one JSON object per line, no colour.
    let log = std::fs::read_to_string(cluster.dir.path().join("dc1-n1/node.log")).unwrap();
    assert!(log.contains("node started"), "{log}");
    for line in log.lines().filter(|l| !l.is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{line}");
    }

    match run_promtool(&["check", "metrics"], &body) {
        Some((ok, out)) => assert!(
            ok && out.trim().is_empty(),
            "promtool check metrics:\n{out}"
        ),
        None => tool_missing("promtool not on PATH: `promtool check metrics`"),
    }
    let rules = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/prometheus/alerts.yml");
    match run_promtool(&["check", "rules", rules], "") {
        Some((ok, out)) => assert!(ok, "promtool check rules:\n{out}"),
        None => tool_missing("promtool not on PATH: `promtool check rules`"),
    }
}
