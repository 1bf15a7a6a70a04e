//! Tests of who decides a layout change (issue 11, review M2): the
//! acceptors of slot v+1 leave out the node a change declares dead and
//! joiners that never started, so a small cluster can remove its dead
//! node; a whole datacenter down still blocks ordinary changes.

use std::sync::Arc;

use super::cas_testing::Group;
use super::*;
use crate::engine::memory::MemoryEngine;
use crate::engine::{Engine, Limits};
use crate::layout::NodeState;
use crate::topology::Topology;

fn engine() -> Option<Arc<dyn Engine>> {
    Some(Arc::new(MemoryEngine::new(Limits::default())))
}

/// The dev seed cut down to dc1-n1 and dc1-n2 (rf 1 in dc1).
fn two_nodes() -> Layout {
    let mut l = Layout::seed(&Topology::dev());
    l.datacenters.retain(|d| d.name == "dc1");
    l.datacenters[0].racks.truncate(2);
    for spec in l.keyspaces.values_mut() {
        spec.replication = [("dc1".to_string(), 1)].into_iter().collect();
    }
    l
}

fn with_keyspace(l: &Layout, name: &str) -> Layout {
    let mut next = l.clone();
    next.version += 1;
    let spec = next
        .keyspaces
        .values()
        .next()
        .expect("one keyspace")
        .clone();
    next.keyspaces.insert(name.to_string(), spec);
    next
}

/// A 2-node cluster whose second node died: its survivor (the first by
/// id, the tie-breaker) removes it. Before, both members had to accept.
#[tokio::test]
async fn a_two_node_cluster_removes_its_dead_node() {
    let seed = two_nodes();
    let group = Group::new(&seed, engine);
    group.cut("dc1-n2");
    let a = group.node("dc1-n1");
    let begun = seed.begin_remove("dc1-n2").expect("a removal");
    a.propose(begun.clone())
        .await
        .expect("the survivor begins it");
    let done = begun.finish_remove("dc1-n2").expect("its end");
    let view = a.propose(done).await.expect("and finishes it");
    let (_, _, n) = view.layout.node("dc1-n2").expect("kept by id");
    assert_eq!(n.state, NodeState::Removed);
    // Then the survivor alone decides every change.
    let ks = with_keyspace(&view.layout, "later");
    a.propose(ks).await.expect("a lone member decides");
}

/// The other way round, the survivor is not the tie-breaker: with two
/// members either side of a partition could be the one "dead", so the
/// change is refused rather than split the cluster, and says it was not
/// applied.
#[tokio::test]
async fn a_two_node_cluster_cannot_remove_the_tie_breaker() {
    let seed = two_nodes();
    let group = Group::new(&seed, engine);
    group.cut("dc1-n1");
    let b = group.node("dc1-n2");
    let begun = seed.begin_remove("dc1-n1").expect("a removal");
    match b.propose(begun).await {
        Err(ProposeError::Cas(e)) => assert!(!e.maybe_applied(), "{e}"),
        other => panic!("expected no majority, got {other:?}"),
    }
}

/// A joiner that was admitted but never started does not decide the
/// next change: a single node plus its dead joiner still decides alone.
#[tokio::test]
async fn a_joiner_that_never_started_does_not_block_changes() {
    let mut seed = two_nodes();
    seed.datacenters[0].racks.truncate(1);
    let group = Group::new(&seed, engine);
    let a = group.node("dc1-n1");
    let joined = crate::layout::testing::new_node("dc1-j", "127.0.0.19");
    let tokens = crate::ring::allocate_tokens(&seed, "dc1", "r2", 16, 1).expect("tokens");
    let next = seed.begin_join(joined, "dc1", "r2", &tokens).expect("join");
    let view = a.propose(next).await.expect("the lone member admits it");
    // dc1-j is not in the group: it never answers.
    let ks = with_keyspace(&view.layout, "later");
    a.propose(ks).await.expect("decided without the joiner");
}

/// A whole datacenter down (dev: 3 + 3): an ordinary change needs 4 of 6
/// members and is refused as not applied, as documented; removing one of
/// the dead datacenter's nodes needs 3 of the other 5 with dc1-n1, the
/// tie-breaker, among them, so the live datacenter can shrink the dead one
/// (here no keyspace replicates to dc2, so a node may leave it).
#[tokio::test]
async fn a_whole_datacenter_down_blocks_changes_but_not_removals() {
    let mut seed = Layout::seed(&Topology::dev());
    for spec in seed.keyspaces.values_mut() {
        spec.replication.remove("dc2");
    }
    let group = Group::new(&seed, engine);
    for id in ["dc2-n1", "dc2-n2", "dc2-n3"] {
        group.cut(id);
    }
    let a = group.node("dc1-n1");
    match a.propose(with_keyspace(&seed, "blocked")).await {
        Err(ProposeError::Cas(e)) => assert!(!e.maybe_applied(), "{e}"),
        other => panic!("expected no majority, got {other:?}"),
    }
    let begun = seed.begin_remove("dc2-n1").expect("a removal");
    a.propose(begun)
        .await
        .expect("dc1 begins removing a dc2 node");
}
