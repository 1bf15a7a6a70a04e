//! A decommission's gainers sync what they took before its switch
//! (review-elastic28 M1): the leaver, the strict source of the ranges it
//! loses, is gone after the switch, so a gainer's unsynced WAL tail must
//! not be all that holds them. A gainer that cannot sync holds the switch
//! (the leave is run again); so does one of an older build, unless the
//! operator passes it (`--allow-old-gainers`, review-final30 M1).

use std::sync::Arc;

use parking_lot::Mutex;

use super::leave::{begin, finish, hand_over, LeaveError};
use super::ops::{LayoutHandle, ProposeError};
use super::push::Synced;
use super::stream::{Progress, StreamError};
use super::tests_leave::Sink;
use super::tests_ops::{small_pages, world, Fake};
use crate::layout::{Layout, NodeState};

/// The test layout, logging each proposal in the sink's log.
struct Logged<'a> {
    inner: &'a Fake,
    log: Arc<Mutex<Vec<String>>>,
}

impl LayoutHandle for Logged<'_> {
    fn current(&self) -> Arc<Layout> {
        self.inner.current()
    }
    async fn propose(&self, next: Layout) -> Result<(), ProposeError> {
        self.log.lock().push(format!("propose v{}", next.version));
        self.inner.propose(next).await
    }
    fn upgraded(&self, except: &str) -> Result<(), super::upgrade::NotUpgraded> {
        self.inner.upgraded(except)
    }
    async fn announced(&self, version: u64) -> Result<(), ProposeError> {
        self.inner.announced(version).await
    }
}

/// The gainers of `leaver`'s ranges in the current layout.
pub(super) fn gainers(layout: &Fake, leaver: &str) -> Vec<String> {
    let losses = super::plan::losses(&layout.current(), leaver).unwrap();
    let set: std::collections::BTreeSet<String> =
        losses.into_iter().flat_map(|l| l.new_owners).collect();
    set.into_iter().collect()
}

/// As the node's decommission runs it: hand over, then (only once that
/// succeeded) finish.
async fn leave(w: &super::tests_ops::World, sink: &Sink) -> Result<(), LeaveError> {
    leave_as(w, sink, false).await
}

/// [`leave`], passing gainers of an older build or not.
async fn leave_as(
    w: &super::tests_ops::World,
    sink: &Sink,
    allow_old_gainers: bool,
) -> Result<(), LeaveError> {
    let engine = w.engines["a"].clone();
    let cfg = super::stream::StreamConfig {
        allow_old_gainers,
        ..small_pages()
    };
    hand_over(
        &w.layout,
        engine.clone(),
        sink,
        "a",
        &cfg,
        &Progress::default(),
    )
    .await?;
    let logged = Logged {
        inner: &w.layout,
        log: sink.log.clone(),
    };
    finish(&logged, &engine, "a").await
}

#[tokio::test]
async fn every_gainer_syncs_after_its_last_page_before_the_switch_is_proposed() {
    let w = world();
    begin(&w.layout, &w.engines["a"], "a").await.unwrap();
    let gainers = gainers(&w.layout, "a");
    assert!(!gainers.is_empty());
    let sink = Sink::new(&w, None);
    leave(&w, &sink).await.unwrap();
    assert_eq!(
        w.layout.current().node("a").unwrap().2.state,
        NodeState::Left
    );
    let log = sink.log.lock().clone();
    let first_proposal =
        (log.iter().position(|e| e.starts_with("propose"))).expect("the switch was proposed");
    for g in &gainers {
        let last_push = log.iter().rposition(|e| *e == format!("push {g}"));
        let synced = (log.iter().enumerate())
            .filter(|(i, e)| Some(*i) > last_push && **e == format!("sync {g}"))
            .map(|(i, _)| i)
            .next();
        let synced =
            synced.unwrap_or_else(|| panic!("{g} never synced after its last page: {log:?}"));
        assert!(
            synced < first_proposal,
            "{g} synced after the switch: {log:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_gainer_that_cannot_sync_holds_the_switch_until_it_does() {
    let w = world();
    begin(&w.layout, &w.engines["a"], "a").await.unwrap();
    let leaving = w.layout.current().version;
    let gainers = gainers(&w.layout, "a");
    let sink = Sink::new(&w, None);
    // Every gainer checks in (its incarnation before its pages); then, in
    // small_pages' 2 rounds, the first gainer fails both syncs after them.
    let mut syncs = vec![Err("disk full".into()), Err("disk full".into())];
    syncs.extend(vec![Ok(Synced::Durable { incarnation: 1 }); gainers.len()]);
    *sink.syncs.lock() = syncs;
    let err = leave(&w, &sink).await.unwrap_err();
    match &err {
        LeaveError::Stream(StreamError::NotSynced { node, rounds, last }) => {
            assert_eq!(node, &gainers[0]);
            assert_eq!(*rounds, 2);
            assert!(last.contains("disk full"), "{last}");
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("did not sync"), "{err}");
    assert_eq!(w.layout.current().version, leaving, "nothing proposed");
    assert!(!sink.log.lock().iter().any(|e| e.starts_with("propose")));
    // Run again: nothing pushed twice, every gainer synced once (its
    // check-in, after every page, in the same incarnation), then the switch.
    let again = Sink::new(&w, None);
    leave(&w, &again).await.unwrap();
    let log = again.log.lock().clone();
    assert!(!log.iter().any(|e| e.starts_with("push")), "{log:?}");
    let syncs = log.iter().filter(|e| e.starts_with("sync")).count();
    assert_eq!(syncs, gainers.len(), "{log:?}");
}

/// A gainer of an older build (no `SyncWal`) holds the switch with
/// [`StreamError::GainerTooOld`] naming it, pushed nothing; passed by the
/// operator's override, it is asked at its check-in and, when pages went
/// to it, once more after them (review-elastic30 M1).
#[tokio::test]
async fn a_gainer_of_an_older_build_holds_the_switch_unless_the_operator_passes_it() {
    let w = world();
    begin(&w.layout, &w.engines["a"], "a").await.unwrap();
    let (leaving, gainers) = (w.layout.current().version, gainers(&w.layout, "a"));
    let held = Sink::new(&w, None);
    *held.syncs.lock() = vec![Ok(Synced::Unsupported); 2 * gainers.len()];
    let err = leave(&w, &held).await.unwrap_err();
    match &err {
        LeaveError::Stream(StreamError::GainerTooOld { node }) => assert_eq!(node, &gainers[0]),
        other => panic!("{other}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("--allow-old-gainers") && text.contains("upgrade"),
        "{text}"
    );
    assert_eq!(w.layout.current().version, leaving, "nothing proposed");
    let log = held.log.lock().clone();
    assert!(!log.iter().any(|e| e.starts_with("push")), "{log:?}");
    let sink = Sink::new(&w, None);
    *sink.syncs.lock() = vec![Ok(Synced::Unsupported); 2 * gainers.len()];
    leave_as(&w, &sink, true).await.unwrap();
    assert_eq!(
        w.layout.current().node("a").unwrap().2.state,
        NodeState::Left
    );
    let log = sink.log.lock().clone();
    let mut pushed = 0;
    for g in &gainers {
        let asked = log.iter().filter(|e| **e == format!("sync {g}")).count();
        let to_g = log.iter().any(|e| *e == format!("push {g}"));
        pushed += usize::from(to_g);
        assert_eq!(asked, 1 + usize::from(to_g), "{g}: {log:?}");
    }
    assert!(pushed > 0, "pages went to the gainers: {log:?}");
}
