//! A decommission's leave count (`push::LeaveEpoch`, review-final33 L5):
//! once a new leave of the node is accepted, a pass of an earlier one (its
//! cancel missed, or its cursor save still in flight) lands no cursor;
//! the count moves before the new leave's forget (review-elastic35 M3).

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::cursor::{self, Cursor};
use super::leave::{begin, begin_after, cancel, hand_over, LeaveError};
use super::ops::LayoutHandle;
use super::plan::{losses, Loss};
use super::push::{LeaveEpoch, RangeSink, Synced};
use super::stream::{Progress, SourceError, StreamConfig, StreamError};
use super::tests_leave::Sink;
use super::tests_ops::{small_pages, world, Fake};
use crate::engine::Engine;
use crate::layout::NodeState;
use crate::version::SiblingSet;

/// A sink that begins a new leave (bumps the node's leave count) while
/// its first page is in flight, as a decommission begun again whose
/// cancel the running loop missed (review-final33 L5).
struct BeginsAgain(Sink, tokio::sync::watch::Sender<u64>);

impl RangeSink for BeginsAgain {
    fn is_up(&self, node: &str) -> bool {
        self.0.is_up(node)
    }

    async fn push(
        &self,
        node: &str,
        keyspace: &str,
        rows: Vec<(Vec<u8>, SiblingSet)>,
    ) -> Result<(), SourceError> {
        self.0.push(node, keyspace, rows).await?;
        self.1.send_if_modified(|n| std::mem::replace(n, 1) == 0);
        Ok(())
    }

    async fn sync(&self, node: &str) -> Result<Synced, SourceError> {
        self.0.sync(node).await
    }
}

/// A sink whose first push returns only once `a` is leaving again in a
/// layout newer than `after` (its leave cancelled and begun again).
struct WaitsForTheNewLeave<'a>(Sink, &'a Fake, u64);

