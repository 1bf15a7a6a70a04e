//! A decommission cancelled (audit11 D1, `geokv decommission --cancel`):
//! the leaver is Normal again with its tokens, its interrupted hand-over
//! proposes no switch, its push cursors can be forgotten; past the switch
//! the cancel takes two steps and the leave cannot finish in between; a
//! node that has left cannot cancel.

use super::leave::{begin, cancel, cancelled, finish, forget_cursors, hand_over, LeaveError};
use super::ops::LayoutHandle;
use super::plan::losses;
use super::stream::Progress;
use super::tests_leave::Sink;
use super::tests_ops::{small_pages, world};
use crate::layout::{FinishStep, LayoutError, NodeState};

#[tokio::test]
async fn a_cancelled_leave_proposes_no_switch_and_the_node_stays_normal() {
    let w = world();
    let seed = w.layout.current();
    begin(&w.layout, &w.engines["a"], "a").await.unwrap();
    let leaving = w.layout.current();
    assert!(!cancelled(&leaving, "a"));
    // The hand-over stops after two pages: some cursor is past its start.
    let engine = w.engines["a"].clone();
    let sink = Sink::new(&w, Some(2));
    let (cfg, progress) = (small_pages(), Progress::default());
    hand_over(&w.layout, engine.clone(), &sink, "a", &cfg, &progress)
        .await
        .unwrap_err();
    let plan = losses(&leaving, "a").unwrap();
    let started = || {
        plan.iter().any(|l| {
            l.new_owners.iter().any(|g| {
                let id = super::push::stream_id("a", g);
                let c = super::cursor::load(&*engine, &id, &l.keyspace, l.range).unwrap();
                c != super::cursor::Cursor::Start
            })
        })
    };
    assert!(started(), "the hand-over left a cursor");
    let version = cancel(&w.layout, "a").await.unwrap();
    let now = w.layout.current();
    assert_eq!((now.version, version), (leaving.version + 1, version));
    assert!(cancelled(&now, "a"));
    assert_eq!(now.node("a").unwrap().2.state, NodeState::Normal);
    assert_eq!(now.datacenters, seed.datacenters, "its tokens kept");
    // review-cancel31 L3: a Normal node has nothing to cancel (409).
    let again = cancel(&w.layout, "a").await.unwrap_err();
    assert!(matches!(&again, LeaveError::NotLeaving(_)), "{again}");
    assert!(cancel(&w.layout, "b").await.is_err(), "never leaving");
    assert_eq!(w.layout.current().version, version, "nothing proposed");
    // The leave's own finish proposes nothing now.
    finish(&w.layout, &engine, "a").await.unwrap_err();
    assert_eq!(w.layout.current().version, version, "no switch");
    forget_cursors(&engine, &now, "a").await.unwrap();
    assert!(!started(), "cursors forgotten");
}

#[tokio::test]
async fn a_cancel_past_the_switch_takes_two_steps_and_a_left_node_cannot_cancel() {
    let w = world();
    begin(&w.layout, &w.engines["a"], "a").await.unwrap();
    let FinishStep::SwitchReads(switched) = w.layout.current().next_finish_step("a").unwrap()
    else {
        panic!("the switch comes first")
    };
    w.layout.propose(switched.clone()).await.unwrap();
    cancel(&w.layout, "a").await.unwrap();
    let back = w.layout.current();
    assert!(
        cancelled(&back, "a"),
        "a running leave stops at the first step"
    );
    assert!(!back.reads_new("dc1") && back.aborting.contains("dc1"));
    assert_eq!(
        super::abort::abandoned(&back),
        vec!["a"],
        "driven to its end"
    );
    assert!(finish(&w.layout, &w.engines["a"], "a").await.is_err());
    assert_eq!(*w.layout.current(), *back, "the leave cannot finish");
    // The abort driver's second step ends it with the node Normal.
    let version = super::abort::drop_abandoned(&w.layout, "a").await.unwrap();
    let over = w.layout.current();
    assert_eq!(over.version, version);
    assert_eq!(over.node("a").unwrap().2.state, NodeState::Normal);
    assert!(over.movements.is_empty() && over.aborting.is_empty());
    // A leave that finished cannot be cancelled.
    begin(&w.layout, &w.engines["a"], "a").await.unwrap();
    let l = w.layout.current();
    let left = l.finish_leave("a").unwrap();
    w.layout.propose(left).await.unwrap();
    let err = cancel(&w.layout, "a").await.unwrap_err();
    assert!(
        matches!(&err, LeaveError::Layout(LayoutError::AlreadyLeft(_))),
        "{err}"
    );
}

