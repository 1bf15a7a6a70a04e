//! A leaver's controls once its decommission is cancelled past the switch
//! (review-cancel2-31 L3): the second step is the abort driver's, on any
//! node; the phase asked afterwards is `cancelled`, on the node's movement
//! board (`GET /movement`, `geokv ring`) too, not `cancelling` for good.

use std::sync::Arc;

use super::tests_removed::{control_of, control_with};
use crate::movement::progress::board;
use crate::movement::stream::Progress;

#[tokio::test]
async fn the_board_shows_the_cancel_done_once_the_status_is_asked() {
    let ids = ["l3a", "l3b", "l3c", "l3d"];
    let topo = crate::topology::testing::yaml(&[("dc1", &ids)], &[("dc1", 3)]);
    let (seed, _, _) = crate::movement::tests_ops::replicated(&topo, 10);
    let leaving = seed.begin_leave("l3d").unwrap();
    let switched = leaving.next_finish_step("l3d").unwrap().layout().clone();
    let back = switched.cancel_leave("l3d").unwrap();
    assert_eq!(back.cancelling("dc1"), Some("l3d"), "step 1 of 2");
    let (control, _stopped) = control_of(back.clone(), "l3d");
    // The leave ran on this node: its board shows the decommission.
    let board = board("l3d");
    board.start(
        "decommission of l3d",
        leaving.version,
        Arc::new(Progress::default()),
    );
    let status = control.cancel().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status.phase, "cancelling");
    let shown = || board.report().expect("a report").status;
    assert!(shown().starts_with("cancelling"), "{}", shown());
    // The second step, driven elsewhere, reaches this node.
    let normal = back.cancel_leave("l3d").unwrap();
    assert!(normal.movements.is_empty(), "the node Normal");
    control.cluster.install(normal).unwrap();
    assert_eq!(control.status().phase, "cancelled");
    assert!(shown().starts_with("cancelled"), "{}", shown());
}

/// review-final32 M1: `--allow-old-gainers` is sticky for a running
/// leave, but a cancel ends it: the README's way on (cancel, remove the
/// dead gainer, decommission again) must not pass older gainers unasked.
#[tokio::test]
async fn a_cancel_ends_the_override_of_old_gainers() {
    use std::sync::atomic::Ordering;
    let ids = ["m1a", "m1b", "m1c", "m1d"];
    let topo = crate::topology::testing::yaml(&[("dc1", &ids)], &[("dc1", 3)]);
    let (seed, _, _) = crate::movement::tests_ops::replicated(&topo, 10);
    let leaving = seed.begin_leave("m1d").unwrap();
    let switched = leaving.next_finish_step("m1d").unwrap().layout().clone();
    let back = switched.cancel_leave("m1d").unwrap();
    let (control, _stopped) = control_of(back, "m1d");
    // Set as an accepted `decommission --allow-old-gainers` sets it.
    control.allow_old_gainers.store(true, Ordering::SeqCst);
    assert!(control.status().allow_old_gainers);
    let status = control.cancel().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status.phase, "cancelling");
    assert!(!status.allow_old_gainers, "the cancel ended the override");
    assert!(!control.status().allow_old_gainers);
}

