//! The replica-side read check around the three-step end of a movement
//! (review of the switch, M1): a replica that only *receives* a key's
//! writes in its view (a pending replica: an old owner losing the key once
//! reads have switched) refuses a read planned on an older view, so a
//! coordinator that missed a step re-plans instead of counting an answer
//! from a node that may miss a write acknowledged on the newest version.

use super::tests::{assert_stale, keys, owners, repair_merge};
use crate::layout::{FinishStep, Layout};
use crate::topology::Topology;
use crate::view::ClusterView;

/// Views of `dc1-new` joining dc1 as seen by `me`: seed (v1), joining
/// (v2, reads old), switched (v3, reads new, the losers pending).
fn switch_views(me: &str) -> [ClusterView; 3] {
    let seed = Layout::seed(&Topology::dev());
    let joining = crate::layout::testing::dev_join(&seed, "dc1-new", "127.0.0.14");
    let FinishStep::SwitchReads(switched) = joining.next_finish_step("dc1-new").expect("step")
    else {
        panic!("a join reading old switches its reads first");
    };
    [seed, joining, switched].map(|l| ClusterView::derive(l, me).expect("view"))
}

/// A key `me` reads for on the joining view and only receives writes for
/// once reads have switched.
fn a_key_lost(views: &[ClusterView; 3], me: &str) -> Vec<u8> {
    keys()
        .find(|k| {
            owners(&views[1], k).iter().any(|n| n == me)
                && !owners(&views[2], k).iter().any(|n| n == me)
        })
        .expect("a key dc1-n1 loses in the join")
}

#[test]
fn a_pending_loser_refuses_a_read_planned_before_the_switch() {
    let me = "dc1-n1";
    let views = switch_views(me);
    let key = a_key_lost(&views, me);
    let refused = super::check_read(&views[2], "default", &key, 2, &[]).expect("refused");
    assert_stale(&refused, 2, 3);
    assert!(
        super::check_read(&views[2], "default", &key, 3, &[]).is_none(),
        "a read planned on its own view is answered"
    );
    assert!(
        super::check_read(&views[1], "default", &key, 1, &[]).is_none(),
        "while reads stay with the old owners, it answers older reads"
    );
}

/// A repair's merge is no read: a pending replica takes it (it receives
/// the key's writes anyway), planned on whichever older view.
#[test]
fn a_pending_loser_still_takes_a_repair_merge_planned_before_the_switch() {
    let me = "dc1-n1";
    let views = switch_views(me);
    let key = a_key_lost(&views, me);
    assert!(repair_merge(&views[2], &key, 2).is_none());
}