/// review-cancel31 M2: main's build advertises `LAYOUT_STEPS` but reads
/// `aborting` on a Leave as no cancel, so the first step of a cancel past
/// the switch waits until every member up also advertises `REMOVE_SETS`.
#[tokio::test]
async fn a_cancel_past_the_switch_waits_for_every_member_up_to_know_cancels() {
    use super::upgrade::{LAYOUT_STEPS, REMOVE_SETS};
    let topo =
        crate::topology::testing::yaml(&[("dc1", &["m2a", "m2b", "m2c", "m2d"])], &[("dc1", 3)]);
    let (seed, _, _) = super::tests_ops::replicated(&topo, 10);
    let h = super::tests_ops::Fake(parking_lot::Mutex::new(std::sync::Arc::new(seed)));
    let engine = crate::view::cas_testing::engine().expect("an engine");
    begin(&h, &engine, "m2a").await.unwrap();
    let FinishStep::SwitchReads(switched) = h.current().next_finish_step("m2a").unwrap() else {
        panic!("the switch comes first")
    };
    h.propose(switched).await.unwrap();
    let board = super::progress::board("m2a");
    board.set_liveness(std::sync::Arc::new(|_: &str| true));
    let main_build = |id: &str| {
        Some(if id == "m2b" {
            LAYOUT_STEPS
        } else {
            LAYOUT_STEPS | REMOVE_SETS
        })
    };
    board.set_features(std::sync::Arc::new(main_build));
    let err = cancel(&h, "m2a").await.unwrap_err();
    assert!(
        matches!(&err, LeaveError::NotUpgraded(e) if e.members.len() == 1),
        "{err}"
    );
    assert!(h.current().aborting.is_empty(), "nothing proposed");
    board.set_features(std::sync::Arc::new(|_: &str| {
        Some(LAYOUT_STEPS | REMOVE_SETS)
    }));
    cancel(&h, "m2a").await.unwrap();
    assert_eq!(h.current().cancelling("dc1"), Some("m2a"));
}

/// review-cancel2-31 L5: a proposal of the cancel that fails but was
/// applied (a timeout, `NotInstalled` decided as ours) is a cancel done,
/// not `NotLeaving` (409), and nothing more is proposed.
#[tokio::test]
async fn a_cancel_whose_failed_proposal_was_applied_is_done() {
    let w = world();
    begin(&w.layout, &w.engines["a"], "a").await.unwrap();
    let leaving = w.layout.current();
    let ours = leaving.cancel_leave("a").unwrap();
    let h = Racing {
        inner: super::tests_ops::Fake(parking_lot::Mutex::new(leaving)),
        race: parking_lot::Mutex::new(Some(ours.clone())),
    };
    let done = cancel(&h, "a").await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(done, ours.version);
    assert_eq!(*h.current(), ours, "nothing more proposed");
}

/// A handle whose next proposal loses to `race` (the leave's own switch
/// or finish, decided first by another proposer).
struct Racing {
    inner: super::tests_ops::Fake,
    race: parking_lot::Mutex<Option<crate::layout::Layout>>,
}

impl LayoutHandle for Racing {
    fn current(&self) -> std::sync::Arc<crate::layout::Layout> {
        self.inner.current()
    }

    async fn propose(&self, next: crate::layout::Layout) -> Result<(), super::ops::ProposeError> {
        let won = self.race.lock().take();
        match won {
            Some(won) => {
                *self.inner.0.lock() = std::sync::Arc::new(won);
                Err(super::ops::ProposeError(
                    "a concurrent layout was chosen".into(),
                ))
            }
            None => self.inner.propose(next).await,
        }
    }

    fn upgraded(&self, except: &str) -> Result<(), super::upgrade::NotUpgraded> {
        self.inner.upgraded(except)
    }

    async fn announced(&self, version: u64) -> Result<(), super::ops::ProposeError> {
        self.inner.announced(version).await
    }
}

