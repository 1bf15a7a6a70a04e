//! Decommission end to end over in-memory nodes: the leaver hands every
//! range it loses to its gainers and ends Left, every remaining node then
//! holds exactly what it replicates; a leave is refused while another
//! movement is in progress in its datacenter (naming it); a hand-over
//! interrupted mid-range resumes after the last page the gainer took.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::leave::{begin, finish, hand_over, Began, LeaveError};
use super::ops::LayoutHandle;
use super::push::{RangeSink, Synced};
use super::stream::{Progress, SourceError};
use super::tests_ops::{request, small_pages, world, World};
use crate::engine::{Engine, WriteBatch};
use crate::layout::{LayoutError, Movement, NodeState};
use crate::ring::Ring;
use crate::version::SiblingSet;

/// Merges pushed rows into the gainers' engines; fails every push after
/// `fail_after` pages (the leaver or the gainer "crashes"). Logs each
/// push and sync (`push g`, `sync g`); a sync takes the last of `syncs`'
/// answers (`Durable` in incarnation 1 once none is left).
pub(super) struct Sink {
    engines: BTreeMap<String, Arc<dyn Engine>>,
    fail_after: Option<usize>,
    pages: AtomicUsize,
    pub(super) rows: AtomicUsize,
    pub(super) log: Arc<Mutex<Vec<String>>>,
    pub(super) syncs: Mutex<Vec<Result<Synced, String>>>,
}

impl Sink {
    pub(super) fn new(w: &World, fail_after: Option<usize>) -> Sink {
        Sink {
            engines: w.engines.clone(),
            fail_after,
            pages: AtomicUsize::new(0),
            rows: AtomicUsize::new(0),
            log: Arc::default(),
            syncs: Mutex::default(),
        }
    }
}

impl RangeSink for Sink {
    fn is_up(&self, _: &str) -> bool {
        true
    }

    async fn push(
        &self,
        node: &str,
        keyspace: &str,
        rows: Vec<(Vec<u8>, SiblingSet)>,
    ) -> Result<(), SourceError> {
        if self
            .fail_after
            .is_some_and(|n| self.pages.load(Ordering::SeqCst) >= n)
        {
            return Err(SourceError {
                node: node.into(),
                detail: "connection refused".into(),
            });
        }
        let mut b = WriteBatch::new();
        for (k, s) in &rows {
            b.merge_versions(keyspace, k, s);
        }
        self.engines[node].write(b).unwrap();
        self.pages.fetch_add(1, Ordering::SeqCst);
        self.rows.fetch_add(rows.len(), Ordering::SeqCst);
        self.log.lock().push(format!("push {node}"));
        Ok(())
    }

    async fn sync(&self, node: &str) -> Result<Synced, SourceError> {
        let answer = (self.syncs.lock().pop()).unwrap_or(Ok(Synced::Durable { incarnation: 1 }));
        self.log.lock().push(format!("sync {node}"));
        answer.map_err(|detail| SourceError {
            node: node.into(),
            detail,
        })
    }
}

/// After `leaver` left: every member holds exactly the keys it replicates,
/// each equal to the original.
pub(super) fn check_every_member_holds_its_replicas(w: &World, leaver: &str) {
    let l = w.layout.current();
    assert_eq!(l.node(leaver).unwrap().2.state, NodeState::Left);
    assert!(l.movements.is_empty());
    let ring = Ring::from_layout(&l);
    assert!(ring.node_by_id(leaver).is_none());
    for n in ring.nodes() {
        let engine = &w.engines[&n.id];
        for (k, set) in &w.data {
            let mine = ring.replicas("ks", k).unwrap().contains(n.idx);
            let got = engine.get_versions("ks", k).unwrap();
            if mine {
                assert_eq!(got.as_ref(), Some(set), "{} lacks a key", n.id);
            }
        }
    }
}

#[tokio::test]
async fn a_leaver_hands_every_range_over_and_ends_left() {
    let w = world();
    let before = w.layout.current();
    let a_ring = Ring::from_layout(&before);
    let a = a_ring.node_by_id("a").unwrap().idx;
    let held = (w.data.keys())
        .filter(|k| a_ring.replicas("ks", k).unwrap().contains(a))
        .count();
    assert_eq!(
        begin(&w.layout, &w.engines["a"], "a").await.unwrap(),
        Began::Began
    );
    let leaving = w.layout.current();
    assert_eq!(leaving.node("a").unwrap().2.state, NodeState::Leaving);
    // Run again: the leave is found in progress, not begun twice.
    assert_eq!(
        begin(&w.layout, &w.engines["a"], "a").await.unwrap(),
        Began::Resumed
    );
    let losses = super::plan::losses(&w.layout.current(), "a").unwrap();
    let sink = Sink::new(&w, None);
    let progress = Progress::default();
    let engine = w.engines["a"].clone();
    hand_over(
        &w.layout,
        engine.clone(),
        &sink,
        "a",
        &small_pages(),
        &progress,
    )
    .await
    .unwrap();
    // rf 2 in dc1 of 3 nodes: each of a's keys goes to the one node gaining it.
    assert_eq!(sink.rows.load(Ordering::SeqCst), held);
    let p = progress.snapshot();
    assert_eq!(p.ranges_done, p.ranges_total);
    assert_eq!(p.keys as usize, held);
    finish(&w.layout, &engine, "a").await.unwrap();
    check_every_member_holds_its_replicas(&w, "a");
    assert_eq!(
        begin(&w.layout, &w.engines["a"], "a").await.unwrap(),
        Began::AlreadyLeft
    );
    // The cursors are forgotten.
    for l in &losses {
        for g in &l.new_owners {
            let id = super::push::stream_id("a", g);
            let c = super::cursor::load(&*engine, &id, &l.keyspace, l.range).unwrap();
            assert_eq!(c, super::cursor::Cursor::Start);
        }
    }
}

