//! Decommission survives a SIGKILL of the leaver: `POST /decommission`,
//! then SIGKILL the leaver once it has pushed some keys (mid-push; if the
//! push is over before the poll sees it, the kill is skipped and said so:
//! a Left node starts again drain-only: `decommission_drain`), restart it on its data
//! directory; it resumes the leave by itself (cursors per range), leaves
//! and exits 0, and every write acknowledged before or during the leave
//! reads back at QUORUM from the remaining nodes.

use crate::common::*;
use crate::decommission::{dc1_writers, stop_dc1_writers, until_the_leaver_is_left};
use geokv::proto::v1::Consistency;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The leaver's `GET /decommission` phase and keys pushed so far.
async fn phase(c: &Cluster, id: &str) -> Option<(String, u64)> {
    let body = admin(c.node(id).admin_address, "GET", "/decommission")
        .await
        .ok()?;
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    let keys = v["progress"]["keys"].as_u64().unwrap_or(0);
    Some((v["phase"].as_str()?.to_string(), keys))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leaver_killed_mid_push_resumes_after_a_restart_and_loses_nothing() {
    let mut c = Cluster::start(Spec::one_dc(4, 3)).await;
    // Four loaders at once through dc1-n1..n3.
    let loads = (0..4).map(|l| {
        let (c, via, prefix) = (&c, format!("dc1-n{}", l % 3 + 1), format!("pre-{l}"));
        async move { c.preload(&via, &prefix, 1500).await }
    });
    let before: Vec<String> = futures::future::join_all(loads).await.concat();
    let stop = Arc::new(AtomicBool::new(false));
    let writers = dc1_writers(&c, 2, &stop);

    let leaver = c.node("dc1-n4").clone();
    admin(leaver.admin_address, "POST", "/decommission")
        .await
        .expect("decommission begins");
    let deadline = Instant::now() + Duration::from_secs(30);
    let at_kill = loop {
        match phase(&c, "dc1-n4").await {
            Some((p, keys))
                if p != "announcing" && p != "idle" && (p != "streaming" || keys > 0) =>
            {
                break (p, keys)
            }
            _ => {}
        }
        assert!(Instant::now() < deadline, "the leave never streamed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // Only a Leaving node resumes the push: once Left it starts again
    // drain-only (`decommission_drain`), so a kill in a later phase is not
    // tried here.
    if at_kill.0 != "streaming" {
        eprintln!("the push finished before the kill ({at_kill:?}): nothing to resume");
    } else {
        c.kill("dc1-n4");
        eprintln!("killed the leaver in phase {at_kill:?}");
        // Not `restart`: a node that has left answers /health 503.
        c.restart_with_args("dc1-n4", &[]);
    }
    let exit = c.wait_exit("dc1-n4", Duration::from_secs(60)).await;
    assert!(
        exit.success(),
        "restarted leaver exited {exit}\n{}",
        c.log("dc1-n4")
    );
    let acked = stop_dc1_writers(writers, &stop).await;
    until_the_leaver_is_left(&c).await;
    let mut r = c.client("dc1-n2").await;
    assert!(acked.len() > 50, "only {} writes acknowledged", acked.len());
    let all: Vec<String> = acked.iter().chain(&before).cloned().collect();
    assert_all_read(&mut r, &all, Consistency::Quorum, Duration::ZERO).await;
}
