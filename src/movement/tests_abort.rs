//! `geokv removenode ID` of a node that died for good mid-movement (issue
//! 11, audit W3): a dead joiner or replacement is dropped with its
//! movement (no pending replica left), a dead leaving node's removal goes
//! on from the survivors as for a dead Normal node, and the datacenter
//! accepts the next movement. After the switch of reads a dead joiner or
//! replacement is dropped in two versions, the second driven once every
//! live member is on the first (`abort.rs`).

use std::sync::Arc;

use super::abort::{abandoned, drives, drop_abandoned};
use super::ops::LayoutHandle;
use super::remove::{begin, gainers, removals};
use crate::engine::memory::MemoryEngine;
use crate::engine::{Engine, Limits};
use crate::layout::testing::{dev_join, new_node};
use crate::layout::{Layout, Movement, NodeState};
use crate::topology::Topology;
use crate::view::ClusterView;

/// The dev seed with rf 1 everywhere, so one node can leave a datacenter.
fn seed() -> Layout {
    let mut l = Layout::seed(&Topology::dev());
    for spec in l.keyspaces.values_mut() {
        spec.replication.values_mut().for_each(|rf| *rf = 1);
    }
    l
}

fn dead(_: &str) -> bool {
    false
}

fn pending(l: &Layout) -> usize {
    let view = ClusterView::derive(l.clone(), "dc1-n1").expect("a member");
    (l.keyspaces.keys())
        .map(|ks| view.pending.ranges(ks).count())
        .sum()
}

#[test]
fn removing_a_dead_joiner_drops_it_and_its_pending_ranges() {
    let seed = seed();
    let joining = dev_join(&seed, "dc1-new", "127.0.0.14");
    assert!(pending(&joining) > 0, "a joiner is a pending replica");
    let aborted = begin(&joining, "dc1-new", &dead).expect("a dead joiner can be removed");
    assert_eq!(aborted.version, joining.version + 1);
    assert!(aborted.movements.is_empty(), "{:?}", aborted.movements);
    let (_, _, n) = aborted.node("dc1-new").expect("kept by id");
    assert_eq!((n.state, n.tokens.len()), (NodeState::Removed, 0));
    assert_eq!(pending(&aborted), 0, "no pending replica raises blockFor");
    // The datacenter takes the next join; the dead id is never reused.
    dev_join(&aborted, "dc1-next", "127.0.0.16");
    let again = aborted.begin_join(new_node("dc1-new", "127.0.0.17"), "dc1", "r1", &[7]);
    assert!(again.is_err(), "ids are never reused");
}

#[test]
fn removing_a_dead_replacement_keeps_the_replaced_node_for_another_try() {
    let seed = seed();
    let replacing =
        (seed.begin_replace("dc1-n2", new_node("dc1-r", "127.0.0.18"))).expect("replace");
    let aborted = begin(&replacing, "dc1-r", &dead).expect("a dead replacement can be removed");
    assert!(aborted.movements.is_empty());
    assert_eq!(
        aborted.node("dc1-r").expect("kept").2.state,
        NodeState::Removed
    );
    let (_, _, old) = aborted.node("dc1-n2").expect("the replaced node");
    assert_eq!(old.state, NodeState::Normal);
    assert_eq!(pending(&aborted), 0);
    aborted
        .begin_remove("dc1-n2")
        .expect("then removed or replaced again");
}

#[test]
fn removing_a_dead_leaving_node_re_replicates_from_the_survivors() {
    let seed = seed();
    let leaving = seed.begin_leave("dc1-n3").expect("decommission");
    let aborted = begin(&leaving, "dc1-n3", &dead).expect("a dead leaving node can be removed");
    // The same layout as a removal of the dead Normal node, version aside.
    let mut removal = seed.begin_remove("dc1-n3").expect("removal");
    removal.version = aborted.version;
    // Its own attempt, begun by the abort's version (review-cancel31 H1).
    if let Some(crate::layout::Movement::Remove { began, .. }) = removal.movements.get_mut("dc1") {
        *began = aborted.version;
    }
    assert_eq!(aborted, removal);
    assert_eq!(removals(&aborted), vec!["dc1-n3"]);
    assert!(!gainers(&aborted, "dc1-n3").is_empty());
    let done = aborted
        .finish_remove("dc1-n3")
        .expect("finished as a removal");
    assert_eq!(
        done.node("dc1-n3").expect("kept").2.state,
        NodeState::Removed
    );
}

#[test]
fn a_normal_node_is_still_removed_and_a_live_one_refused() {
    let seed = seed();
    let joining = dev_join(&seed, "dc1-new", "127.0.0.14");
    assert!(
        begin(&joining, "dc1-new", &|_| true).is_err(),
        "a live joiner is refused"
    );
    let removal = begin(&seed, "dc2-n1", &dead).expect("a dead Normal node");
    assert!(matches!(
        removal.movements.get("dc2"),
        Some(Movement::Remove { node, force: false, .. }) if node == "dc2-n1"
    ));
}

