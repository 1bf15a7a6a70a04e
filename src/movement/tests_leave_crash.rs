//! A decommission's gainer that loses its unsynced WAL tail mid-push
//! (review-elastic29 H1): the leaver's cursors are past pages the gainer
//! no longer holds, and the gainer's sync after its restart only makes
//! durable what it still has. The leaver notices the gainer's new
//! incarnation and pushes to it again, so every row of the leaver is on
//! its gainers after the switch; a gainer restarting in every round holds
//! the switch; cursors without a recorded incarnation (a leave begun on an
//! older build) are started over; a gainer that cannot tell its
//! incarnation holds the switch, or, passed by the operator, is resumed,
//! not started over.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::cursor::{self, Incarnation};
use super::leave::{begin, finish, hand_over, LeaveError};
use super::ops::LayoutHandle;
use super::push::{stream_id, RangeSink, Synced};
use super::stream::{Progress, SourceError, StreamError};
use super::tests_leave::{check_every_member_holds_its_replicas, Sink};
use super::tests_leave_sync::gainers;
use super::tests_ops::{small_pages, world, World};
use crate::engine::{Cf, Engine, WriteBatch};
use crate::ring::Ring;
use crate::version::SiblingSet;

/// A gainer's pages stay in its "unsynced tail" until a sync writes them to
/// its engine; [`Crashy::crash`] drops every tail and starts each gainer
/// under a new incarnation. Pushes fail once `fail_after` pages went.
struct Crashy {
    engines: BTreeMap<String, Arc<dyn Engine>>,
    tails: Mutex<BTreeMap<String, Vec<WriteBatch>>>,
    incarnations: Mutex<BTreeMap<String, u64>>,
    fail_after: Mutex<Option<usize>>,
    pages: AtomicUsize,
}

impl Crashy {
    fn crash(&self) {
        self.tails.lock().clear();
        for inc in self.incarnations.lock().values_mut() {
            *inc += 1;
        }
        *self.fail_after.lock() = None;
    }

    fn incarnation(&self, node: &str) -> u64 {
        *self.incarnations.lock().entry(node.into()).or_insert(1)
    }
}

impl RangeSink for Crashy {
    fn is_up(&self, _: &str) -> bool {
        true
    }

