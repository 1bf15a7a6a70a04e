//! `geokv removenode --withdraw` with real node processes (review-cancel31
//! H1, issue 11): dc1 of four nodes (rf 3) with dc1-n2 and dc1-n3 killed
//! together. The removal of dc1-n2 waits for dc1-n3 (a gainer) for good
//! and dc1-n3 cannot join it; the refusal names the withdraw. The withdraw
//! makes dc1-n2 Normal again with no movement on every live node, a
//! second withdraw is 409, and dc1 then takes a new movement: a new
//! removal attempt of dc1-n2, under another name.

use crate::common::*;
use geokv::layout::NodeState;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_removal_held_by_a_dead_gainer_is_withdrawn_and_the_dc_moves_again() {
    let mut c = Cluster::start(Spec::one_dc(4, 3)).await;
    c.preload("dc1-n1", "pre", 200).await;
    c.kill("dc1-n2");
    c.kill("dc1-n3");
    for dead in ["dc1-n2", "dc1-n3"] {
        (c.wait_seen("dc1-n1", dead, false, Duration::from_secs(30))).await;
    }
    let endpoint = c.node("dc1-n1").admin_address.to_string();
    let cli = |c: &Cluster, more: &[&str]| {
        let args = [&["removenode"], more, &["--endpoint", &endpoint]].concat();
        tokio::task::block_in_place(|| c.cli(&args))
    };
    let (ok, out) = cli(&c, &["dc1-n2", "--no-wait", "--json"]);
    assert!(ok, "removenode failed: {out}\n{}", c.log("dc1-n1"));
    let first = movement(&c, "dc1-n1").await;
    assert!(first.starts_with("removal of dc1-n2 (attempt v"), "{first}");
    let (ok, out) = cli(&c, &["dc1-n3", "--no-wait"]);
    assert!(!ok && out.contains("removenode dc1-n2 --withdraw"), "{out}");

    let (ok, out) = cli(&c, &["dc1-n2", "--withdraw", "--json"]);
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
    let (ok, out) = cli(&c, &["dc1-n2", "--withdraw"]);
    assert!(
        !ok && out.contains("no removal"),
        "nothing to withdraw: {out}"
    );

    // dc1 takes a new movement: another attempt, under its own name.
    let (ok, out) = cli(&c, &["dc1-n2", "--no-wait", "--json"]);
    assert!(ok, "removenode again failed: {out}\n{}", c.log("dc1-n1"));
    let again = movement(&c, "dc1-n1").await;
    assert!(again.starts_with("removal of dc1-n2 (attempt v"), "{again}");
    assert_ne!(again, first, "a new attempt");
}
