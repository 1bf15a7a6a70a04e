//! A decommission cancelled (audit11 D1, `geokv decommission --cancel`):
//! the leaver is Normal again with its tokens, its interrupted hand-over
//! proposes no switch, its push cursors can be forgotten; past the switch
//! the cancel takes two steps and the leave cannot finish in between; a
//! node that has left cannot cancel.

use super::leave::{begin, cancel, cancelled, finish, forget_cursors, hand_over};
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
    begin(&w.layout, "a").await.unwrap();
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
    assert_eq!(cancel(&w.layout, "a").await.unwrap(), version, "idempotent");
    // The leave's own finish proposes nothing now.
    finish(&w.layout, &*engine, "a").await.unwrap_err();
    assert_eq!(w.layout.current().version, version, "no switch");
    forget_cursors(&*engine, &now, "a").unwrap();
    assert!(!started(), "cursors forgotten");
}

#[tokio::test]
async fn a_cancel_past_the_switch_takes_two_steps_and_a_left_node_cannot_cancel() {
    let w = world();
    begin(&w.layout, "a").await.unwrap();
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
    assert!(finish(&w.layout, &*w.engines["a"], "a").await.is_err());
    assert_eq!(*w.layout.current(), *back, "the leave cannot finish");
    // The abort driver's second step ends it with the node Normal.
    let version = super::abort::drop_abandoned(&w.layout, "a").await.unwrap();
    let over = w.layout.current();
    assert_eq!(over.version, version);
    assert_eq!(over.node("a").unwrap().2.state, NodeState::Normal);
    assert!(over.movements.is_empty() && over.aborting.is_empty());
    // A leave that finished cannot be cancelled.
    begin(&w.layout, "a").await.unwrap();
    let l = w.layout.current();
    let left = l.finish_leave("a").unwrap();
    w.layout.propose(left).await.unwrap();
    let err = cancel(&w.layout, "a").await.unwrap_err();
    assert!(
        matches!(
            &err,
            super::leave::LeaveError::Layout(LayoutError::AlreadyLeft(_))
        ),
        "{err}"
    );
}