    async fn push(
        &self,
        node: &str,
        keyspace: &str,
        rows: Vec<(Vec<u8>, SiblingSet)>,
    ) -> Result<(), SourceError> {
        let limit = *self.fail_after.lock();
        if limit.is_some_and(|n| self.pages.load(Ordering::SeqCst) >= n) {
            return Err(SourceError {
                node: node.into(),
                detail: "connection refused".into(),
            });
        }
        let mut b = WriteBatch::new();
        for (k, s) in &rows {
            b.merge_versions(keyspace, k, s);
        }
        self.tails.lock().entry(node.into()).or_default().push(b);
        self.pages.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn sync(&self, node: &str) -> Result<Synced, SourceError> {
        let tail = self.tails.lock().remove(node).unwrap_or_default();
        for b in tail {
            self.engines[node].write(b).unwrap();
        }
        Ok(Synced::Durable {
            incarnation: self.incarnation(node),
        })
    }
}

#[tokio::test(start_paused = true)]
async fn a_gainer_that_lost_its_unsynced_tail_mid_push_is_pushed_to_again() {
    let w = world();
    begin(&w.layout, &w.engines["a"], "a").await.unwrap();
    let sink = Crashy {
        engines: w.engines.clone(),
        tails: Mutex::default(),
        incarnations: Mutex::default(),
        fail_after: Mutex::new(Some(3)),
        pages: AtomicUsize::new(0),
    };
    let engine = w.engines["a"].clone();
    let (cfg, progress) = (small_pages(), Progress::default());
    let run = || hand_over(&w.layout, engine.clone(), &sink, "a", &cfg, &progress);
    // Three pages acknowledged, then the gainer goes down mid-push...
    run().await.unwrap_err();
    assert_eq!(sink.pages.load(Ordering::SeqCst), 3);
    // ...and comes back without its unsynced tail, as a new incarnation.
    sink.crash();
    run().await.unwrap();
    finish(&w.layout, &engine, "a").await.unwrap();
    check_every_member_holds_its_replicas(&w, "a");
}

/// The number of keys `node` replicates now.
fn held(w: &World, node: &str) -> usize {
    let ring = Ring::from_layout(&w.layout.current());
    let idx = ring.node_by_id(node).unwrap().idx;
    let of = |k: &Vec<u8>| ring.replicas("ks", k).unwrap().contains(idx);
    w.data.keys().filter(|k| of(k)).count()
}

/// Runs `a`'s hand-over through `sink`.
async fn hand_over_a(w: &World, sink: &Sink) -> Result<(), LeaveError> {
    hand_over_as(w, sink, false).await
}

/// [`hand_over_a`], passing gainers of an older build or not.
async fn hand_over_as(w: &World, sink: &Sink, allow_old_gainers: bool) -> Result<(), LeaveError> {
    let cfg = super::stream::StreamConfig {
        allow_old_gainers,
        ..small_pages()
    };
    let progress = Progress::default();
    let engine = w.engines["a"].clone();
    hand_over(&w.layout, engine, sink, "a", &cfg, &progress).await
}

#[tokio::test(start_paused = true)]
async fn a_gainer_restarting_in_every_round_holds_the_switch() {
    let w = world();
    begin(&w.layout, &w.engines["a"], "a").await.unwrap();
    let (leaving, gainers) = (w.layout.current().version, gainers(&w.layout, "a"));
    let sink = Sink::new(&w, None);
    // A new incarnation at every sync.
    let every = (1..=100).map(|incarnation| Ok(Synced::Durable { incarnation }));
    *sink.syncs.lock() = every.collect();
    let err = hand_over_a(&w, &sink).await.unwrap_err();
    match &err {
        LeaveError::Stream(StreamError::GainerRestarted { node, rounds }) => {
            assert_eq!((node, *rounds), (&gainers[0], 2), "small_pages: 2 rounds");
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("restarted"), "{err}");
    // Its ranges were pushed to it again after the sync that told a new one.
    let log = sink.log.lock().clone();
    let synced = format!("sync {}", gainers[0]);
    let first_confirm = (log.iter().enumerate())
        .filter(|(_, e)| **e == synced)
        .nth(1)
        .map(|(i, _)| i)
        .expect("a sync after the pages");
    let again = format!("push {}", gainers[0]);
    assert!(log[first_confirm..].contains(&again), "{log:?}");
    assert_eq!(w.layout.current().version, leaving, "nothing proposed");
    // Once it stays up, the leave completes with every row on its gainers.
    hand_over_a(&w, &Sink::new(&w, None)).await.unwrap();
    finish(&w.layout, &w.engines["a"], "a").await.unwrap();
    check_every_member_holds_its_replicas(&w, "a");
}

/// review-elastic29 M1.
#[tokio::test]
async fn cursors_with_no_recorded_incarnation_are_started_over() {
    let w = world();
    begin(&w.layout, &w.engines["a"], "a").await.unwrap();
    let engine = w.engines["a"].clone();
    let first = Sink::new(&w, Some(5));
    hand_over_a(&w, &first).await.unwrap_err();
    assert!(
        first.rows.load(Ordering::SeqCst) > 0,
        "some pages went through"
    );
    // As a leave begun on an older build left them: cursors, no incarnation.
    let gainers = gainers(&w.layout, "a");
    for g in &gainers {
        let id = stream_id("a", g);
        let recorded = cursor::load_incarnation(&*engine, &id).unwrap();
        assert_eq!(recorded, Some(Incarnation::Known(1)));
        let mut b = WriteBatch::new();
        b.delete_raw(Cf::Meta, &cursor::incarnation_key(&id));
        engine.write(b).unwrap();
    }
    let second = Sink::new(&w, None);
    hand_over_a(&w, &second).await.unwrap();
    let pushed = second.rows.load(Ordering::SeqCst);
    assert_eq!(
        pushed,
        held(&w, "a"),
        "every range pushed again from the start"
    );
    for g in &gainers {
        let recorded = cursor::load_incarnation(&*engine, &stream_id("a", g)).unwrap();
        assert_eq!(recorded, Some(Incarnation::Known(1)));
    }
    finish(&w.layout, &engine, "a").await.unwrap();
    check_every_member_holds_its_replicas(&w, "a");
}

/// A build that answers `SyncWal` without its incarnation holds the
/// switch like one without `SyncWal` (review-final30 M1): a crash of it
/// between its pages and its sync would go unseen.
#[tokio::test]
async fn a_gainer_that_cannot_tell_its_incarnation_holds_the_switch() {
    let w = world();
    begin(&w.layout, &w.engines["a"], "a").await.unwrap();
    let gainers = gainers(&w.layout, "a");
    let sink = Sink::new(&w, None);
    *sink.syncs.lock() = vec![Ok(Synced::Durable { incarnation: 0 }); 64];
    match hand_over_a(&w, &sink).await {
        Err(LeaveError::Stream(StreamError::GainerTooOld { node })) => {
            assert_eq!(node, gainers[0])
        }
        other => panic!("want GainerTooOld, got {other:?}"),
    }
    assert_eq!(sink.rows.load(Ordering::SeqCst), 0, "nothing pushed");
}

#[tokio::test]
async fn a_gainer_that_cannot_tell_its_incarnation_is_passed_by_the_operator_and_resumed() {
    let w = world();
    begin(&w.layout, &w.engines["a"], "a").await.unwrap();
    let gainers = gainers(&w.layout, "a");
    // An older build: no SyncWal at all, then one without the field.
    let first = Sink::new(&w, Some(5));
    *first.syncs.lock() = vec![Ok(Synced::Unsupported); 64];
    hand_over_as(&w, &first, true).await.unwrap_err();
    let taken = first.rows.load(Ordering::SeqCst);
    assert!(taken > 0, "some pages went through");
    let second = Sink::new(&w, None);
    *second.syncs.lock() = vec![Ok(Synced::Durable { incarnation: 0 }); 64];
    hand_over_as(&w, &second, true).await.unwrap();
    let pushed = second.rows.load(Ordering::SeqCst);
    assert!(
        pushed > 0,
        "the second run pushed the rest (review-final30 L2)"
    );
    assert_eq!(
        taken + pushed,
        held(&w, "a"),
        "resumed: nothing pushed twice"
    );
    let log = second.log.lock().clone();
    // Each is synced at its check-in and, when pages went to it in this
    // run, once more after its last page (review-elastic30 M1: a gainer
    // that cannot tell its incarnation still makes its pages durable
    // before the switch).
    for g in &gainers {
        let (sync, push) = (format!("sync {g}"), format!("push {g}"));
        let asked = log.iter().filter(|e| **e == sync).count();
        let last_push = log.iter().rposition(|e| *e == push);
        assert_eq!(asked, 1 + usize::from(last_push.is_some()), "{g}: {log:?}");
        if let Some(p) = last_push {
            assert!(
                log[p..].contains(&sync),
                "{g} synced after its last page: {log:?}"
            );
        }
    }
    let engine = w.engines["a"].clone();
    let recorded = cursor::load_incarnation(&*engine, &stream_id("a", &gainers[0]));
    assert_eq!(recorded.unwrap(), Some(Incarnation::Unknown));
    finish(&w.layout, &engine, "a").await.unwrap();
    check_every_member_holds_its_replicas(&w, "a");
}