impl RangeSink for WaitsForTheNewLeave<'_> {
    fn is_up(&self, node: &str) -> bool {
        self.0.is_up(node)
    }

    async fn push(
        &self,
        node: &str,
        keyspace: &str,
        rows: Vec<(Vec<u8>, SiblingSet)>,
    ) -> Result<(), SourceError> {
        self.0.push(node, keyspace, rows).await?;
        loop {
            let now = self.1.current();
            if now.version > self.2 && now.node("a").unwrap().2.state == NodeState::Leaving {
                return Ok(());
            }
            // Below the bump's 5 ms, so a bump made after the proposal
            // would let the save in (review-elastic35b M-a).
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    async fn sync(&self, node: &str) -> Result<Synced, SourceError> {
        self.0.sync(node).await
    }
}

/// Every loss of `a`'s leave is at its start for each of its gainers.
fn no_cursor(engine: &dyn Engine, plan: &[Loss]) {
    for loss in plan {
        for gainer in &loss.new_owners {
            let id = super::push::stream_id("a", gainer);
            let at = cursor::load(engine, &id, &loss.keyspace, loss.range).unwrap();
            assert_eq!(at, Cursor::Start, "{id} {:?}", loss.range);
        }
    }
}

/// review-final33 L5, review-cancel33 L2: a page acknowledged after a new
/// leave began does not commit the old leave's cursor (it could land
/// after the new begin's forget, and the new leave would skip the range
/// on a gainer that dropped it); the pass ends `Superseded`. Fails
/// before, by reading: cursors were saved whatever leave was running.
/// Every loss is checked (review-elastic35 L5).
#[tokio::test]
async fn a_pass_whose_leave_began_again_commits_no_cursor() {
    let w = world();
    begin(&w.layout, &w.engines["a"], "a").await.unwrap();
    let plan = losses(&w.layout.current(), "a").unwrap();
    let (leaves, count) = tokio::sync::watch::channel(0);
    let sink = BeginsAgain(Sink::new(&w, None), leaves);
    let cfg = StreamConfig {
        epoch: Some(LeaveEpoch { count, mine: 0 }),
        ..small_pages()
    };
    let engine = w.engines["a"].clone();
    let r = hand_over(
        &w.layout,
        engine.clone(),
        &sink,
        "a",
        &cfg,
        &Progress::default(),
    )
    .await;
    assert!(
        matches!(r, Err(LeaveError::Stream(StreamError::Superseded))),
        "{r:?}"
    );
    no_cursor(&*engine, &plan);
    assert!(sink.0.rows.load(Ordering::SeqCst) > 0, "a page was pushed");
}

/// review-elastic35 M3: the leave count moves before the new leave's
/// forget. A pass of the cancelled leave has a page in flight, acknowledged
/// only once the new leave is in the layout (past its forget); its save
/// then finds the count moved and lands no cursor. The bump is slow (it
/// runs on the blocking pool, L2: here a paused-clock sleep), so a bump
/// made after the proposal (the old place, `Control::decommission` after
/// `begin`) lets the save land `Done` after the forget: the sink sees the
/// new leave within 1 ms, before such a bump at 5 ms, so the test fails
/// there (by reading; review-elastic35b M-a: at a 10 ms poll it passed).
#[tokio::test(start_paused = true)]
async fn a_new_leave_moves_the_count_before_it_forgets() {
    let w = world();
    begin(&w.layout, &w.engines["a"], "a").await.unwrap();
    let plan = losses(&w.layout.current(), "a").unwrap();
    let (leaves, count) = tokio::sync::watch::channel(0);
    let cfg = StreamConfig {
        epoch: Some(LeaveEpoch { count, mine: 0 }),
        ..small_pages()
    };
    let engine = w.engines["a"].clone();
    let cancelled_at = w.layout.current().version + 1;
    let sink = WaitsForTheNewLeave(Sink::new(&w, None), &w.layout, cancelled_at);
    let progress = Progress::default();
    let pass = hand_over(&w.layout, engine.clone(), &sink, "a", &cfg, &progress);
    let again = async {
        while sink.0.rows.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(cancel(&w.layout, "a").await.unwrap(), cancelled_at);
        let bump = async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            leaves.send_modify(|n| *n += 1);
        };
        begin_after(&w.layout, &engine, "a", bump).await
    };
    let (r, began) = tokio::join!(pass, again);
    began.unwrap();
    assert!(
        matches!(r, Err(LeaveError::Stream(StreamError::Superseded))),
        "{r:?}"
    );
    no_cursor(&*engine, &plan);
}

/// review-elastic35 L1: a pass whose leave was cancelled and begun again
/// (the count moved) proposes no step of the new leave: its finish stops
/// after reading the snapshot, before proposing. The latest leave's pass
/// finishes. Fails before, by reading: nothing checked the count there.
#[tokio::test]
async fn a_pass_of_an_earlier_leave_proposes_no_step() {
    let w = world();
    begin(&w.layout, &w.engines["a"], "a").await.unwrap();
    let engine = w.engines["a"].clone();
    let sink = Sink::new(&w, None);
    hand_over(
        &w.layout,
        engine.clone(),
        &sink,
        "a",
        &small_pages(),
        &Progress::default(),
    )
    .await
    .unwrap();
    let (leaves, count) = tokio::sync::watch::channel(1);
    let earlier = LeaveEpoch { count, mine: 0 };
    let handle = super::leave::Epoched {
        inner: &w.layout,
        epoch: &earlier,
    };
    let v = w.layout.current().version;
    let err = super::leave::finish(&handle, &engine, "a")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("begun again"), "{err}");
    assert_eq!(w.layout.current().version, v, "nothing proposed");
    let latest = LeaveEpoch {
        count: leaves.subscribe(),
        mine: 1,
    };
    let handle = super::leave::Epoched {
        inner: &w.layout,
        epoch: &latest,
    };
    super::leave::finish(&handle, &engine, "a").await.unwrap();
    assert_eq!(
        w.layout.current().node("a").unwrap().2.state,
        NodeState::Left
    );
}