/// review-cancel31 L4: a cancel whose one-step proposal loses to the
/// leave's switch is evaluated once more and takes the first of two steps
/// (not a 500); one that loses to the finish is `AlreadyLeft` (409).
#[tokio::test]
async fn a_cancel_losing_to_the_switch_or_the_finish_is_evaluated_again() {
    let w = world();
    begin(&w.layout, &w.engines["a"], "a").await.unwrap();
    let leaving = w.layout.current();
    let FinishStep::SwitchReads(switched) = leaving.next_finish_step("a").unwrap() else {
        panic!("the switch comes first")
    };
    let h = Racing {
        inner: super::tests_ops::Fake(parking_lot::Mutex::new(leaving.clone())),
        race: parking_lot::Mutex::new(Some(switched.clone())),
    };
    cancel(&h, "a").await.unwrap();
    assert_eq!(h.current().version, switched.version + 1);
    assert_eq!(h.current().cancelling("dc1"), Some("a"), "step 1 of 2");
    let left = leaving.finish_leave("a").unwrap();
    let h = Racing {
        inner: super::tests_ops::Fake(parking_lot::Mutex::new(leaving)),
        race: parking_lot::Mutex::new(Some(left)),
    };
    let err = cancel(&h, "a").await.unwrap_err();
    let left = matches!(&err, LeaveError::Layout(LayoutError::AlreadyLeft(_)));
    assert!(left, "{err}");
}

/// review-cancel32 H1: a cancel during a failed leave's retry pause ends
/// the pause at once (the loop then forgets the push cursors and shows
/// `cancelled`); with no cancel the pause runs out.
#[tokio::test(start_paused = true)]
async fn a_cancel_ends_the_retry_pause_at_once() {
    use super::leave::cancelled_within;
    use std::time::Duration;
    let ids = ["p1a", "p1b", "p1c", "p1d"];
    let topo = crate::topology::testing::yaml(&[("dc1", &ids)], &[("dc1", 3)]);
    let (seed, _, _) = super::tests_ops::replicated(&topo, 10);
    let leaving = seed.begin_leave("p1d").unwrap();
    let cluster = crate::view::Cluster::new(leaving.clone(), "p1d", None).expect("cluster");
    let pause = Duration::from_secs(2);
    let began = tokio::time::Instant::now();
    assert!(!cancelled_within(&cluster, "p1d", pause).await, "no cancel");
    assert_eq!(began.elapsed(), pause);
    let began = tokio::time::Instant::now();
    let cancel = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        cluster
            .install(leaving.cancel_leave("p1d").unwrap())
            .unwrap();
    };
    let (was, ()) = tokio::join!(cancelled_within(&cluster, "p1d", pause), cancel);
    assert!(was, "cancelled in the pause");
    assert_eq!(
        began.elapsed(),
        Duration::from_millis(500),
        "not after the pause"
    );
}

/// review-final32 L2: `begin` itself forgets a Normal node's stale push
/// cursors, on the snapshot it proposes on (before, `Control` forgot them
/// on a snapshot of its own, and a view installed in between could skip
/// the forget); a refused begin forgets nothing. review-cancel32b M1: the
/// restart's `resume` never proposes a leave, and finds a running one.
#[tokio::test]
async fn begin_forgets_stale_cursors_on_its_own_snapshot_and_resume_never_begins() {
    use super::cursor::{self, Cursor};
    use super::leave::{resume, Began};
    let w = world();
    let engine = w.engines["a"].clone();
    let plan = losses(&w.layout.current().begin_leave("a").unwrap(), "a").unwrap();
    let stale = || {
        let mut b = crate::engine::WriteBatch::new();
        for l in &plan {
            for g in &l.new_owners {
                let id = super::push::stream_id("a", g);
                cursor::save(&mut b, &id, &l.keyspace, l.range, &Cursor::Done);
            }
        }
        engine.write(b).unwrap();
    };
    let done = || {
        plan.iter().any(|l| {
            l.new_owners.iter().any(|g| {
                let id = super::push::stream_id("a", g);
                cursor::load(&*engine, &id, &l.keyspace, l.range).unwrap() == Cursor::Done
            })
        })
    };
    stale();
    assert!(matches!(
        resume(&w.layout, "a"),
        Err(LeaveError::NotLeaving(_))
    ));
    assert!(
        w.layout.current().movements.is_empty(),
        "resume proposed nothing"
    );
    assert!(done(), "nor forgot anything");
    // Refused (another movement in dc1): nothing forgotten either.
    let b = w.layout.current().begin_leave("b").unwrap();
    w.layout.propose(b).await.unwrap();
    let refused = begin(&w.layout, &engine, "a").await.unwrap_err();
    assert!(matches!(refused, LeaveError::Layout(_)), "{refused}");
    assert!(done(), "a refused begin forgets nothing");
    cancel(&w.layout, "b").await.unwrap();
    assert_eq!(begin(&w.layout, &engine, "a").await.unwrap(), Began::Began);
    assert!(!done(), "the begin forgot the stale cursors");
    assert_eq!(resume(&w.layout, "a").unwrap(), Began::Resumed);
}

