//! An elastic cluster with real node processes: a fourth node joins dc1 of
//! a running two-datacenter cluster under continuous LOCAL_QUORUM writers
//! in both datacenters (`geokv node --join SEED …`). Afterwards every
//! acknowledged write is read back at LOCAL_QUORUM in its datacenter and at
//! ALL, the new node holds exactly the keys it replicates under the
//! final layout (about 3/4 of them: rf 3 over 4 nodes), and the old owners
//! drop what they lost by themselves (automatic cleanup).

use crate::common::*;
use geokv::proto::v1::Consistency;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fourth_node_joins_dc1_under_local_quorum_writers_and_nothing_acked_is_lost() {
    let c = Cluster::start(Spec::two_dc()).await;
    // Data before the join.
    let before = c.preload("dc1-n1", "pre", 3000).await;

    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for (dc, w) in [("dc1", 0), ("dc1", 1), ("dc2", 0)] {
        let tag = format!("{dc}-w{w}");
        let h = tokio::spawn(writer(c.clients_in(dc, &[]), tag, stop.clone()));
        writers.push((dc, h));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    // The joiner: dc1, rack r4, the next loopback address of dc1.
    let n1 = c.node("dc1-n1").clone();
    let began = Instant::now();
    let extra = ["--dc", "dc1", "--rack", "r4"];
    let mut n4 = c.spawn_new_node("dc1-n4", "dc1-n4", c.spare_ip(14), n1.peer_address, &extra);

    // Joined: dc1-n1's layout shows the join finished.
    let limit = Duration::from_secs(240);
    let joined = n4.wait_normal(n1.admin_address, limit, async || {}).await;
    // The join's progress is on the joiner's movement board (`GET
    // /movement`, `geokv ring`): done (the joiner marks it right after
    // proposing itself Normal), with what it streamed.
    let deadline = Instant::now() + Duration::from_secs(10);
    let board = loop {
        let body = admin(n4.admin_address(), "GET", "/movement").await.unwrap();
        let board: serde_json::Value = serde_json::from_str(&body).unwrap();
        if board["streaming"]["status"] == "done" || Instant::now() > deadline {
            break board;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let report = &board["streaming"];
    assert_eq!(report["movement"], "join of dc1-n4", "{board}");
    assert_eq!(report["status"], "done", "{board}");
    assert!(report["keys"].as_u64().unwrap() > 0, "{board}");
    eprintln!(
        "join finished in {:?} (layout v{})",
        began.elapsed(),
        joined.version
    );
    for line in n4
        .full_log()
        .lines()
        .filter(|l| l.contains("join complete"))
    {
        eprintln!("{line}");
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    for (dc, h) in writers {
        acked.push((dc, h.await.unwrap()));
    }
    let n4_info = joined
        .member_topology()
        .nodes()
        .into_iter()
        .find(|n| n.id == "dc1-n4")
        .unwrap();

    // Every acknowledged write at LOCAL_QUORUM in its datacenter.
    let total: usize = acked.iter().map(|(_, k)| k.len()).sum();
    assert!(total > 100, "only {total} writes acknowledged");
    for (dc, keys) in &acked {
        let mut r = c.client(&format!("{dc}-n2")).await;
        assert_all_read(&mut r, keys, Consistency::LocalQuorum, Duration::ZERO).await;
    }

    // The joiner holds exactly the pre-join keys it replicates now (~3/4).
    let ring = geokv::ring::Ring::from_layout(&joined);
    let me = ring.node_by_id("dc1-n4").unwrap().idx;
    let reader = c.replica_reader();
    let mut held = 0;
    for k in &before {
        let mine = ring.replicas("default", k.as_bytes()).unwrap().contains(me);
        let got = reader
            .holds(&n4_info, "default", k)
            .await
            .expect("dc1-n4 answers");
        assert_eq!(!got.is_empty(), mine, "{k}: held {got:?}, replica {mine}");
        held += usize::from(mine);
    }
    let share = held as f64 / before.len() as f64;
    eprintln!(
        "dc1-n4 holds {held} of {} pre-join keys ({share:.2})",
        before.len()
    );
    assert!((0.6..=0.9).contains(&share), "share {share}");

    // The old owners clean up by themselves once the join is over: each
    // holds exactly the pre-join keys it still replicates (and `geokv
    // cleanup` by hand answers).
    for id in ["dc1-n1", "dc1-n2", "dc1-n3"] {
        let node = c.node(id).clone();
        let idx = ring.node_by_id(id).unwrap().idx;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut wrong = 0;
            for k in &before {
                let mine = ring
                    .replicas("default", k.as_bytes())
                    .unwrap()
                    .contains(idx);
                let got = reader.holds(&node, "default", k).await.expect("answers");
                wrong += usize::from(got.is_empty() == mine);
            }
            if wrong == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{id}: {wrong} pre-join keys held against its ranges after cleanup"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let body = admin(node.admin_address, "POST", "/cleanup").await.unwrap();
        assert!(body.contains("\"ranges\":"), "{id} cleanup: {body}");
    }

    // At ALL (a sample) once hints and streams have drained.
    let sample: Vec<String> = (acked.iter())
        .flat_map(|(_, keys)| keys.iter().step_by(7).cloned())
        .collect();
    let mut r = c.client("dc1-n1").await;
    assert_all_read(&mut r, &sample, Consistency::All, Duration::from_secs(60)).await;
}
