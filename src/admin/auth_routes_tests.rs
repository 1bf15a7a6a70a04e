//! The answers to a change that does not take effect as asked: on a node
//! whose clock is ahead of or behind most of its peers' (review-authq33
//! H1, review-clock34 H1), 409 `clock_skew` naming the offsets, with
//! nothing stamped or saved, on every change route's path; undone by a
//! later change a peer holds (review-clock34b M2), 409 `superseded`.

use std::sync::Arc;

use http_body_util::BodyExt;

use super::*;
use crate::engine::{Engine, Limits, MemoryEngine};
use crate::security::auth::spread::{Ack, Verdict};
use crate::security::auth::{store, sync, Decision, PushHook, Spreading, Stamp};

const TWO_HOURS_MS: i64 = 2 * 3600 * 1000;

fn node() -> (Arc<Auth>, Arc<MemoryEngine>) {
    let engine = Arc::new(MemoryEngine::new(Limits::default()));
    let stored: Arc<dyn Engine> = engine.clone();
    let auth = Auth::new(true, AuthState::default(), Some(stored));
    (Arc::new(auth), engine)
}

async fn answer(r: Response) -> (StatusCode, String) {
    let status = r.status();
    let body = r.into_body().collect().await.expect("body").to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn assert_refused((status, text): (StatusCode, String)) {
    assert_eq!(status, StatusCode::CONFLICT, "{text}");
    assert!(text.starts_with("clock_skew: "), "{text}");
    assert!(
        text.contains("n2 -7200.000 s (this node ahead)")
            && text.contains("n3 -7200.000 s (this node ahead)"),
        "{text}"
    );
    assert!(
        text.contains("nothing was stamped or saved") && text.contains("NTP"),
        "{text}"
    );
}

#[tokio::test]
async fn a_change_on_a_node_ahead_of_its_peers_is_refused_and_nothing_is_saved() {
    let (auth, engine) = node();
    let made = change(auth.clone(), |s| s.with_role("app", None, &[])).await;
    assert_eq!(answer(made).await.0, StatusCode::OK);
    let before = auth.state();
    assert_eq!(store::load(&*engine).unwrap(), *before);

    auth.heard_clock("n2", Some(-TWO_HOURS_MS));
    auth.heard_clock("n3", Some(-TWO_HOURS_MS));
    let grant = change(auth.clone(), |s| {
        s.with_grant("app", "default", Perm::Write)
    });
    assert_refused(answer(grant.await).await);
    let revoke = change(auth.clone(), |s| {
        s.with_revoke("app", "default", Perm::Read)
    });
    assert_refused(answer(revoke.await).await);
    let create = change(auth.clone(), |s| s.with_role("other", None, &[]));
    assert_refused(answer(create.await).await);
    let drop = change(auth.clone(), |s| s.without_role("app"));
    assert_refused(answer(drop.await).await);
    assert_eq!(auth.state(), before, "nothing stamped or swapped in");
    assert_eq!(store::load(&*engine).unwrap(), *before, "nothing saved");

    // One peer within the bound again: with this node, a quorum of 3 is.
    auth.heard_clock("n3", Some(150));
    let grant = change(auth.clone(), |s| {
        s.with_grant("app", "default", Perm::Write)
    });
    assert_eq!(answer(grant.await).await.0, StatusCode::OK);
    assert!(auth.state().clock() > before.clock());
    assert_eq!(store::load(&*engine).unwrap(), *auth.state());
}

/// review-clock34 H1: a node 2 h behind its peers is refused too (its
/// revoke would be stamped older than their grant, acknowledged and never
/// applied), naming each peer as ahead of it.
#[tokio::test]
async fn a_change_on_a_node_behind_its_peers_is_refused_and_nothing_is_saved() {
    let (auth, engine) = node();
    let made = change(auth.clone(), |s| s.with_role("app", None, &[])).await;
    assert_eq!(answer(made).await.0, StatusCode::OK);
    let before = auth.state();
    auth.heard_clock("n2", Some(TWO_HOURS_MS));
    auth.heard_clock("n3", Some(TWO_HOURS_MS));
    let revoke = change(auth.clone(), |s| {
        s.with_revoke("app", "default", Perm::Read)
    });
    let (status, text) = answer(revoke.await).await;
    assert_eq!(status, StatusCode::CONFLICT, "{text}");
    assert!(text.starts_with("clock_skew: "), "{text}");
    assert!(text.contains("n2 +7200.000 s (this node behind)"), "{text}");
    assert_eq!(auth.state(), before, "nothing stamped or swapped in");
    assert_eq!(store::load(&*engine).unwrap(), *before, "nothing saved");
}

#[tokio::test]
async fn an_older_build_without_a_clock_refuses_nothing() {
    let (auth, _engine) = node();
    auth.heard_clock("n2", None);
    auth.heard_clock("", Some(-TWO_HOURS_MS));
    let made = change(auth.clone(), |s| s.with_role("app", None, &[])).await;
    assert_eq!(answer(made).await.0, StatusCode::OK);
}

/// review-clock35 M1: a node whose members are known changes nothing
/// until a quorum of them (itself counted) was heard since it started:
/// 503 `clock not yet measured`, nothing stamped or saved; once heard
/// (an older build, without a clock, counts), the change is made.
#[tokio::test]
async fn a_change_waits_until_a_quorum_of_members_is_heard() {
    let (auth, engine) = node();
    let members = ["n2", "n3", "n4", "n5"].map(String::from).to_vec();
    auth.set_members(Arc::new(move || members.clone()));
    auth.heard_clock("n2", Some(0));
    let before = auth.state();
    let made = change(auth.clone(), |s| s.with_role("app", None, &[])).await;
    let (status, text) = answer(made).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{text}");
    assert!(
        text.starts_with("clock not yet measured: 2 of 5 members"),
        "{text}"
    );
    assert_eq!(auth.state(), before, "nothing stamped or swapped in");
    assert_eq!(store::load(&*engine).unwrap(), *before, "nothing saved");
    auth.heard_clock("n3", None);
    let made = change(auth.clone(), |s| s.with_role("app", None, &[])).await;
    assert_eq!(answer(made).await.0, StatusCode::OK);
}

/// review-clock35 L4: every peer holds the change, but this node has
/// installed a later change undoing it meanwhile (another node's push, its
/// maker silent): 409 `superseded`, not 200. Fails before, by reading:
/// self always counted as holding it.
#[tokio::test]
async fn a_change_this_node_holds_a_later_change_of_is_superseded() {
    let wall = crate::security::auth::now_ms();
    let (n1, _engine) = node();
    n1.change(|s| s.with_role("app", None, &[])).unwrap();
    let later = Arc::new(Auth::new(true, n1.state().as_ref().clone(), None));
    let me = Arc::downgrade(&n1);
    n1.set_push(Arc::new(move |_change: Arc<AuthState>| {
        // n2 drops the role, stamped 30 s ahead; its push reaches n1 only.
        let n1 = me.upgrade().expect("the node");
        let stamp = Stamp {
            ms: wall + 30_000,
            n: 0,
            node: 9,
        };
        let dropped = later.state().drop_role(stamp, "app").unwrap();
        n1.install(dropped).expect("installed");
        let acks = vec![Ack {
            peer: "n2".into(),
            verdict: Verdict::Holds,
        }];
        let spread = Spread::decide(&["n2".to_string()], acks, 4_000);
        let spreading: Spreading = Box::pin(async move { spread });
        spreading
    }));
    let grant = change(n1.clone(), |s| s.with_grant("app", "default", Perm::Read));
    let (status, text) = answer(grant.await).await;
    assert_eq!(status, StatusCode::CONFLICT, "{text}");
    assert!(text.contains("held by this node, undoes"), "{text}");
}

/// A push hook of `on` that offers its state to each of `peers`
/// in-process (as `SyncAuth` does), judges each answer against the change
/// pushed, and installs the answer on `on`, as `node::auth_sync` does.
fn push_to(on: &Arc<Auth>, peers: Vec<(&'static str, Arc<Auth>)>) -> PushHook {
    let me = Arc::downgrade(on);
    Arc::new(move |change: Arc<AuthState>| {
        let me = me.upgrade().expect("the node");
        let mut acks = Vec::new();
        for (id, peer) in &peers {
            let answer = sync::serve(peer, &sync::to_message(&me.state())).expect("served");
            let theirs = sync::from_message(&answer).unwrap().expect("a state");
            let verdict = Verdict::of_answer(&change, &theirs);
            acks.push(Ack {
                peer: id.to_string(),
                verdict,
            });
            me.install(theirs).expect("installed");
        }
        let ids: Vec<String> = peers.iter().map(|(id, _)| id.to_string()).collect();
        let spread = Spread::decide(&ids, acks, 4_000);
        let spreading: Spreading = Box::pin(async move { spread });
        spreading
    })
}

/// review-clock34b M2: n3's clock is 50 s behind (within the bound, so it
/// is not refused) and the push of a grant made on n1 missed it. The grant,
/// stamped t0, is held by n1 and n2. The operator revokes on n3 at t0 + 10
/// s, stamped t0 - 40 s: n1 and n2 keep the grant. The answer is 409
/// `superseded` naming the grant, not 200, and the grant stays in force
/// everywhere, n3 too once it installs their answers. Fails before, by
/// reading: `of_answer` saw their merge unchanged (Holds) and it was 200,
/// 3 of 3.
#[tokio::test]
async fn a_change_a_later_one_undoes_is_answered_superseded() {
    let wall = crate::security::auth::now_ms();
    let stamp = |ms: u64| Stamp { ms, n: 0, node: 1 };
    let base = AuthState::default()
        .create_role(stamp(wall - 600_000), "app", None, &[])
        .unwrap();
    let grant =
        (base.set_grant(stamp(wall + 50_000), "app", "default", Perm::Write, true)).unwrap();
    let (n1, n2) = (
        Auth::new(true, grant.clone(), None),
        Auth::new(true, grant, None),
    );
    let (n1, n2) = (Arc::new(n1), Arc::new(n2));
    let (n3, _engine) = node();
    n3.install(base).unwrap();
    n3.set_push(push_to(&n3, vec![("n1", n1.clone()), ("n2", n2.clone())]));

    let revoke = change(n3.clone(), |s| s.with_revoke("app", "default", Perm::Write));
    let (status, text) = answer(revoke.await).await;
    assert_eq!(status, StatusCode::CONFLICT, "{text}");
    assert!(text.starts_with("superseded: "), "{text}");
    let later = format!(
        "a later change, stamped {} ms since the epoch",
        wall + 50_000
    );
    assert!(text.contains(&later), "{text}");
    // n3 installed their answers: it holds the grant too (review-clock35 L4).
    assert!(text.contains("held by n1, n2, this node, undoes"), "{text}");
    assert!(
        text.contains("in force on the 0 of 3 members that held it when they answered"),
        "{text}"
    );
    for node in [&n1, &n2, &n3] {
        let can_write = node.state().decide("app", "default", Perm::Write);
        assert_eq!(can_write, Decision::Allow, "the grant stays in force");
    }
}

/// Every answer to a change made here is counted by outcome, a 409
/// `superseded` too (the one 409 that was applied). Fails before, by
/// reading: no counter.
#[test]
fn each_answer_to_a_change_is_counted_by_outcome() {
    let stamp = |ms: u64, node: u64| Stamp { ms, n: 0, node };
    let state = (AuthState::default().create_role(stamp(2_000, 1), "app", None, &[])).unwrap();
    let peers = vec!["n2".to_string(), "n3".to_string()];
    let ack = |verdict: Verdict| Ack {
        peer: "n2".into(),
        verdict,
    };
    let later = Verdict::Superseded {
        stamp: stamp(3_000, 9),
        writer: 9,
    };
    let superseded = Spread::decide(&peers, vec![ack(later)], 4_000);
    let held = Spread::decide(&peers, vec![ack(Verdict::Holds)], 4_000);
    let short = Spread::decide(&peers, vec![], 4_000);
    let rec = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let statuses = metrics::with_local_recorder(&rec, || {
        [&superseded, &superseded, &held, &short].map(|s| spread_answer(&state, s).status())
    });
    assert_eq!(
        statuses,
        [
            StatusCode::CONFLICT,
            StatusCode::CONFLICT,
            StatusCode::OK,
            StatusCode::SERVICE_UNAVAILABLE
        ]
    );
    let text = rec.handle().render();
    for (outcome, n) in [
        ("superseded", 2),
        ("acknowledged", 1),
        ("short_of_quorum", 1),
    ] {
        let line = format!("geokv_auth_changes_total{{outcome=\"{outcome}\"}} {n}\n");
        assert!(text.contains(&line), "{line:?} not in {text}");
    }
}

/// Both 500 "may have been made" answers are counted `failed`: a failed
/// save (nothing known of the engine's write) and a lost task
/// (review-clock36 L2). Fails before, by reading: neither was counted.
#[test]
fn a_change_that_may_have_been_made_is_counted_failed() {
    let decode = serde_json::from_str::<u8>("x").unwrap_err();
    let rec = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let statuses = metrics::with_local_recorder(&rec, || {
        let save = refused(AuthStateError::Store(store::StoreError::Decode(decode)));
        [save.status(), lost("task cancelled").status()]
    });
    assert_eq!(statuses, [StatusCode::INTERNAL_SERVER_ERROR; 2]);
    let line = "geokv_auth_changes_total{outcome=\"failed\"} 2\n";
    let text = rec.handle().render();
    assert!(text.contains(line), "{line:?} not in {text}");
}