/// review-cancel33 L4: the forget of a leave's push cursors toward N
/// gainers (its cancel, a decommission begun again, its finish) is one
/// write, on the engine's call site: off the async worker when writes
/// wait for an fsync (review-final32 L1).
#[tokio::test]
async fn the_forget_of_every_gainers_cursors_is_one_write_off_the_worker() {
    use super::cursor::{self, Cursor, Incarnation};
    use super::push::{forget, stream_id};
    use crate::engine::testing::{Hooked, Threads};
    use crate::engine::{Engine, WriteBatch};
    use crate::ring::TokenRange;
    use std::sync::Arc;
    let hooked = Arc::new(Hooked::new(Threads::syncing()));
    let engine: Arc<dyn Engine> = hooked.clone();
    let gainers = ["g1", "g2", "g3"].map(String::from);
    let range = TokenRange { start: 1, end: 9 };
    let mut batch = WriteBatch::new();
    for g in &gainers {
        let id = stream_id("a", g);
        cursor::save(&mut batch, &id, "ks", range, &Cursor::Done);
        cursor::save_incarnation(&mut batch, &id, Incarnation::Known(7));
    }
    engine.write(batch).unwrap();
    hooked.writers.lock().clear();
    forget(&engine, "a", gainers.clone()).await.unwrap();
    let writers = hooked.writers.lock().clone();
    assert_eq!(writers.len(), 1, "one write for three gainers");
    assert_ne!(writers[0], std::thread::current().id(), "off the worker");
    for g in &gainers {
        let id = stream_id("a", g);
        let c = cursor::load(&*engine, &id, "ks", range).unwrap();
        assert_eq!(c, Cursor::Start, "{id}");
        assert_eq!(cursor::load_incarnation(&*engine, &id).unwrap(), None);
    }
}

/// review-cancel6 L2: a forget that fails says what happened: before a
/// begin's proposal, that none began; after the finish, that the node has
/// left. Fails before: both read "handing ranges over stopped (run the
/// decommission again to resume)" (`LeaveError::Stream`).
#[tokio::test]
async fn a_failed_forget_says_whether_the_leave_began_or_ended() {
    use crate::engine::testing::{Hooked, Threads};
    use crate::engine::Engine;
    use std::sync::Arc;
    let w = world();
    let failing = Arc::new(Hooked::new(Threads::new()));
    let engine: Arc<dyn Engine> = failing.clone();
    failing.fail_after(0);
    let err = begin(&w.layout, &engine, "a").await.unwrap_err();
    assert!(matches!(err, LeaveError::Stale(_)), "{err}");
    assert!(err.to_string().contains("nothing was proposed"), "{err}");
    assert!(w.layout.current().movements.is_empty(), "none began");
    begin(&w.layout, &w.engines["a"], "a").await.unwrap();
    let (cfg, progress, sink) = (small_pages(), Progress::default(), Sink::new(&w, None));
    let a = w.engines["a"].clone();
    hand_over(&w.layout, a, &sink, "a", &cfg, &progress)
        .await
        .unwrap();
    failing.fail_after(0);
    let err = finish(&w.layout, &engine, "a").await.unwrap_err();
    assert!(matches!(err, LeaveError::Forget(_)), "{err}");
    assert!(err.to_string().contains("has left"), "{err}");
    let state = w.layout.current().node("a").unwrap().2.state;
    assert_eq!(state, NodeState::Left, "the leave ended");
}