/// review-cancel32 H1: a cancelled leave's push cursors can survive its
/// cancel (a stop in the retry sleep, a failed forget, a crash, a view
/// that lagged) while its gainers drop their copies. A decommission begun
/// again on the Normal node forgets them before its proposal, so it pushes
/// every range from the start. The proposal fails here (no network to the
/// other members): the cursors are forgotten before it, so a crash at
/// that point leaves none stale either.
#[tokio::test(start_paused = true)]
async fn a_decommission_begun_again_forgets_stale_push_cursors_first() {
    use crate::movement::cursor::{self, Cursor, Incarnation};
    use crate::movement::push::stream_id;
    let ids = ["h1a", "h1b", "h1c", "h1d"];
    let topo = crate::topology::testing::yaml(&[("dc1", &ids)], &[("dc1", 3)]);
    let (seed, _, _) = crate::movement::tests_ops::replicated(&topo, 10);
    let leaving = seed.begin_leave("h1d").unwrap();
    let losses = crate::movement::plan::losses(&leaving, "h1d").unwrap();
    let (control, _stopped) = control_of(seed, "h1d");
    // What a cancelled leave left: cursors into its losses, and each
    // gainer's incarnation (`check_in` keeps the cursors while it holds).
    let mut batch = crate::engine::WriteBatch::new();
    for l in &losses {
        for g in &l.new_owners {
            let id = stream_id("h1d", g);
            cursor::save(&mut batch, &id, &l.keyspace, l.range, &Cursor::Done);
            cursor::save_incarnation(&mut batch, &id, Incarnation::Known(7));
        }
    }
    control.engine.write(batch).unwrap();
    let r = control.decommission(false).await;
    let forget_failed = matches!(
        r,
        Err(super::LeaveError::Engine(_)
            | super::LeaveError::Stream(_)
            | super::LeaveError::Stale(_))
    );
    assert!(!forget_failed, "{r:?}");
    assert!(!losses.is_empty());
    for l in &losses {
        for g in &l.new_owners {
            let id = stream_id("h1d", g);
            let c = cursor::load(&*control.engine, &id, &l.keyspace, l.range).unwrap();
            assert_eq!(c, Cursor::Start, "{id} {:?}: nothing stale", l.range);
            assert_eq!(
                cursor::load_incarnation(&*control.engine, &id).unwrap(),
                None
            );
        }
    }
}

/// review-cancel32b M1: a cancel chosen while its node was down (it
/// crashed after proposing it, before installing it) reaches the node
/// after its restart, before the start-up resume runs. The resume
/// continues a leave the layout shows; it never begins one: here it
/// finds the node Normal, proposes nothing and leaves the cancel in force.
#[tokio::test]
async fn a_restart_never_begins_again_a_leave_its_cancel_ended() {
    use crate::layout::NodeState;
    let ids = ["r1a", "r1b", "r1c", "r1d"];
    let topo = crate::topology::testing::yaml(&[("dc1", &ids)], &[("dc1", 3)]);
    let (seed, _, _) = crate::movement::tests_ops::replicated(&topo, 10);
    let group = crate::view::cas_testing::Group::new(&seed, crate::view::cas_testing::engine);
    let node = group.node("r1d");
    let leaving = seed.begin_leave("r1d").unwrap();
    node.propose(leaving.clone()).await.expect("the leave");
    let cancelled = leaving.cancel_leave("r1d").unwrap();
    node.propose(cancelled.clone()).await.expect("the cancel");
    let (control, _stopped) = super::tests_removed::control_in(node.clone());
    let r = control.resume().await;
    let now = node.current().layout.clone();
    assert_eq!(now.version, cancelled.version, "nothing proposed: {r:?}");
    assert_eq!(now.node("r1d").unwrap().2.state, NodeState::Normal);
    assert!(now.movements.is_empty(), "no leave: {r:?}");
    assert!(matches!(r, Err(super::LeaveError::NotLeaving(_))), "{r:?}");
    assert_eq!(control.status().phase, "idle", "no decommission runs");
}

