//! Durability of what a coordinator promised, against real node processes:
//! remote-datacenter acknowledgements count a quorum there, not every
//! replica, and the other local replicas of an acknowledged write receive
//! it even when every node is SIGKILLed right after the acknowledgement.

use crate::common::*;
use geokv::proto::v1::*;
use std::time::{Duration, Instant};

/// dc2 nodes that applied urgent stream entries from dc1 (the receivers of
/// dc1's streams).
async fn urgent_receivers(cluster: &Cluster) -> Vec<String> {
    let mut v = Vec::new();
    for n in cluster.nodes.iter().filter(|n| n.dc == "dc2") {
        let applied = cluster
            .metric(
                &n.id,
                "geokv_stream_applied_total",
                "from_dc=\"dc1\",lane=\"urgent\"",
            )
            .await;
        if applied > 0.0 {
            v.push(n.id.clone());
        }
    }
    v
}

/// With one dc2 replica paused (SIGSTOP: its sockets accept, nothing
/// answers, and gossip has not marked it down yet), EACH_QUORUM and QUORUM
/// writes from dc1 need 2 of dc2's 3 replicas and get them at once; the
/// paused replica gets every write once it resumes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_remote_replica_does_not_block_each_quorum() {
    let cluster = Cluster::start(Spec::two_dc()).await;
    let reader = cluster.replica_reader();
    let mut c = cluster.client("dc1-n1").await;
    for i in 0..3 {
        put(
            &mut c,
            &format!("warm-{i}"),
            "w",
            vec![],
            Consistency::EachQuorum,
        )
        .await
        .expect("EACH_QUORUM with every node up");
    }
    let receivers = urgent_receivers(&cluster).await;
    assert!(!receivers.is_empty(), "dc1's stream reached dc2");
    let paused = cluster
        .nodes
        .iter()
        .find(|n| n.dc == "dc2" && !receivers.contains(&n.id))
        .expect("a dc2 node that does not receive dc1-n1's stream")
        .id
        .clone();
    cluster.signal(&paused, libc::SIGSTOP);
    let stopped_at = Instant::now();
    let mut written = Vec::new();
    for i in 0..6 {
        let (k, v) = (format!("paused-{i}"), format!("p{i}"));
        let level = if i % 2 == 0 {
            Consistency::EachQuorum
        } else {
            Consistency::Quorum
        };
        let t = Instant::now();
        let r = put(&mut c, &k, &v, vec![], level).await;
        let took = t.elapsed();
        let r = r.unwrap_or_else(|e| {
            panic!(
                "{level:?} put {k} with {paused} paused ({:?} after the pause): {e:?}",
                stopped_at.elapsed()
            )
        });
        assert!(r.acks >= 4, "{level:?} {k}: {} acks", r.acks);
        assert!(took < Duration::from_secs(1), "{level:?} {k} took {took:?}");
        written.push((k, v));
    }
    let during = stopped_at.elapsed();
    // The writes all ran while the paused node was still believed up.
    let view = cluster.view(&receivers[0]).await;
    assert_eq!(view.get(&paused), Some(&true), "{paused} still believed up");
    println!("6 writes with {paused} paused took {during:?}");
    cluster.signal(&paused, libc::SIGCONT);
    let node = cluster.node(&paused).clone();
    let started = Instant::now();
    for (k, v) in &written {
        loop {
            let held = reader.holds(&node, "default", k).await;
            if held.as_ref().is_some_and(|h| h.contains(v)) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{k} never reached {paused}: {held:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    println!(
        "the resumed replica held every write {:?} after SIGCONT",
        started.elapsed()
    );
}

/// `writers` concurrent writers putting `per_writer` keys each at ONE
/// through dc1-n1; the acknowledged ones.
async fn put_at_one(
    cluster: &Cluster,
    prefix: &str,
    writers: usize,
    per_writer: usize,
) -> Vec<(String, String)> {
    let mut tasks = Vec::new();
    for w in 0..writers {
        let mut c = cluster.client("dc1-n1").await;
        let prefix = prefix.to_string();
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..per_writer {
                let (k, v) = (format!("{prefix}-{w}-{i}"), format!("v{w}-{i}"));
                if put(&mut c, &k, &v, vec![], Consistency::One).await.is_ok() {
                    acked.push((k, v));
                }
            }
            acked
        }));
    }
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.expect("writer"));
    }
    acked
}

/// Puts at ONE, every node SIGKILLed right after the last acknowledgement,
/// every node restarted: each acknowledged write reaches every local
/// replica within seconds, without a repair (the intent to replicate was
/// durable with the write). One local replica is paused (SIGSTOP) for the
/// last writes, so their direct fan-out to it is still in flight at the kill
/// (what a slow replica or an unlucky instant does).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_local_replica_gets_each_acknowledged_write_after_a_kill_all() {
    let mut cluster = Cluster::start(Spec::two_dc()).await;
    let reader = cluster.replica_reader();
    let mut acked = put_at_one(&cluster, "one", 8, 50).await;
    cluster.signal("dc1-n2", libc::SIGSTOP);
    let paused = Instant::now();
    acked.extend(put_at_one(&cluster, "slow", 8, 25).await);
    let ids: Vec<String> = cluster.nodes.iter().map(|n| n.id.clone()).collect();
    for id in &ids {
        cluster.kill(id);
    }
    println!(
        "{} writes acknowledged, the last {:?} after the pause",
        acked.len(),
        paused.elapsed()
    );
    assert!(acked.len() > 500, "{} acked", acked.len());
    for id in &ids {
        cluster.restart(id).await;
    }
    cluster.wait_all_up(Duration::from_secs(30)).await;
    let started = Instant::now();
    let mut missing = acked.clone();
    loop {
        let mut still = Vec::new();
        for (k, v) in missing {
            for r in replicas_in(&cluster, "default", &k, "dc1") {
                let held = reader.holds(&r, "default", &k).await;
                if !held.as_ref().is_some_and(|h| h.contains(&v)) {
                    still.push((k, v));
                    break;
                }
            }
        }
        missing = still;
        if missing.is_empty() {
            break;
        }
        if started.elapsed() >= Duration::from_secs(30) {
            for (k, _) in missing.iter().take(5) {
                for r in replicas_in(&cluster, "default", k, "dc1") {
                    println!(
                        "{k} on {}: {:?}",
                        r.id,
                        reader.holds(&r, "default", k).await
                    );
                }
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{} of {} acknowledged writes still missing on a dc1 replica, e.g. {:?}",
            missing.len(),
            acked.len(),
            missing.first()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!(
        "{} acknowledged writes on every dc1 replica {:?} after the restart",
        acked.len(),
        started.elapsed()
    );
}
