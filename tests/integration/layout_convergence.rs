//! The cluster layout as replicated state, against real node processes: a
//! keyspace created through one node (a layout change that moves no data)
//! reaches every node within a few gossip rounds and serves reads and
//! writes through each of them; a node SIGKILLed before the change catches
//! up when it restarts, and keeps the newer layout over its topology file.

use crate::common::*;
use geokv::proto::v1::*;
use std::time::{Duration, Instant};

/// The layout version a node reports on `GET /layout`.
async fn layout_version(cluster: &Cluster, id: &str) -> Option<u64> {
    let body = admin(cluster.node(id).admin_address, "GET", "/layout")
        .await
        .ok()?;
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    v["version"].as_u64()
}

/// Waits until every node of `ids` reports `want`; how long it took.
async fn wait_version(cluster: &Cluster, ids: &[String], want: u64, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let mut behind = Vec::new();
        for id in ids {
            if layout_version(cluster, id).await != Some(want) {
                behind.push(id.clone());
            }
        }
        if behind.is_empty() {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "{behind:?} not at layout v{want} after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn put_get(cluster: &Cluster, via: &str, keyspace: &str, key: &str) {
    let mut c = cluster.client(via).await;
    c.put(PutRequest {
        keyspace: keyspace.into(),
        key: key.as_bytes().to_vec(),
        value: format!("from {via}").into_bytes(),
        context: vec![],
        options: opts(Consistency::LocalQuorum),
    })
    .await
    .unwrap_or_else(|e| panic!("LOCAL_QUORUM put to {keyspace} via {via}: {e}"));
    let got = c
        .get(GetRequest {
            keyspace: keyspace.into(),
            key: key.as_bytes().to_vec(),
            options: opts(Consistency::LocalQuorum),
        })
        .await
        .unwrap_or_else(|e| panic!("LOCAL_QUORUM get from {keyspace} via {via}: {e}"))
        .into_inner();
    assert_eq!(values(&got), vec![format!("from {via}")], "via {via}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_created_keyspace_converges_everywhere_and_a_restarted_node_catches_up() {
    let mut cluster = Cluster::start(Spec::two_dc()).await;
    let ids: Vec<String> = cluster.nodes.iter().map(|n| n.id.clone()).collect();
    wait_version(&cluster, &ids, 1, Duration::from_secs(5)).await;

    // A node is down while the layout changes.
    let down = "dc2-n3".to_string();
    cluster.kill(&down);
    let up: Vec<String> = ids.iter().filter(|i| **i != down).cloned().collect();

    let answer = admin(
        cluster.node("dc1-n1").admin_address,
        "POST",
        "/keyspaces?name=orders&rf=dc1:3,dc2:2",
    )
    .await
    .expect("create keyspace");
    assert!(answer.contains("\"version\":2"), "{answer}");
    let took = wait_version(&cluster, &up, 2, Duration::from_secs(10)).await;
    eprintln!("layout v2 on every running node after {took:?} (gossip every 100 ms)");
    // Once there, the same name again is refused by any node.
    let again = admin(
        cluster.node("dc1-n2").admin_address,
        "POST",
        "/keyspaces?name=orders&rf=dc1:1",
    )
    .await;
    assert!(again.is_err_and(|e| e.contains("already exists")));

    for id in &up {
        let gauge = cluster.metric(id, "geokv_layout_version", "").await;
        assert_eq!(gauge, 2.0, "geokv_layout_version on {id}");
    }

    // Restarted with the topology file that seeds v1: it catches up.
    cluster.restart(&down).await;
    let took = wait_version(
        &cluster,
        std::slice::from_ref(&down),
        2,
        Duration::from_secs(10),
    )
    .await;
    eprintln!("{down} caught up to v2 {took:?} after its restart");
    cluster.wait_all_up(Duration::from_secs(20)).await;
    // Every node serves the new keyspace (dc2's rf is 2: LOCAL_QUORUM there
    // needs both replicas, so this waits for the restarted one).
    for id in &ids {
        put_get(&cluster, id, "orders", &format!("k-{id}")).await;
    }

    // Restarted again: the persisted v2 wins over the file's seed at once.
    cluster.kill(&down);
    cluster.restart(&down).await;
    assert_eq!(layout_version(&cluster, &down).await, Some(2));
    let log = std::fs::read_to_string(cluster.data_dir(&down).join("node.log")).unwrap();
    assert!(
        log.contains("using the persisted layout"),
        "the restart logs that the file is only the seed"
    );

    // `geokv ring` shows the version and every node's ownership.
    let out = (cluster.command(&["ring", "--json", "--keyspace", "orders", "--endpoint"]))
        .arg(cluster.node("dc2-n1").admin_address.to_string())
        .output()
        .expect("run geokv ring");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ring: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(ring["version"], 2);
    let nodes = ring["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 6);
    let dc_total = |dc: &str| -> f64 {
        (nodes.iter())
            .filter(|n| n["dc"] == dc)
            .map(|n| n["ownership_pct"].as_f64().unwrap())
            .sum()
    };
    assert!((dc_total("dc1") - 300.0).abs() < 0.01, "rf 3 in dc1");
    assert!((dc_total("dc2") - 200.0).abs() < 0.01, "rf 2 in dc2");
}