/// review-cancel33 M2: a cancel's end awaits its forget, and a
/// decommission begun again meanwhile (its layout shows the leave again;
/// `run` found a loop running and spawned none) must go on: neither the
/// handler's end nor the loop's says `cancelled` or gives up `running`.
/// On a layout still cancelled the loop's end does both. Fails before:
/// the end set `cancelled` and cleared `running` whatever the layout, so
/// the new leave had no loop (or, after a later decommission, two).
#[tokio::test]
async fn a_leave_begun_again_while_its_cancel_ends_goes_on() {
    let ids = ["m2a", "m2b", "m2c", "m2d"];
    let topo = crate::topology::testing::yaml(&[("dc1", &ids)], &[("dc1", 3)]);
    let (seed, _, _) = crate::movement::tests_ops::replicated(&topo, 10);
    let again = seed.begin_leave("m2d").unwrap();
    let (control, _stopped) = control_of(again, "m2d");
    *control.running.lock() = true;
    control.set("announcing", "");
    // Left by the cancelled leave (a leave begun again sets its own after
    // its `begin`): it never carries over (review-final33 M1).
    control
        .allow_old_gainers
        .store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(!control.cancelled("m2d", false).await, "the handler's end");
    assert!(
        !control.status().allow_old_gainers,
        "the cancelled leave's flag"
    );
    assert!(!control.cancelled("m2d", true).await, "the loop's end");
    assert!(
        *control.running.lock(),
        "the leave begun again keeps its loop"
    );
    assert_eq!(control.status().phase, "announcing");
    let (control, _stopped) = control_of(seed, "m2d");
    *control.running.lock() = true;
    assert!(control.cancelled("m2d", true).await, "still cancelled");
    assert!(!*control.running.lock());
    assert_eq!(control.status().phase, "cancelled");
}

