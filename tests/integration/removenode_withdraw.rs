//! `geokv removenode --withdraw` with real node processes (review-cancel31
//! H1, issue 11): dc1 of four nodes (rf 3) with dc1-n2 and dc1-n3 killed
//! together. The removal of dc1-n2 waits for dc1-n3 (a gainer) for good
//! and dc1-n3 cannot join it; the refusal names the withdraw. The withdraw
//! makes dc1-n2 Normal again with no movement on every live node, a
//! second withdraw is 409, and dc1 then takes a new movement: a new
//! removal attempt of dc1-n2, under another name. Writers run through
//! the removal, the withdraw and the new attempt; once dc1-n3 is back the
//! new attempt ends, and every write acknowledged at LOCAL_QUORUM, before
//! or during, reads back at QUORUM with its value (review-withdraw34 L5).

use crate::common::*;
use crate::decommission::stop_dc1_writers;
use geokv::layout::NodeState;
use geokv::proto::v1::Consistency;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

/// dc1's movement as `GET /movement` on `id` names it.
async fn movement(c: &Cluster, id: &str) -> String {
    let body = (admin(c.node(id).admin_address, "GET", "/movement").await).expect("answers");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    v["movements"]["dc1"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// `geokv removenode MORE… --endpoint` dc1-n1's admin address.
fn cli(c: &Cluster, more: &[&str]) -> (bool, String) {
    let endpoint = c.node("dc1-n1").admin_address.to_string();
    let args = [&["removenode"], more, &["--endpoint", &endpoint]].concat();
    tokio::task::block_in_place(|| c.cli(&args))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_removal_held_by_a_dead_gainer_is_withdrawn_and_the_dc_moves_again() {
    let mut c = Cluster::start(Spec::one_dc(4, 3)).await;
    let before = c.preload("dc1-n1", "pre", 200).await;
    c.kill("dc1-n2");
    c.kill("dc1-n3");
    for dead in ["dc1-n2", "dc1-n3"] {
        (c.wait_seen("dc1-n1", dead, false, Duration::from_secs(30))).await;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let clients = c.clients_in("dc1", &["dc1-n2", "dc1-n3"]);
    let writer = tokio::spawn(writer(clients, "dc1-w".into(), stop.clone()));
    withdraw_and_begin_again(&c).await;
    let acked = stop_dc1_writers(vec![writer], &stop).await;
    assert!(acked.len() > 10, "only {} writes acknowledged", acked.len());

    // dc1-n3 back: the new attempt copies and ends, and nothing
    // acknowledged is lost.
    c.restart("dc1-n3").await;
    let live: Vec<_> = ["dc1-n1", "dc1-n3", "dc1-n4"]
        .iter()
        .map(|id| c.node(id).admin_address)
        .collect();
    until_every_layout(&live, |l| {
        l.node("dc1-n2").map(|(_, _, n)| n.state) == Some(NodeState::Removed)
            && l.movements.is_empty()
    })
    .await;
    let mut r = c.client("dc1-n1").await;
    let all: Vec<String> = acked.iter().chain(&before).cloned().collect();
    let limit = Duration::from_secs(30);
    assert_all_read(&mut r, &all, Consistency::Quorum, limit).await;
}

/// The removal of dc1-n2 begun, dc1-n3's refused, the first withdrawn
/// (every live node sees it, a second withdraw is 409), then begun again
/// as another attempt.
async fn withdraw_and_begin_again(c: &Cluster) {
    let (ok, out) = cli(c, &["dc1-n2", "--no-wait", "--json"]);
    assert!(ok, "removenode failed: {out}\n{}", c.log("dc1-n1"));
    let first = movement(c, "dc1-n1").await;
    assert!(first.starts_with("removal of dc1-n2 (attempt v"), "{first}");
    let (ok, out) = cli(c, &["dc1-n3", "--no-wait"]);
    assert!(!ok && out.contains("removenode dc1-n2 --withdraw"), "{out}");

    let (ok, out) = cli(c, &["dc1-n2", "--withdraw", "--json"]);
    assert!(ok, "withdraw failed: {out}\n{}", c.log("dc1-n1"));
    assert!(out.contains("\"removal\":\"withdrawn\""), "{out}");
    let live: Vec<_> = ["dc1-n1", "dc1-n4"]
        .iter()
        .map(|id| c.node(id).admin_address)
        .collect();
    until_every_layout(&live, |l| {
        l.node("dc1-n2").map(|(_, _, n)| n.state) == Some(NodeState::Normal)
            && l.movements.is_empty()
    })
    .await;
    let (ok, out) = cli(c, &["dc1-n2", "--withdraw"]);
    assert!(
        !ok && out.contains("no removal"),
        "nothing to withdraw: {out}"
    );

    // dc1 takes a new movement: another attempt, under its own name.
    let (ok, out) = cli(c, &["dc1-n2", "--no-wait", "--json"]);
    assert!(ok, "removenode again failed: {out}\n{}", c.log("dc1-n1"));
    let again = movement(c, "dc1-n1").await;
    assert!(again.starts_with("removal of dc1-n2 (attempt v"), "{again}");
    assert_ne!(again, first, "a new attempt");
}
