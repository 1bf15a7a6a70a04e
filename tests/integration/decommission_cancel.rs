//! `geokv decommission --cancel` with real node processes (audit11 D1,
//! issue 11): dc1 of four nodes (rf 3), a gainer of dc1-n4's leave
//! SIGKILLed, so the leave waits for it for good; the cancel makes dc1-n4
//! Normal again with no movement on every live node, the CLI reports
//! `cancelled` and exits 0, and every write acknowledged before or during
//! the leave reads back at QUORUM through the node that stayed.

use crate::common::*;
use crate::decommission::stop_dc1_writers;
use geokv::layout::NodeState;
use geokv::proto::v1::Consistency;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

/// The leaver's `GET /decommission` phase and detail.
async fn phase(c: &Cluster, id: &str) -> (String, String) {
    let body = (admin(c.node(id).admin_address, "GET", "/decommission").await)
        .expect("the leaver answers");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let s = |f: &str| v[f].as_str().unwrap_or_default().to_string();
    (s("phase"), s("detail"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leave_held_by_a_dead_gainer_is_cancelled_and_loses_nothing() {
    let mut c = Cluster::start(Spec::one_dc(4, 3)).await;
    let before = c.preload("dc1-n1", "pre", 1000).await;
    // dc1-n2 gains ranges of dc1-n4 (each of them is on three of the four
    // nodes) and dies for good.
    c.kill("dc1-n2");
    let stop = Arc::new(AtomicBool::new(false));
    let clients = c.clients_in("dc1", &["dc1-n2"]);
    let writer = tokio::spawn(writer(clients, "dc1-w".into(), stop.clone()));

    let leaver = c.node("dc1-n4").admin_address;
    admin(leaver, "POST", "/decommission")
        .await
        .expect("decommission begins");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (held, detail) = phase(&c, "dc1-n4").await;
    assert!(
        ["announcing", "streaming"].contains(&held.as_str()),
        "held by the dead gainer, not {held}: {detail}"
    );

    let endpoint = leaver.to_string();
    let args = [
        "decommission",
        "--cancel",
        "--json",
        "--endpoint",
        &endpoint,
    ];
    let (ok, stdout) = tokio::task::block_in_place(|| c.cli(&args));
    assert!(ok, "cancel failed: {stdout}\n{}", c.log("dc1-n4"));
    assert!(stdout.contains("\"outcome\":\"cancelled\""), "{stdout}");
    assert_eq!(phase(&c, "dc1-n4").await.0, "cancelled");
    let live: Vec<_> = ["dc1-n1", "dc1-n3", "dc1-n4"]
        .iter()
        .map(|id| c.node(id).admin_address)
        .collect();
    until_every_layout(&live, |l| {
        l.node("dc1-n4").map(|(_, _, n)| n.state) == Some(NodeState::Normal)
            && l.movements.is_empty()
    })
    .await;

    let acked = stop_dc1_writers(vec![writer], &stop).await;
    assert!(acked.len() > 10, "only {} writes acknowledged", acked.len());
    let mut r = c.client("dc1-n4").await;
    let all: Vec<String> = acked.iter().chain(&before).cloned().collect();
    assert_all_read(&mut r, &all, Consistency::Quorum, Duration::ZERO).await;
}
