//! A leaver's controls once its decommission is cancelled past the switch
//! (review-cancel2-31 L3): the second step is the abort driver's, on any
//! node; the phase asked afterwards is `cancelled`, on the node's movement
//! board (`GET /movement`, `geokv ring`) too, not `cancelling` for good.

use std::sync::Arc;

use super::tests_removed::control_of;
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
