//! `geokv removenode ID` of a node that died for good mid-movement (issue
//! 11, audit W3): a dead joiner or replacement is dropped with its
//! movement (no pending replica left), a dead leaving node's removal goes
//! on from the survivors as for a dead Normal node, and the datacenter
//! accepts the next movement.

use std::sync::Arc;

use super::remove::{begin, gainers, removing};
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
    assert_eq!(aborted, removal);
    assert_eq!(removing(&aborted).as_deref(), Some("dc1-n3"));
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
        Some(Movement::Remove { node, force: false }) if node == "dc2-n1"
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

/// Review of stop 26, H1/M1: a joiner whose movement already reads from
/// the new owners cannot be dropped in one step (reads would go back to
/// the old owners in one version, and `reading_new` would outlive the
/// movement into the next one); the abort is refused and says why.
#[test]
fn a_dead_joiner_whose_reads_switched_is_not_dropped_in_one_step() {
    let seed = seed();
    let joining = dev_join(&seed, "dc1-new", "127.0.0.14");
    let switched = joining
        .next_finish_step("dc1-new")
        .expect("step")
        .layout()
        .clone();
    let refused = begin(&switched, "dc1-new", &dead).expect_err("refused after the switch");
    assert!(refused.to_string().contains("reads"), "{refused}");
    assert!(switched.abort("dc1-new").is_err());
}
