//! Anti-entropy against six real node processes (rf {dc1:3, dc2:3}).
//!
//! Invariants, each checked with an oracle of acknowledged writes:
//! 1. A replica that missed writes while dead, with no hint left to deliver
//!    them (`--hint-window-secs 0` expires hints at once), holds every
//!    acknowledged write after `POST /repair` on it.
//! 2. The coordinator's recorded ranges (written when the hints expired)
//!    are repaired with every replica once all are reachable, and then
//!    cleared: every replica of both datacenters holds every write.
//! 3. A repair after convergence finds no differing leaf.

use crate::common::*;
use geokv::proto::v1::*;
use std::time::{Duration, Instant};

/// `admin()` with a deadline long enough for a whole sweep.
async fn admin_slow(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
) -> Result<String, String> {
    admin_within(addr, method, path, Duration::from_secs(300)).await
}

async fn repair(cluster: &Cluster, id: &str) -> serde_json::Value {
    let started = Instant::now();
    let body = admin_slow(
        cluster.node(id).admin_address,
        "POST",
        "/repair?keyspace=default",
    )
    .await
    .unwrap_or_else(|e| panic!("POST /repair on {id}: {e}\n{}", cluster.log(id)));
    let summary: serde_json::Value = serde_json::from_str(body.trim()).expect("JSON summary");
    println!(
        "POST /repair on {id} took {:?}: {summary}",
        started.elapsed()
    );
    summary
}

/// Keys of `expected` that `node` does not hold with exactly the expected values.
async fn missing(
    reader: &ReplicaReader,
    node: &geokv::topology::NodeInfo,
    expected: &[(String, String)],
) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in expected {
        if reader.holds(node, "default", k).await != Some(vec![v.clone()]) {
            out.push(k.clone());
        }
    }
    out
}

