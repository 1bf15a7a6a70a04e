//! A leaver's hinted queues are never lost, and never hold its leave up.
//!
//! The queue kept on the leaver is its inter-DC stream to dc2: dc2's one
//! node is paused (SIGSTOP) while the leaver takes writes and leaves, so
//! that stream cannot drain (and the leave's announce skips the paused
//! node as down).
//! - Killed after it is Left, while it still has queued entries, the
//!   leaver starts again drain-only (no client port, no internode server),
//!   hands everything over and exits 0.
//! - Killed while draining and started again drain-only while every
//!   adopter refuses its batches (the test-only fault `refuse-adoption`)
//!   and dc2 is still paused, it keeps everything; stopped (SIGTERM), it
//!   exits 1 naming the entries left; started again once they can go, it
//!   hands everything over and exits 0.
//! - With dc2 paused throughout, the leave still ends: the leaver hands
//!   its dc2 backlog to another node of dc1 and exits 0; dc2 gets every
//!   write once it is back.
//!
//! The verdict waits for the remaining dc1 nodes' streams to dc2: writes
//! the leaver did not replicate were forwarded to another dc1 replica,
//! which queued their dc2 entries itself (and whose stream backs off while
//! dc2 is paused). Periodic anti-entropy is an hour away, so it cannot
//! fill a gap meanwhile.

use crate::common::*;
use geokv::proto::v1::Consistency;
use std::time::{Duration, Instant};

/// The leaver's `GET /decommission` phase.
async fn phase(c: &Cluster, id: &str) -> Option<String> {
    let body = admin(c.node(id).admin_address, "GET", "/decommission")
        .await
        .ok()?;
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    Some(v["phase"].as_str()?.to_string())
}

/// dc1 of four (dc1-n4 leaves), dc2 of one (paused); 200 LOCAL_QUORUM
/// writes through the leaver, acknowledged, then the decommission begins.
async fn writes_then_leave() -> (Cluster, Vec<String>) {
    writes_then_leave_refused(false).await
}

/// [`writes_then_leave`]; with `refused`, dc1's other nodes refuse every
/// batch offered for adoption (the test-only fault `refuse-adoption`)
/// from before the leave begins.
async fn writes_then_leave_refused(refused: bool) -> (Cluster, Vec<String>) {
    let c = Cluster::start(Spec {
        dcs: vec![("dc1", 4), ("dc2", 1)],
        replication: vec![("dc1", 3), ("dc2", 1)],
        extra_keyspaces: Vec::new(),
        gossip_interval_ms: 100,
        extra_args: Vec::new(),
    })
    .await;
    c.signal("dc2-n1", libc::SIGSTOP);
    let acked = c.preload("dc1-n4", "drain", 200).await;
    for id in ["dc1-n1", "dc1-n2", "dc1-n3"]
        .into_iter()
        .filter(|_| refused)
    {
        (admin(c.node(id).admin_address, "POST", "/faults/refuse-adoption").await)
            .expect("fault set");
    }
    admin(c.node("dc1-n4").admin_address, "POST", "/decommission")
        .await
        .expect("decommission begins");
    (c, acked)
}

