//! A node whose removal the layout decided ends removed whether or not a
//! decommission runs on it (review-elastic2-30 M1): restarted while its
//! removal is in progress, or learning it late, it hands its queues over
//! once Removed and stops, and the node exits 3; a stop meanwhile still
//! ends it removed, told apart from the end that handed its queues over
//! (review-recover31 M1).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::{Control, Ended, LeaveError, NodeHooks};
use crate::engine::{Engine, Limits, MemoryEngine};
use crate::hints::Hints;
use crate::layout::Layout;
use crate::movement::leave_end::follow_removal;
use crate::transport::{faults::Faults, tls::Tls, Peers};
use crate::view::Cluster;

/// dc1 = a, b, c, d (rf 3), dc2 = x: `d` leaving, its leave turned into a
/// removal (in progress), then the removal finished (Removed).
fn layouts() -> [Layout; 3] {
    let topo = crate::topology::testing::four_and_one();
    let parsed = crate::topology::Topology::parse("t.yaml", &topo).expect("parses");
    let leaving = Layout::seed(&parsed).begin_leave("d").expect("leave");
    let removing = crate::movement::remove::begin(&leaving, "d", &|_| false).expect("removal");
    let removed = removing.finish_remove("d").expect("finish");
    [leaving, removing, removed]
}

/// `d`'s controls on `layout`, built as the node builds them, and the
/// node's stop. No hint is queued; its anti-entropy records are not
/// counted yet (the node's record hand-over, not run here, counts them):
/// [`no_records_left`].
fn control_on(layout: Layout) -> (Arc<Control>, watch::Receiver<bool>) {
    control_of(layout, "d")
}

/// [`control_on`] for node `me`.
pub(super) fn control_of(layout: Layout, me: &str) -> (Arc<Control>, watch::Receiver<bool>) {
    control_in(Cluster::new(layout, me, None).expect("cluster"))
}

/// The controls of `cluster`'s node, built as the node builds them.
pub(super) fn control_in(cluster: Cluster) -> (Arc<Control>, watch::Receiver<bool>) {
    control_with(cluster, Arc::new(MemoryEngine::new(Limits::default())))
}

/// [`control_in`] on `engine` (a hooked one, say).
pub(super) fn control_with(
    cluster: Cluster,
    engine: Arc<dyn Engine>,
) -> (Arc<Control>, watch::Receiver<bool>) {
    let me = cluster.current().me().cloned().expect("a member");
    let hints = Hints::open(
        engine.clone(),
        cluster.clone(),
        me.clone(),
        Default::default(),
    );
    let peers = Peers::new(me, Arc::new(Faults::new(false)), &Tls::insecure());
    let (stop, stopped) = watch::channel(false);
    let hooks = NodeHooks {
        stop,
        spawner: crate::tasks::Spawner::detached(),
    };
    let control = Control::new(
        cluster,
        engine,
        Arc::new(peers),
        Arc::new(|_: &str| true),
        Arc::new(hints.expect("hints")),
        hooks,
        Arc::default(),
    );
    (control, stopped)
}

/// Plays the node's record hand-over finding none left to hand over.
fn no_records_left(control: &Control) {
    let records = &control.hints.store.records;
    records.none_left(records.begin());
}

/// As `node::serve` runs it.
fn follow(control: &Arc<Control>) -> (tokio::task::JoinHandle<()>, watch::Sender<bool>) {
    let (shutdown, rx) = watch::channel(false);
    (tokio::spawn(follow_removal(control.clone(), rx)), shutdown)
}

#[tokio::test(start_paused = true)]
async fn a_control_started_on_its_removal_hands_its_queues_over_and_ends_removed() {
    let [_, removing, removed] = layouts();
    let (control, mut stopped) = control_on(removing);
    let (end, _shutdown) = follow(&control);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(!end.is_finished(), "the removal is still in progress");
    assert!(control.ended().is_none() && !*stopped.borrow());
    let status = control.status();
    assert_eq!(status.phase, "draining", "{status:?}");
    assert!(
        status.detail.contains("waiting for the removal"),
        "{status:?}"
    );
    control.cluster.install(removed).expect("install");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(!end.is_finished(), "its records are not handed over yet");
    assert!(control.ended().is_none() && !*stopped.borrow());
    no_records_left(&control);
    tokio::time::timeout(Duration::from_secs(10), end)
        .await
        .expect("it ends once Removed and handed over")
        .expect("no panic");
    assert_eq!(control.ended(), Some(Ended::HandedOver), "exits Removed");
    assert!(*stopped.borrow_and_update(), "the node is stopped");
    let status = control.status();
    assert_eq!(status.phase, "failed", "queues handed over: {status:?}");
    assert!(status.detail.contains("removed"), "{status:?}");
    // review-final32 L5: `on_removed` does not know whether a
    // decommission ran (none may have): its error presumes none.
    for leave in ["turned its decommission", "cannot go on leaving"] {
        assert!(!status.detail.contains(leave), "{status:?}");
    }
}

