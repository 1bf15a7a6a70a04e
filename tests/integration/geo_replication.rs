//! Geo replication against real node processes: durable hinted streams
//! between datacenters, hinted handoff inside a datacenter, and gossip
//! failure detection under injected WAN delay.

use crate::common::*;
use geokv::proto::v1::*;
use std::time::{Duration, Instant};

/// Waits until every dc2 replica of every key holds its value.
async fn wait_dc_holds(
    reader: &ReplicaReader,
    cluster: &Cluster,
    dc: &str,
    keys: &[(String, String)],
    limit: Duration,
) -> Duration {
    let started = Instant::now();
    let mut pending: Vec<&(String, String)> = keys.iter().collect();
    while !pending.is_empty() {
        let mut still = Vec::new();
        for kv in pending {
            let mut ok = true;
            for r in replicas_in(cluster, "default", &kv.0, dc) {
                if reader.holds(&r, "default", &kv.0).await != Some(vec![kv.1.clone()]) {
                    ok = false;
                    break;
                }
            }
            if !ok {
                still.push(kv);
            }
        }
        pending = still;
        if pending.is_empty() {
            break;
        }
        if started.elapsed() >= limit {
            for kv in pending.iter().take(3) {
                for r in replicas_in(cluster, "default", &kv.0, dc) {
                    println!(
                        "{} on {}: {:?}",
                        kv.0,
                        r.id,
                        reader.holds(&r, "default", &kv.0).await
                    );
                }
            }
            for n in &cluster.nodes {
                let m = admin(n.admin_address, "GET", "/metrics")
                    .await
                    .unwrap_or_default();
                for l in m
                    .lines()
                    .filter(|l| l.starts_with("geokv_hint") || l.starts_with("geokv_membership_up"))
                {
                    println!("{} {l}", n.id);
                }
            }
        }
        assert!(
            started.elapsed() < limit,
            "{} keys still missing in {dc} after {limit:?}, e.g. {:?}",
            pending.len(),
            pending.first()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioned_dc_receives_every_acknowledged_write_after_heal() {
    let cluster = Cluster::start(Spec::two_dc()).await;
    let reader = cluster.replica_reader();
    cluster.partition_dcs("dc1", "dc2", true).await;
    let coordinators = ["dc1-n1", "dc1-n2", "dc1-n3"];
    let mut clients = Vec::new();
    for id in coordinators {
        clients.push(cluster.client(id).await);
    }
    let mut acked = Vec::new();
    let started = Instant::now();
    let mut i = 0;
    // Keep writing through the partition for a while (at least 1,000 keys).
    while i < 1200 || started.elapsed() < Duration::from_secs(20) {
        let (k, v) = (format!("geo-{i}"), format!("value-{i}"));
        let idx = i % clients.len();
        let c = &mut clients[idx];
        put(c, &k, &v, vec![], Consistency::LocalQuorum)
            .await
            .unwrap_or_else(|e| panic!("LOCAL_QUORUM put {k} during partition: {e:?}"));
        acked.push((k, v));
        i += 1;
        if i >= 5000 {
            break;
        }
    }
    let backlog = cluster
        .metric("dc1-n1", "geokv_hint_backlog_entries", "dest=\"dc:dc2\"")
        .await;
    println!(
        "wrote {} keys during the partition in {:?}; dc1-n1 backlog to dc2: {backlog}",
        acked.len(),
        started.elapsed()
    );
    assert!(backlog > 0.0, "the stream to dc2 is backlogged while cut");

    let healed = Instant::now();
    cluster.partition_dcs("dc1", "dc2", false).await;
    let drain = wait_dc_holds(&reader, &cluster, "dc2", &acked, Duration::from_secs(120)).await;
    println!(
        "drain: every dc2 replica holds all {} keys {:?} after heal ({:.0} keys/s)",
        acked.len(),
        drain,
        acked.len() as f64 / drain.as_secs_f64().max(0.001)
    );
    let _ = healed;
    let mut c = cluster.client("dc2-n2").await;
    for (k, v) in acked.iter().step_by(7) {
        let r = get(&mut c, k, Consistency::All)
            .await
            .expect("ALL read after heal");
        assert_eq!(values(&r), vec![v.clone()], "{k}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinator_killed_right_after_ack_still_delivers_to_remote_dc() {
    let mut cluster = Cluster::start(Spec::two_dc()).await;
    let reader = cluster.replica_reader();
    // Keep dc2 unreachable so the write can only get there from the
    // coordinator's durable stream log.
    cluster.partition_dcs("dc1", "dc2", true).await;
    let mut c = cluster.client("dc1-n1").await;
    let mut acked = Vec::new();
    for i in 0..50 {
        let (k, v) = (format!("crash-{i}"), format!("v{i}"));
        put(&mut c, &k, &v, vec![], Consistency::LocalQuorum)
            .await
            .unwrap();
        acked.push((k, v));
    }
    cluster.kill("dc1-n1");
    cluster.partition_dcs("dc1", "dc2", false).await;
    cluster.restart("dc1-n1").await;
    let took = wait_dc_holds(&reader, &cluster, "dc2", &acked, Duration::from_secs(60)).await;
    println!("after the coordinator's restart dc2 held every write within {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hinted_handoff_delivers_to_a_returning_replica() {
    let mut cluster = Cluster::start(Spec::two_dc()).await;
    let reader = cluster.replica_reader();
    cluster.kill("dc1-n3");
    cluster
        .wait_seen("dc1-n1", "dc1-n3", false, Duration::from_secs(15))
        .await;
    let mut c = cluster.client("dc1-n1").await;
    let mut written = Vec::new();
    for i in 0..40 {
        let (k, v) = (format!("hint-{i}"), format!("h{i}"));
        let level = if i % 2 == 0 {
            Consistency::LocalQuorum
        } else {
            Consistency::Any
        };
        put(&mut c, &k, &v, vec![], level)
            .await
            .unwrap_or_else(|e| panic!("{level:?}: {e:?}"));
        written.push((k, v));
    }
    let stored = cluster
        .metric("dc1-n1", "geokv_hints_stored_total", "")
        .await;
    assert!(stored > 0.0, "hints were stored for the dead replica");
    cluster.restart("dc1-n3").await;
    let n3 = cluster.node("dc1-n3").clone();
    let started = Instant::now();
    for (k, v) in &written {
        if !replicas_in(&cluster, "default", k, "dc1")
            .iter()
            .any(|r| r.id == n3.id)
        {
            continue;
        }
        loop {
            if reader.holds(&n3, "default", k).await == Some(vec![v.clone()]) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{k} never handed off to dc1-n3"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    println!("hints delivered to dc1-n3 within {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_detects_a_dead_node_and_does_not_flap_under_wan_delay() {
    let mut cluster = Cluster::start(Spec::two_dc()).await;
    cluster.wan_delay(50).await;
    let before = cluster
        .metric("dc1-n1", "geokv_membership_transitions_total", "")
        .await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    let after = cluster
        .metric("dc1-n1", "geokv_membership_transitions_total", "")
        .await;
    assert_eq!(
        before, after,
        "no up/down transitions under a steady 50 ms WAN delay"
    );

    cluster.kill("dc2-n2");
    for n in cluster.nodes.clone() {
        if n.id == "dc2-n2" {
            continue;
        }
        let took = cluster
            .wait_seen(&n.id, "dc2-n2", false, Duration::from_secs(20))
            .await;
        println!("{} marked dc2-n2 down after {took:?}", n.id);
    }
    cluster.restart("dc2-n2").await;
    for n in cluster.nodes.clone() {
        cluster
            .wait_seen(&n.id, "dc2-n2", true, Duration::from_secs(20))
            .await;
    }
}

/// Sums a metric over the nodes of one datacenter.
async fn dc_metric(cluster: &Cluster, dc: &str, name: &str, filter: &str) -> f64 {
    let mut sum = 0.0;
    for n in cluster.nodes.iter().filter(|n| n.dc == dc) {
        sum += cluster.metric(&n.id, name, filter).await;
    }
    sum
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_acknowledgements_come_through_the_stream() {
    let cluster = Cluster::start(Spec::two_dc()).await;
    let reader = cluster.replica_reader();
    let mut c = cluster.client("dc1-n1").await;

    // EACH_QUORUM and ALL need dc2's replicas: their acknowledgements come
    // back on dc1's streams to dc2, never from direct cross-DC writes.
    let mut written = Vec::new();
    for i in 0..20 {
        let (k, v) = (format!("eq-{i}"), format!("e{i}"));
        let level = if i % 2 == 0 {
            Consistency::EachQuorum
        } else {
            Consistency::All
        };
        let r = put(&mut c, &k, &v, vec![], level)
            .await
            .unwrap_or_else(|e| panic!("{level:?} put {k}: {e:?}"));
        let need = if level == Consistency::All { 6 } else { 4 };
        assert!(r.acks >= need, "{level:?} {k}: {} acks", r.acks);
        written.push((k, v));
    }
    let urgent = dc_metric(
        &cluster,
        "dc2",
        "geokv_stream_applied_total",
        "from_dc=\"dc1\",lane=\"urgent\"",
    )
    .await;
    assert!(urgent >= 20.0, "dc2 applied {urgent} urgent stream entries");
    let direct = dc_metric(
        &cluster,
        "dc2",
        "geokv_internode_requests_total",
        "rpc=\"replica_write\",from_dc=\"dc1\"",
    )
    .await;
    let streams = dc_metric(
        &cluster,
        "dc2",
        "geokv_internode_requests_total",
        "rpc=\"stream\",from_dc=\"dc1\"",
    )
    .await;
    assert!(streams > 0.0, "dc1 opened streams to dc2");
    assert_eq!(direct, 0.0, "no write crossed the WAN outside the stream");
    // ALL writes are on every dc2 replica already; EACH_QUORUM ones on a
    // quorum of them at the acknowledgement, and on the third soon after.
    for (k, v) in written.iter().skip(1).step_by(2) {
        for r in replicas_in(&cluster, "default", k, "dc2") {
            let held = reader.holds(&r, "default", k).await;
            assert!(
                held.as_ref().is_some_and(|h| h.contains(v)),
                "{k} on {}: {held:?}",
                r.id
            );
        }
    }
    let took = wait_dc_holds(&reader, &cluster, "dc2", &written, Duration::from_secs(10)).await;
    println!("every dc2 replica held every write {took:?} after the last one");

    // With dc2 cut off, EACH_QUORUM cannot be met, and says so; the write
    // stays queued in the stream and reaches dc2 after the heal.
    cluster.partition_dcs("dc1", "dc2", true).await;
    let e = put(&mut c, "eq-cut", "queued", vec![], Consistency::EachQuorum)
        .await
        .expect_err("EACH_QUORUM with dc2 cut off");
    assert!(
        matches!(
            e.code(),
            tonic::Code::DeadlineExceeded | tonic::Code::Unavailable
        ),
        "{e:?}"
    );
    assert!(e.message().contains("EACH_QUORUM"), "{}", e.message());
    assert!(e.message().contains("dc2 has 0 of 2"), "{}", e.message());
    println!(
        "EACH_QUORUM with dc2 cut off: {:?}: {}",
        e.code(),
        e.message()
    );
    let local = get(&mut c, "eq-cut", Consistency::LocalQuorum)
        .await
        .expect("dc1 read");
    assert_eq!(values(&local), vec!["queued".to_string()]);
    cluster.partition_dcs("dc1", "dc2", false).await;
    let cut = vec![("eq-cut".to_string(), "queued".to_string())];
    let took = wait_dc_holds(&reader, &cluster, "dc2", &cut, Duration::from_secs(30)).await;
    println!("the write that timed out at EACH_QUORUM reached dc2 {took:?} after the heal");
}