/// Waits (up to 90 s) until the leaver's decommission is draining.
async fn until_draining(c: &Cluster) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let p = phase(c, "dc1-n4").await;
        if p.as_deref() == Some("draining") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "never draining ({p:?})\n{}",
            c.log("dc1-n4")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leaver_killed_while_draining_restarts_drain_only_and_hands_everything_over() {
    let (mut c, acked) = writes_then_leave().await;
    until_draining(&c).await;
    c.kill("dc1-n4");
    c.signal("dc2-n1", libc::SIGCONT);
    c.restart_with_args("dc1-n4", &[]);
    let exit = c.wait_exit("dc1-n4", Duration::from_secs(60)).await;
    let log = c.log("dc1-n4");
    assert!(exit.success(), "restarted leaver exited {exit}\n{log}");
    assert!(
        log.contains("starting only to hand its queued hints over"),
        "{log}"
    );
    every_write_reaches_dc2(&c, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leave_ends_while_a_remote_datacenter_is_down_and_its_backlog_is_handed_over() {
    let (mut c, acked) = writes_then_leave().await;
    // dc2 stays paused: the leaver cannot deliver its dc2 stream itself.
    let exit = c.wait_exit("dc1-n4", Duration::from_secs(120)).await;
    let log = c.log("dc1-n4");
    assert!(exit.success(), "the leaver exited {exit}\n{log}");
    let mut adopted = 0.0;
    for id in ["dc1-n1", "dc1-n2", "dc1-n3"] {
        adopted += (c.metric(id, "geokv_hints_adopted_total", "dest=\"dc:dc2\"")).await;
    }
    assert!(adopted > 0.0, "the leaver handed its dc2 backlog over");
    c.signal("dc2-n1", libc::SIGCONT);
    every_write_reaches_dc2(&c, &acked).await;
}

/// A drain-only leaver that can neither deliver (dc2 paused) nor hand
/// over (every adopter refuses, the test-only fault) keeps its entries
/// and, stopped (SIGTERM), exits non-zero naming what is left; started
/// again once adoption is accepted and dc2 is back, it hands everything
/// over and exits 0, and dc2 gets every acknowledged write.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_drain_only_leaver_that_cannot_hand_over_exits_non_zero_naming_what_is_left() {
    let (mut c, acked) = writes_then_leave_refused(true).await;
    until_draining(&c).await;
    c.kill("dc1-n4");
    c.restart_with_args("dc1-n4", &[]);
    // Its progress line (every 10 s) shows the dc2 stream still queued.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(c.log("dc1-n4").lines()).any(|l| l.contains("draining: ") && l.contains("dc:dc2=")) {
        assert!(
            Instant::now() < deadline,
            "no drain progress line\n{}",
            c.log("dc1-n4")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    c.signal("dc1-n4", libc::SIGTERM);
    let exit = c.wait_exit("dc1-n4", Duration::from_secs(30)).await;
    let log = c.log("dc1-n4");
    assert_eq!(exit.code(), Some(1), "exited {exit}\n{log}");
    let said = (log.lines())
        .find(|l| l.contains("the drain stopped with"))
        .unwrap_or_else(|| panic!("no error naming what is left\n{log}"));
    assert!(said.contains("dc:dc2="), "{said}");
    let mut adopted = 0.0;
    for id in ["dc1-n1", "dc1-n2", "dc1-n3"] {
        adopted += (c.metric(id, "geokv_hints_adopted_total", "")).await;
        (admin(c.node(id).admin_address, "POST", "/faults/accept-adoption").await)
            .expect("fault cleared");
    }
    assert_eq!(adopted, 0.0, "an adopter took entries despite the fault");
    c.signal("dc2-n1", libc::SIGCONT);
    c.restart_with_args("dc1-n4", &[]);
    let exit = c.wait_exit("dc1-n4", Duration::from_secs(60)).await;
    assert!(exit.success(), "exited {exit}\n{}", c.log("dc1-n4"));
    every_write_reaches_dc2(&c, &acked).await;
}

/// Once the remaining dc1 nodes' streams to dc2 are empty, dc2's one
/// replica has every acknowledged write; one missing then was lost.
async fn every_write_reaches_dc2(c: &Cluster, acked: &[String]) {
    let others = ["dc1-n1", "dc1-n2", "dc1-n3"];
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let mut queued = 0.0;
        for id in others {
            queued += (c.metric(id, "geokv_hint_backlog_entries", "dest=\"dc:dc2\"")).await;
        }
        if queued == 0.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the other dc1 nodes still queue {queued} entries for dc2"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut r = c.client("dc2-n1").await;
    let mut lost = Vec::new();
    for k in acked {
        if !in_dc2(&mut r, k).await {
            lost.push(format!(
                "{k} (leaver a replica: {})",
                leaver_replicated(c, k)
            ));
        }
    }
    assert!(
        lost.is_empty(),
        "{} of {} writes missing in dc2: {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(10)]
    );
}

/// Whether the leaver (dc1-n4) was one of `key`'s dc1 replicas.
fn leaver_replicated(c: &Cluster, key: &str) -> bool {
    (replicas_in(c, "default", key, "dc1").iter()).any(|n| n.id == "dc1-n4")
}

/// Whether dc2 (read at LOCAL_ONE through `r`) holds `key`'s one value.
async fn in_dc2(r: &mut Kv, key: &str) -> bool {
    let got = get(r, key, Consistency::LocalOne).await.map(|g| values(&g));
    got.is_ok_and(|v| v == vec![key.to_string()])
}
