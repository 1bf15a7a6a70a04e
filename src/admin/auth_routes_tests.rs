//! The answer to a change on a node whose clock is ahead of or behind most
//! of its peers' (review-authq33 H1, review-clock34 H1): 409 `clock_skew`
//! naming the offsets, with nothing stamped or saved, on every change
//! route's path.

use std::sync::Arc;

use http_body_util::BodyExt;

use super::*;
use crate::engine::{Engine, Limits, MemoryEngine};
use crate::security::auth::store;

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