#[tokio::test]
async fn a_leave_is_refused_while_a_join_is_in_progress_in_its_datacenter() {
    let w = world();
    let now = w.layout.current();
    let req = request("d", 20);
    let tokens = crate::ring::allocate_tokens(&now, "dc1", "r1", 16, 2).unwrap();
    let joining = now.begin_join(req.node, "dc1", "r1", &tokens).unwrap();
    w.layout.propose(joining).await.unwrap();
    let err = begin(&w.layout, &w.engines["b"], "b").await.unwrap_err();
    match &err {
        LeaveError::Layout(LayoutError::MovementInProgress { in_progress, .. }) => {
            assert_eq!(in_progress, &Movement::Join { node: "d".into() })
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("join of d"), "{err}");
    // Another datacenter may move meanwhile.
    assert_eq!(
        begin(&w.layout, &w.engines["x"], "x").await.unwrap(),
        Began::Began
    );
}

#[tokio::test]
async fn an_interrupted_hand_over_resumes_after_the_last_page_taken() {
    let w = world();
    begin(&w.layout, &w.engines["a"], "a").await.unwrap();
    let engine = w.engines["a"].clone();
    let first = Sink::new(&w, Some(5));
    let cfg = small_pages();
    let err = hand_over(
        &w.layout,
        engine.clone(),
        &first,
        "a",
        &cfg,
        &Progress::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, LeaveError::Stream(_)), "{err}");
    let taken = first.rows.load(Ordering::SeqCst);
    assert!(taken > 0, "some pages went through");
    let second = Sink::new(&w, None);
    hand_over(
        &w.layout,
        engine.clone(),
        &second,
        "a",
        &cfg,
        &Progress::default(),
    )
    .await
    .unwrap();
    let ring = Ring::from_layout(&w.layout.current());
    let a = ring.node_by_id("a").unwrap().idx;
    let held = (w.data.keys())
        .filter(|k| ring.replicas("ks", k).unwrap().contains(a))
        .count();
    // Nothing pushed twice: the second run started after the cursors.
    assert_eq!(taken + second.rows.load(Ordering::SeqCst), held);
    finish(&w.layout, &engine, "a").await.unwrap();
    check_every_member_holds_its_replicas(&w, "a");
}

#[test]
fn a_node_that_has_left_takes_no_client_requests() {
    use crate::layout::Layout;
    use crate::topology::Topology;
    let seed = Layout::seed(&Topology::parse("t.yaml", &super::tests_replace::topo()).unwrap());
    let cluster = crate::view::Cluster::new(seed.clone(), "d", None).unwrap();
    let leaving = seed.begin_leave("d").unwrap();
    cluster.install(leaving.clone()).unwrap();
    assert_eq!(cluster.serving(), Ok(()), "a leaver still serves");
    cluster.install(leaving.finish_leave("d").unwrap()).unwrap();
    let why = cluster.serving().unwrap_err().to_string();
    assert!(
        why.contains("has left") && why.contains("another node"),
        "{why}"
    );
}

/// review-elastic28 L3: a leaver declared dead and removed (`removenode`
/// turns its leave into a removal) that comes back learns it and stops for
/// good, naming the removal: it retried every 2 s for ever.
#[tokio::test]
async fn a_leaver_turned_into_a_removal_learns_it_and_stops() {
    let w = world();
    begin(&w.layout, &w.engines["a"], "a").await.unwrap();
    assert!(super::leave::still_leaving(&w.layout.current(), "a").is_ok());
    let removing = super::remove::begin(&w.layout.current(), "a", &|_| false).unwrap();
    let removed = removing.finish_remove("a").unwrap();
    for layout in [&removing, &removed] {
        let err = super::leave::still_leaving(layout, "a").unwrap_err();
        assert!(err.is_final(), "{err}");
        assert!(err.to_string().contains("removenode a"), "{err}");
    }
    w.layout.propose(removing.clone()).await.unwrap();
    let err = begin(&w.layout, &w.engines["a"], "a").await.unwrap_err();
    assert!(
        err.is_final() && matches!(err, LeaveError::Removed(_)),
        "{err}"
    );
    // Its leave's steps do not run the removal's: the switch and finish
    // wait for the removal's gainers (its finisher proposes them).
    let engine = w.engines["a"].clone();
    let sink = Sink::new(&w, None);
    let (cfg, progress) = (small_pages(), Progress::default());
    let pushed = hand_over(&w.layout, engine.clone(), &sink, "a", &cfg, &progress);
    assert!(matches!(pushed.await, Err(LeaveError::Removed(_))));
    let err = finish(&w.layout, &engine, "a").await.unwrap_err();
    assert!(matches!(err, LeaveError::Removed(_)), "{err}");
    assert_eq!(*w.layout.current(), removing, "nothing proposed");
    w.layout.propose(removed).await.unwrap();
    let err = begin(&w.layout, &w.engines["a"], "a").await.unwrap_err();
    assert!(
        err.is_final() && matches!(err, LeaveError::Removed(_)),
        "{err}"
    );
}