/// Through the layout CAS: the cluster admitted a joiner that died before
/// it ever started (it never answers); removing it frees the datacenter
/// for the next join.
#[tokio::test]
async fn a_dead_joiner_is_removed_through_the_cas_and_the_next_join_is_decided() {
    let seed = seed();
    let engine = || Some(Arc::new(MemoryEngine::new(Limits::default())) as Arc<dyn Engine>);
    let group = crate::view::cas_testing::Group::new(&seed, engine);
    let a = group.node("dc1-n1");
    let joining = dev_join(&seed, "dc1-new", "127.0.0.14");
    a.propose(joining.clone()).await.expect("admitted");
    let aborted = begin(&a.current().layout, "dc1-new", &dead).expect("removable");
    let view = a.propose(aborted).await.expect("decided");
    assert!(view.layout.movements.is_empty());
    let next = dev_join(&view.layout, "dc1-next", "127.0.0.16");
    let view = a.propose(next).await.expect("the next join is decided");
    assert_eq!(
        view.layout.node("dc1-next").expect("in").2.state,
        NodeState::Joining
    );
}

/// Review of stop 26 (lead, Medium): a joiner whose movement already
/// reads from the new owners dies for good. `removenode` first moves reads
/// back to the old owners and keeps the movement (the joiner is still a
/// pending replica, so a read planned on the switch still meets writes of
/// this version); run again (the driver does, once every live member is
/// on that version) it drops the joiner and frees the datacenter. Before:
/// refused (`ReadsSwitched`), the slot taken for good.
#[test]
fn a_dead_joiner_whose_reads_switched_is_dropped_in_two_steps() {
    let seed = seed();
    let joining = dev_join(&seed, "dc1-new", "127.0.0.14");
    a_dead_node_at_the_switch_is_dropped_in_two_steps(&joining, "dc1-new");
}

/// The same for a replacement whose reads switched: the replaced node
/// stays as it was (Normal, dead), to be removed or replaced again.
#[test]
fn a_dead_replacement_whose_reads_switched_is_dropped_in_two_steps() {
    let seed = seed();
    let replacing =
        (seed.begin_replace("dc1-n2", new_node("dc1-r", "127.0.0.18"))).expect("replace");
    let end = a_dead_node_at_the_switch_is_dropped_in_two_steps(&replacing, "dc1-r");
    let (_, _, old) = end.node("dc1-n2").expect("the replaced node");
    assert_eq!(old.state, NodeState::Normal);
    end.begin_remove("dc1-n2")
        .expect("then removed or replaced again");
}

/// Switches the reads of `begun`'s movement of `node`, then aborts it
/// twice through `removenode`'s `begin`; the layout at the end.
fn a_dead_node_at_the_switch_is_dropped_in_two_steps(begun: &Layout, node: &str) -> Layout {
    let switched = begun.next_finish_step(node).expect("step").layout().clone();
    assert!(switched.reads_new("dc1"));
    let back = begin(&switched, node, &dead).expect("a dead node at the switch can be removed");
    assert_eq!(back.version, switched.version + 1);
    assert_eq!(back.movements, switched.movements, "the movement is kept");
    assert!(!back.reads_new("dc1"), "reads are back on the old owners");
    assert_eq!(back.node(node).expect("in").2.state, NodeState::Joining);
    assert!(pending(&back) > 0, "still a pending replica");
    assert!(
        back.next_finish_step(node).is_err(),
        "an abandoned movement does not finish"
    );
    let dropped = begin(&back, node, &dead).expect("the second step");
    assert_eq!(dropped.version, back.version + 1);
    assert!(dropped.movements.is_empty() && !dropped.reads_new("dc1"));
    let (_, _, n) = dropped.node(node).expect("kept by id");
    assert_eq!((n.state, n.tokens.len()), (NodeState::Removed, 0));
    assert_eq!(pending(&dropped), 0);
    dev_join(&dropped, "dc1-next", "127.0.0.16");
    dropped
}