/// Learning it late (the layout sync installs the removal while the node
/// runs, decommissioning or not) ends it the same way; before that, and
/// on the node's shutdown, nothing happens.
#[tokio::test(start_paused = true)]
async fn a_removal_learnt_while_running_ends_the_node_removed() {
    let [leaving, removing, removed] = layouts();
    let (control, stopped) = control_on(leaving.clone());
    let (end, shutdown) = follow(&control);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(control.status().phase, "idle");
    shutdown.send(true).expect("following");
    end.await.expect("ends on the shutdown");
    assert!(control.ended().is_none() && !*stopped.borrow());

    let (control, mut stopped) = control_on(leaving);
    no_records_left(&control);
    let (end, _shutdown) = follow(&control);
    control.cluster.install(removing).expect("install");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(control.status().phase, "draining");
    control.cluster.install(removed).expect("install");
    tokio::time::timeout(Duration::from_secs(10), end)
        .await
        .expect("it ends once Removed")
        .expect("no panic");
    assert_eq!(control.ended(), Some(Ended::HandedOver));
    assert!(*stopped.borrow_and_update());
}

/// A stop (SIGTERM) while it waits for its removal to finish does not
/// turn into a clean exit: the removal is decided, the node exits 3, but
/// with the error that says to start it again, not to wipe it (M1).
#[tokio::test(start_paused = true)]
async fn a_stop_while_the_removal_is_in_progress_ends_it_stopped_before_its_hand_over() {
    let [_, removing, _] = layouts();
    let (control, _stopped) = control_on(removing);
    let (end, _shutdown) = follow(&control);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(control.status().phase, "draining");
    control.stop.send(true).expect("the node's stop");
    tokio::time::timeout(Duration::from_secs(1), end)
        .await
        .expect("it ends with the stop")
        .expect("no panic");
    assert_eq!(control.ended(), Some(Ended::Stopped), "exit 3, not 0");
    let status = control.status();
    assert!(status.detail.contains("stopped before"), "{status:?}");
}

/// A stop during the last wait, once its queues are handed over, is the
/// handed-over end: the node exits with `NodeError::Removed` (M1).
#[tokio::test(start_paused = true)]
async fn a_stop_after_the_hand_over_ends_it_handed_over() {
    let [_, removing, removed] = layouts();
    let (control, _stopped) = control_on(removing);
    no_records_left(&control);
    let (end, _shutdown) = follow(&control);
    control.cluster.install(removed).expect("install");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(control.status().phase, "failed", "handed over, waiting");
    assert!(!end.is_finished(), "in the 2 s before the stop");
    control.stop.send(true).expect("the node's stop");
    tokio::time::timeout(Duration::from_secs(1), end)
        .await
        .expect("it ends with the stop")
        .expect("no panic");
    assert_eq!(control.ended(), Some(Ended::HandedOver), "exits Removed");
    let status = control.status();
    assert!(!status.detail.contains("stopped before"), "{status:?}");
}

/// The operator's `--allow-old-gainers` reaches a leave already running
/// (its next push's configuration), shows in the status, and a later
/// request without it (re-attaching) does not take it back (L3).
#[tokio::test(start_paused = true)]
async fn the_override_of_old_gainers_reaches_a_running_leave_and_stays() {
    let [leaving, _, _] = layouts();
    let (control, _stopped) = control_on(leaving);
    let status = control.decommission(false).await.expect("resumed");
    assert!(!status.allow_old_gainers && !control.stream_config().allow_old_gainers);
    assert!(*control.running.lock(), "the leave runs");
    let status = control.decommission(true).await.expect("while running");
    assert!(status.allow_old_gainers, "{status:?}");
    assert!(control.stream_config().allow_old_gainers, "its next push");
    let status = control.decommission(false).await.expect("re-attached");
    assert!(status.allow_old_gainers, "sticky: {status:?}");
    assert!(control.stream_config().allow_old_gainers);
}

/// A refused request (here: the node's removal is decided) does not turn
/// the override on for the process (review-recover2-31 N3).
#[tokio::test(start_paused = true)]
async fn a_refused_decommission_leaves_the_override_of_old_gainers_off() {
    let [_, removing, _] = layouts();
    let (control, _stopped) = control_on(removing);
    let refused = control.decommission(true).await;
    assert!(
        matches!(refused, Err(LeaveError::Removed(_))),
        "{refused:?}"
    );
    assert!(
        !control.status().allow_old_gainers,
        "{:?}",
        control.status()
    );
    assert!(!control.stream_config().allow_old_gainers);
}