async fn wait_metric(cluster: &Cluster, id: &str, name: &str, ok: impl Fn(f64) -> bool) -> f64 {
    let started = Instant::now();
    loop {
        let v = cluster.metric(id, name, "").await;
        if ok(v) {
            return v;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{id}: {name} stuck at {v}\n{}",
            cluster.log(id)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repair_restores_what_a_dead_replica_missed() {
    let mut spec = Spec::two_dc();
    spec.extra_args = ["--hint-window-secs", "0", "--repair-interval-secs", "0"]
        .map(String::from)
        .to_vec();
    let mut cluster = Cluster::start(spec).await;
    let reader = cluster.replica_reader();
    let mut c1 = cluster.client("dc1-n1").await;

    // Oracle: key → the single value every replica must end up with.
    let mut expected: Vec<(String, String)> = Vec::new();
    for i in 0..30 {
        let (k, v) = (format!("before-{i}"), format!("old-{i}"));
        put(&mut c1, &k, &v, vec![], Consistency::LocalQuorum)
            .await
            .expect("all nodes up");
    }

    // dc1-n3 dies; dc1-n1 keeps writing at LOCAL_QUORUM (dc1-n1 + dc1-n2).
    cluster.kill("dc1-n3");
    for i in 0..30 {
        // Overwrite with the read's context: the old value must disappear.
        let k = format!("before-{i}");
        let r = get(&mut c1, &k, Consistency::LocalQuorum).await.unwrap();
        let v = format!("new-{i}");
        match put(&mut c1, &k, &v, r.context, Consistency::LocalQuorum).await {
            Ok(_) => expected.push((k, v)),
            Err(e) => println!("{k}: not acknowledged ({e}), left out of the oracle"),
        }
    }
    for i in 0..200 {
        let (k, v) = (format!("during-{i}"), format!("v{i}"));
        match put(&mut c1, &k, &v, vec![], Consistency::LocalQuorum).await {
            Ok(_) => expected.push((k, v)),
            Err(e) => println!("{k}: not acknowledged ({e}), left out of the oracle"),
        }
    }
    assert!(expected.len() > 200, "most writes are acknowledged");
    // The hints for dc1-n3 expired at once and were recorded for anti-entropy.
    let recorded = wait_metric(&cluster, "dc1-n1", "geokv_repair_recorded_total", |v| {
        v > 0.0
    })
    .await;
    let pending = wait_metric(&cluster, "dc1-n1", "geokv_repair_pending", |v| v > 0.0).await;
    println!("dc1-n1 recorded {recorded} expired hints; {pending} repair records pending");

    // Keep dc1-n1 (the only holder of the records) away from dc1-n3, so
    // only the repair we trigger on dc1-n3 can bring it the data.
    admin(
        cluster.node("dc1-n1").admin_address,
        "POST",
        "/faults/cut?target=dc1-n3",
    )
    .await
    .expect("fault injection");
    cluster.restart("dc1-n3").await;
    for peer in ["dc1-n2", "dc2-n1", "dc2-n2", "dc2-n3"] {
        cluster
            .wait_seen("dc1-n3", peer, true, Duration::from_secs(30))
            .await;
    }
    let n3 = cluster.node("dc1-n3").clone();
    let before = missing(&reader, &n3, &expected).await;
    println!(
        "dc1-n3 lacks {} of {} acknowledged writes after restart",
        before.len(),
        expected.len()
    );
    assert!(!before.is_empty(), "the replicas diverged");

    // 1. Repair on the restarted replica pulls what it missed.
    let s = repair(&cluster, "dc1-n3").await;
    assert!(s["leaves_differing"].as_u64().unwrap() > 0, "{s}");
    assert!(
        s["keys_pulled"].as_u64().unwrap() >= before.len() as u64,
        "{s}"
    );
    let after = missing(&reader, &n3, &expected).await;
    assert!(
        after.is_empty(),
        "dc1-n3 still lacks {after:?}; summary {s}"
    );

    // 2. Once dc1-n1 reaches dc1-n3 again, its recorded ranges are repaired
    // with every replica and cleared.
    admin(
        cluster.node("dc1-n1").admin_address,
        "POST",
        "/faults/heal?target=dc1-n3",
    )
    .await
    .expect("fault injection");
    let started = Instant::now();
    wait_metric(&cluster, "dc1-n1", "geokv_repair_pending", |v| v == 0.0).await;
    println!(
        "dc1-n1 cleared its recorded ranges {:?} after the heal",
        started.elapsed()
    );
    for n in cluster.nodes.clone() {
        let m = missing(&reader, &n, &expected).await;
        assert!(m.is_empty(), "{} lacks {m:?}", n.id);
    }

    // 3. Converged: a new sweep finds nothing to stream.
    let s = repair(&cluster, "dc1-n3").await;
    assert_eq!(s["leaves_differing"].as_u64(), Some(0), "{s}");
    assert_eq!(s["keys_pulled"].as_u64(), Some(0), "{s}");
    assert!(s["errors"].as_array().unwrap().is_empty(), "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repair_endpoint_rejects_an_unknown_keyspace() {
    let mut spec = Spec::two_dc();
    spec.dcs = vec![("dc1", 2), ("dc2", 1)];
    spec.replication = vec![("dc1", 2), ("dc2", 1)];
    spec.extra_keyspaces = Vec::new();
    let cluster = Cluster::start(spec).await;
    let addr = cluster.node("dc1-n1").admin_address;
    let e = admin_slow(addr, "POST", "/repair?keyspace=nope")
        .await
        .unwrap_err();
    assert!(e.starts_with("HTTP/1.1 400") && e.contains("nope"), "{e}");
    // An idle, consistent cluster: a full sweep compares and streams nothing.
    let s = repair(&cluster, "dc1-n1").await;
    assert_eq!(s["keys_pulled"].as_u64(), Some(0), "{s}");
    assert_eq!(s["keys_pushed"].as_u64(), Some(0), "{s}");
    assert!(s["sessions"].as_u64().unwrap() >= 2, "{s}");
}