/// review-cancel33 L1: a leave chosen while its node was down (it crashed
/// after proposing it, before installing it) reaches the node through the
/// layout sync after a start on a Normal layout. The node follows its
/// views and resumes it, proposing nothing itself. Fails before, by
/// reading: only the start-up looked for a leave (on the layout on disk),
/// so nobody drove one installed later and the phase stayed `idle`.
#[tokio::test(start_paused = true)]
async fn a_leave_chosen_while_its_node_was_down_resumes_when_its_view_arrives() {
    use std::time::Duration;
    let ids = ["f1a", "f1b", "f1c", "f1d"];
    let topo = crate::topology::testing::yaml(&[("dc1", &ids)], &[("dc1", 3)]);
    let (seed, _, _) = crate::movement::tests_ops::replicated(&topo, 10);
    let group = crate::view::cas_testing::Group::new(&seed, crate::view::cas_testing::engine);
    let node = group.node("f1d");
    let (control, _stopped) = super::tests_removed::control_in(node.clone());
    let (shutdown, rx) = tokio::sync::watch::channel(false);
    let follower = tokio::spawn(control.clone().follow_own_leave(rx));
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(control.status().phase, "idle", "Normal: nothing to resume");
    assert!(!*control.running.lock());
    let leaving = seed.begin_leave("f1d").unwrap();
    node.install(leaving.clone()).unwrap();
    for _ in 0..100 {
        if control.status().phase != "idle" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_ne!(control.status().phase, "idle", "the leave runs");
    assert!(*control.running.lock());
    let now = node.current().layout.clone();
    assert_eq!(now.version, leaving.version, "nothing proposed");
    shutdown.send(true).unwrap();
    follower.await.unwrap();
}

/// cancel6 (report-cancel5's open point): a node started between the two
/// steps of a cancel past the switch (its layout shows the cancel) ends
/// the leave as the cancel handler does, its push cursors forgotten, and
/// shows `cancelling`, then `cancelled` once the second step arrives, not
/// `idle`. Fails before, by reading: the view follower of L1 resumed only
/// a leave not being cancelled, and nothing else ended this one.
#[tokio::test(start_paused = true)]
async fn a_node_started_between_a_cancels_two_steps_shows_the_cancel() {
    use crate::movement::cursor::{self, Cursor};
    use std::time::Duration;
    let ids = ["c2a", "c2b", "c2c", "c2d"];
    let topo = crate::topology::testing::yaml(&[("dc1", &ids)], &[("dc1", 3)]);
    let (seed, _, _) = crate::movement::tests_ops::replicated(&topo, 10);
    let leaving = seed.begin_leave("c2d").unwrap();
    let switched = leaving.next_finish_step("c2d").unwrap().layout().clone();
    let back = switched.cancel_leave("c2d").unwrap();
    let (control, _stopped) = control_of(back.clone(), "c2d");
    let (id, range) = (
        crate::movement::push::stream_id("c2d", "c2a"),
        crate::ring::TokenRange { start: 1, end: 9 },
    );
    let mut batch = crate::engine::WriteBatch::new();
    cursor::save(&mut batch, &id, "ks", range, &Cursor::Done);
    control.engine.write(batch).unwrap();
    let (shutdown, rx) = tokio::sync::watch::channel(false);
    let follower = tokio::spawn(control.clone().follow_own_leave(rx));
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(control.status().phase, "cancelling");
    assert!(!*control.running.lock(), "no leave runs");
    let c = cursor::load(&*control.engine, &id, "ks", range).unwrap();
    assert_eq!(c, Cursor::Start, "its push cursors forgotten");
    control
        .cluster
        .install(back.cancel_leave("c2d").unwrap())
        .unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(control.status().phase, "cancelled");
    shutdown.send(true).unwrap();
    follower.await.unwrap();
}

/// review-final33 L4: the cancel's answer is read after its end's await.
/// A decommission begun again while the end forgets the push cursors goes
/// on, and the handler refuses with `BegunAgain` (409) instead of "the
/// node stays a member". Fails before: the answer was computed before the
/// await (`Ok`, phase `cancelling`) while the node was leaving again.
#[tokio::test]
async fn a_cancel_whose_end_sees_a_leave_begun_again_says_so() {
    let ids = ["l4a", "l4b", "l4c", "l4d"];
    let topo = crate::topology::testing::yaml(&[("dc1", &ids)], &[("dc1", 3)]);
    let (seed, _, _) = crate::movement::tests_ops::replicated(&topo, 10);
    let leaving = seed.begin_leave("l4d").unwrap();
    let switched = leaving.next_finish_step("l4d").unwrap().layout().clone();
    let back = switched.cancel_leave("l4d").unwrap();
    let again = back
        .cancel_leave("l4d")
        .unwrap()
        .begin_leave("l4d")
        .unwrap();
    let (control, _stopped) = installing_during_the_forget(back, "l4d", again);
    let r = control.cancel().await;
    assert!(
        matches!(&r, Err(super::LeaveError::BegunAgain(id)) if id == "l4d"),
        "{r:?}"
    );
    assert_ne!(control.status().phase, "cancelled");
}

/// review-final33 L3: the loop's end checks the layout after its forget's
/// await, not before: a decommission begun again (without
/// `--allow-old-gainers`) while the forget runs goes on in the same loop,
/// which keeps `running`, and the cancelled leave's flag is gone.
#[tokio::test]
async fn a_leave_begun_during_its_cancels_forget_goes_on() {
    let ids = ["l3a", "l3b", "l3c", "l3d"];
    let topo = crate::topology::testing::yaml(&[("dc1", &ids)], &[("dc1", 3)]);
    let (seed, _, _) = crate::movement::tests_ops::replicated(&topo, 10);
    let again = seed.begin_leave("l3d").unwrap();
    let (control, _stopped) = installing_during_the_forget(seed, "l3d", again);
    *control.running.lock() = true;
    control.set("streaming", "");
    let flag = &control.allow_old_gainers;
    flag.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(!control.cancelled("l3d", true).await, "begun again");
    assert!(*control.running.lock(), "the loop drives the new leave");
    assert_eq!(control.status().phase, "streaming");
    assert!(!control.status().allow_old_gainers, "the cancelled leave's");
}

/// review-final33 L1: this node's replacement finishes (the node
/// Removed) while its cancel's end forgets the push cursors, so
/// `follow_removal`'s `on_removed` found the loop running and returned.
/// The loop's end does not say `cancelled` nor give up `running`: its
/// top ends the node as removed; the handler's end answers `Removed`,
/// not "begun again". A replacement still in progress is no leave of
/// this node: the cancel ends, and `follow_removal` ends the node once it
/// finishes. Passes before for the loop (a Removed node is not
/// `leave::cancelled`), by reading; fails before for the handler's answer.
#[tokio::test]
async fn a_replacement_finished_while_a_cancel_ends_ends_the_node() {
    let ids = ["l1a", "l1b", "l1c", "l1d"];
    let topo = crate::topology::testing::yaml(&[("dc1", &ids)], &[("dc1", 3)]);
    let (seed, _, _) = crate::movement::tests_ops::replicated(&topo, 10);
    let leaving = seed.begin_leave("l1d").unwrap();
    let switched = leaving.next_finish_step("l1d").unwrap().layout().clone();
    let back = switched.cancel_leave("l1d").unwrap();
    let new = crate::layout::testing::new_node("l1r", "127.0.0.99");
    let replacing = (back.cancel_leave("l1d").unwrap())
        .begin_replace("l1d", new)
        .unwrap();
    let mut gone = replacing.settled();
    gone.version = replacing.version + 1;
    let (control, _stopped) = installing_during_the_forget(back.clone(), "l1d", gone.clone());
    *control.running.lock() = true;
    control.set("streaming", "");
    assert!(!control.cancelled("l1d", true).await, "removed meanwhile");
    assert!(*control.running.lock(), "the loop ends it as removed");
    assert_ne!(control.status().phase, "cancelled");
    let (control, _stopped) = installing_during_the_forget(back, "l1d", gone);
    let r = control.cancel().await;
    assert!(
        matches!(&r, Err(super::LeaveError::Removed(id)) if id == "l1d"),
        "{r:?}"
    );
}

/// Node `me`'s control on `start`, whose engine installs `during` in its
/// view at its first write (the forget of a cancel's end).
fn installing_during_the_forget(
    start: crate::layout::Layout,
    me: &str,
    during: crate::layout::Layout,
) -> (Arc<super::Control>, tokio::sync::watch::Receiver<bool>) {
    use crate::engine::testing::{Hooked, Hooks};
    use crate::engine::{EngineError, WriteBatch};
    use crate::layout::Layout;
    use crate::view::Cluster;
    use parking_lot::Mutex;
    struct Install(Cluster, Mutex<Option<Layout>>);
    impl Hooks for Install {
        fn before_write(&self, _: &WriteBatch) -> Result<(), EngineError> {
            if let Some(next) = self.1.lock().take() {
                self.0.install(next).expect("installs");
            }
            Ok(())
        }
    }
    let cluster = Cluster::new(start, me, None).expect("cluster");
    let hooks = Install(cluster.clone(), Mutex::new(Some(during)));
    control_with(cluster, Arc::new(Hooked::new(hooks)))
}

/// review-elastic35 L5: an earlier leave's `--allow-old-gainers` (its
/// cancel missed, so the cancel's end never cleared it) does not carry
/// into a leave begun again on the Normal node without it. The begin
/// clears it before its bump, whatever the proposal does after (here it
/// fails: no network to the other members).
#[tokio::test(start_paused = true)]
async fn a_new_leave_starts_without_an_earlier_leaves_override() {
    use std::sync::atomic::Ordering;
    let ids = ["o5a", "o5b", "o5c", "o5d"];
    let topo = crate::topology::testing::yaml(&[("dc1", &ids)], &[("dc1", 3)]);
    let (seed, _, _) = crate::movement::tests_ops::replicated(&topo, 1);
    let (control, _stopped) = control_of(seed, "o5d");
    control.allow_old_gainers.store(true, Ordering::SeqCst);
    let before = *control.leaves.borrow();
    let _ = control.decommission(false).await;
    assert_eq!(*control.leaves.borrow(), before + 1, "a new leave began");
    assert!(
        !control.status().allow_old_gainers,
        "{:?}",
        control.status()
    );
    assert!(!control.stream_config().allow_old_gainers, "its pushes");
}
