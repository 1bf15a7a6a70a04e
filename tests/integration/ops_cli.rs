//! The nodetool-like commands against a real two-datacenter cluster:
//! `geokv repair --dc` sweeps every node of a datacenter through the admin
//! port's background job, among that datacenter's replicas only, and
//! reports a summary per node; `geokv lag` reads
//! every node's view and names every datacenter pair; `geokv status --json`
//! carries each node's load, ownership, version and hint backlog.

use crate::common::*;
use serde_json::Value;

/// `geokv <args> --json` against `cluster` (its CA and token); the JSON.
fn geokv_json(cluster: &Cluster, args: &[&str]) -> Value {
    let out = cluster.command(args).arg("--json").output();
    let out = out.expect("run geokv");
    assert!(
        out.status.success(),
        "geokv {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

#[tokio::test]
async fn repair_lag_and_status_report_the_live_cluster() {
    let cluster = Cluster::start(Spec::pair(2, 2)).await;
    cluster.preload("dc1-n1", "k", 20).await;
    let admin = cluster.node("dc1-n1").admin_address.to_string();

    let repair = geokv_json(
        &cluster,
        &[
            "repair",
            "--dc",
            "dc2",
            "--keyspace",
            "default",
            "--endpoint",
            &admin,
        ],
    );
    assert_eq!(repair["ok"], true, "{repair}");
    let nodes = repair["nodes"].as_object().expect("nodes");
    assert_eq!(nodes.keys().collect::<Vec<_>>(), ["dc2-n1", "dc2-n2"]);
    for (id, s) in nodes {
        assert_eq!(s["state"], "done", "{id}: {s}");
        let total = s["ranges_total"].as_u64().unwrap();
        assert!(total > 0 && s["ranges_done"] == total, "{id}: {s}");
        // rf 2 in dc2: each range is compared with the one other dc2
        // replica, never with dc1's two (that would be three sessions).
        let sum = &s["summary"];
        assert_eq!(sum["sessions"], sum["ranges"], "{id}: {s}");
        assert_eq!(sum["ranges_compared"], sum["ranges"], "{id}: {s}");
    }
    // `nodetool repair -dc`: no Merkle tree was asked across the WAN.
    for id in ["dc1-n1", "dc1-n2"] {
        let merkle = (cluster.metric(id, "geokv_internode_requests_total", "rpc=\"merkle\"")).await;
        assert_eq!(merkle, 0.0, "{id} was asked for Merkle trees");
    }
    let to_dc2 = |id: &str| cluster.node(id).admin_address;
    let refused = crate::common::admin(to_dc2("dc2-n1"), "POST", "/repair?dc=dc1").await;
    let refused = refused.expect_err("a dc1 repair on a dc2 node");
    assert!(
        refused.contains("400") && refused.contains("dc2"),
        "{refused}"
    );

    let lag = geokv_json(&cluster, &["lag", "--endpoint", &admin]);
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

    let client = cluster.client_url("dc1-n1");
    let status = geokv_json(&cluster, &["status", "--endpoint", &client]);
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
