//! The nodetool-like commands against a real two-datacenter cluster:
//! `geokv repair --dc` sweeps every node of a datacenter through the admin
//! port's background job and reports a summary per node; `geokv lag` reads
//! every node's view and names every datacenter pair; `geokv status --json`
//! carries each node's load, ownership, version and hint backlog.

use crate::common::*;
use geokv::proto::v1::Consistency;
use serde_json::Value;
use std::process::Command;

const GEOKV: &str = env!("CARGO_BIN_EXE_geokv");

fn geokv_json(args: &[&str]) -> Value {
    let out = Command::new(GEOKV)
        .args(args)
        .arg("--json")
        .output()
        .expect("run geokv");
    assert!(
        out.status.success(),
        "geokv {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

#[tokio::test]
async fn repair_lag_and_status_report_the_live_cluster() {
    let cluster = Cluster::start(Spec {
        dcs: vec![("dc1", 2), ("dc2", 2)],
        replication: vec![("dc1", 2), ("dc2", 2)],
        extra_keyspaces: Vec::new(),
        gossip_interval_ms: 100,
        extra_args: Vec::new(),
    })
    .await;
    let mut c = cluster.client("dc1-n1").await;
    for i in 0..20 {
        put(
            &mut c,
            &format!("k{i}"),
            "v",
            Vec::new(),
            Consistency::LocalQuorum,
        )
        .await
        .expect("put");
    }
    let admin = cluster.node("dc1-n1").admin_address.to_string();

    let repair = geokv_json(&[
        "repair",
        "--dc",
        "dc2",
        "--keyspace",
        "default",
        "--endpoint",
        &admin,
    ]);
    assert_eq!(repair["ok"], true, "{repair}");
    let nodes = repair["nodes"].as_object().expect("nodes");
    assert_eq!(nodes.keys().collect::<Vec<_>>(), ["dc2-n1", "dc2-n2"]);
    for (id, s) in nodes {
        assert_eq!(s["state"], "done", "{id}: {s}");
        let total = s["ranges_total"].as_u64().unwrap();
        assert!(total > 0 && s["ranges_done"] == total, "{id}: {s}");
        assert!(s["summary"]["sessions"].as_u64().unwrap() > 0, "{id}: {s}");
    }

    let lag = geokv_json(&["lag", "--endpoint", &admin]);
    let pairs: Vec<(String, String)> = (lag["pairs"].as_array().unwrap().iter())
        .map(|p| {
            (
                p["from_dc"].as_str().unwrap().into(),
                p["to_dc"].as_str().unwrap().into(),
            )
        })
        .collect();
    for pair in [
        ("dc1", "dc2"),
        ("dc2", "dc1"),
        ("dc1", "dc1"),
        ("dc2", "dc2"),
    ] {
        assert!(pairs.contains(&(pair.0.into(), pair.1.into())), "{lag}");
    }
    assert!(lag["unreachable"].as_object().unwrap().is_empty(), "{lag}");
    assert!(
        lag["pairs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["nodes"] == 2),
        "{lag}"
    );

    let client = format!("http://{}", cluster.node("dc1-n1").client_address);
    let status = geokv_json(&["status", "--endpoint", &client]);
    for n in status["nodes"].as_array().unwrap() {
        assert_eq!(n["version"], env!("CARGO_PKG_VERSION"), "{n}");
        assert!(n["load_bytes"].as_f64().is_some(), "{n}");
        assert!(n["hint_backlog"].as_f64().is_some(), "{n}");
        let owns = n["ownership_pct"].as_f64().unwrap();
        assert!(
            (owns - 100.0).abs() < 1e-6,
            "rf 2 of 2 nodes: each owns all: {n}"
        );
    }
}