/// The driven abort (`movement::abort`): from the first step (proposed by
/// `removenode` at the switch of reads), the drop is proposed once every
/// live member is on the first, and an abort cut short between the steps
/// (an announce that timed out, a restart of the driver) resumes there.
#[tokio::test]
async fn the_abort_after_the_switch_proposes_each_step_once_every_member_is_on_the_one_before() {
    let h = super::tests_switch::joining();
    let switched = h.current().next_finish_step("new0").expect("step");
    // The first step, as `removenode` proposes it.
    let first = switched.layout().abort("new0").expect("first step");
    *h.layout.lock() = Arc::new(first);
    *h.unannounced.lock() = Some(4);
    let r = drop_abandoned(&h, "new0").await;
    assert!(
        r.is_err(),
        "the announce of the first step timed out: {r:?}"
    );
    let mid = h.current();
    assert_eq!(mid.version, 4, "reads back on the old owners");
    assert_eq!(abandoned(&mid), vec!["new0".to_string()]);
    assert!(mid.next_finish_step("new0").is_err(), "it does not finish");
    // Run again (the driver restarted, or the next pass): the drop.
    *h.unannounced.lock() = None;
    assert_eq!(drop_abandoned(&h, "new0").await.expect("dropped"), 5);
    let want = ["announce v4", "announce v4", "propose v5"];
    assert_eq!(*h.log.lock(), want);
    let end = h.current();
    assert!(end.movements.is_empty() && end.aborting.is_empty() && end.reading_new.is_empty());
    assert_eq!(
        end.node("new0").map(|n| n.2.state),
        Some(NodeState::Removed)
    );
    assert_eq!(drop_abandoned(&h, "new0").await.expect("nothing to do"), 5);
}

/// Who drives: the first Normal member by id that is up, this node
/// counting as up; nobody else.
#[test]
fn the_first_normal_member_up_drives_the_abort() {
    let joining = dev_join(&seed(), "dc1-new", "127.0.0.14");
    assert!(
        drives(&joining, "dc1-n1", &dead),
        "dc1-n1 is first and counts itself up"
    );
    assert!(!drives(&joining, "dc1-n2", &|_| true), "dc1-n1 is up");
    assert!(
        drives(&joining, "dc1-n2", &|id| id != "dc1-n1"),
        "dc1-n1 is down"
    );
    assert!(!drives(&joining, "dc1-new", &dead), "a joiner never drives");
}

/// review-abort27 L5: `drop_abandoned` took any Joining node: on a join
/// nobody abandoned (before or after its switch of reads) it proposed an
/// abort step itself. Only the node of an `aborting` movement (the first
/// step, proposed by `removenode`) is dropped; any other is refused and
/// nothing is proposed.
#[tokio::test]
async fn only_the_node_of_an_abandoned_movement_is_dropped() {
    let h = super::tests_switch::joining();
    let begun = (*h.current()).clone();
    let switched = begun
        .next_finish_step("new0")
        .expect("step")
        .layout()
        .clone();
    for l in [begun, switched] {
        *h.layout.lock() = Arc::new(l.clone());
        let r = drop_abandoned(&h, "new0").await;
        let err = r.expect_err("not abandoned: refused");
        assert!(err.to_string().contains("not abandoned"), "{err}");
        assert_eq!(*h.current(), l, "nothing proposed");
    }
    let log = h.log.lock().clone();
    assert!(log.iter().all(|e| !e.starts_with("propose")), "{log:?}");
}

/// review-elastic28 L6: a Normal or Leaving node was answered `Ok` (and
/// the driver logged "abort complete: node is removed"); it is refused.
#[tokio::test]
async fn a_normal_or_leaving_node_is_not_abandoned() {
    let h = super::tests_switch::joining();
    let l = (*h.current()).clone();
    let normal = (l.nodes())
        .find(|(_, _, n)| n.state == NodeState::Normal)
        .map(|(_, _, n)| n.id.clone())
        .expect("a Normal node");
    let r = drop_abandoned(&h, &normal).await;
    assert!(
        matches!(&r, Err(super::switch::FinishError::NotAbandoned(_))),
        "{normal}: {r:?}"
    );
    let leaving = seed().begin_leave("dc1-n3").expect("decommission");
    *h.layout.lock() = Arc::new(leaving.clone());
    let r = drop_abandoned(&h, "dc1-n3").await;
    assert!(
        matches!(&r, Err(super::switch::FinishError::NotAbandoned(_))),
        "{r:?}"
    );
    assert_eq!(*h.current(), leaving, "nothing proposed");
}

/// review-elastic28 L2: the abort's second step (it only takes `aborting`
/// out; the first step passed the gate) is not held by a member on an
/// older build, so the dead pending replica stops raising blockFor.
#[tokio::test]
async fn the_drop_of_an_abandoned_node_does_not_wait_for_the_upgrade_gate() {
    let h = super::tests_switch::joining();
    let switched = h.current().next_finish_step("new0").expect("step");
    *h.layout.lock() = Arc::new(switched.layout().abort("new0").expect("first step"));
    *h.old.lock() = vec!["n1 (an older build)".into()];
    assert_eq!(drop_abandoned(&h, "new0").await.expect("dropped"), 5);
    let end = h.current();
    assert_eq!(
        end.node("new0").map(|n| n.2.state),
        Some(NodeState::Removed)
    );
}
