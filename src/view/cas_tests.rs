//! Tests of layout changes as a compare-and-set on the cluster, on a group
//! of in-process nodes (`cas_testing.rs`): concurrent proposals of one
//! version, a minority that cannot decide, durable acceptor state.

use std::sync::Arc;

use super::cas_testing::Group;
use super::*;
use crate::engine::memory::MemoryEngine;
use crate::engine::{Engine, Limits};
use crate::layout::consensus::{Ballot, Msg, Reply};
use crate::topology::Topology;

fn engine() -> Option<Arc<dyn Engine>> {
    Some(Arc::new(MemoryEngine::new(Limits::default())))
}

fn with_keyspace(l: &Layout, name: &str) -> Layout {
    let mut next = l.clone();
    next.version += 1;
    let spec = next.keyspaces.values().next().expect("dev has one").clone();
    next.keyspaces.insert(name.to_string(), spec);
    next
}

/// Issue 11 (W1): two nodes propose v2 at the same moment; before the CAS
/// both succeeded locally and the digest merge dropped one.
#[tokio::test]
async fn two_concurrent_proposals_of_one_version_cannot_both_succeed() {
    let seed = Layout::seed(&Topology::dev());
    let group = Group::new(&seed, engine);
    let (n1, n2) = (group.node("dc1-n1"), group.node("dc2-n1"));
    let (a, b) = (with_keyspace(&seed, "a"), with_keyspace(&seed, "b"));
    let (ra, rb) = tokio::join!(n1.propose(a.clone()), n2.propose(b.clone()));
    let (won, refused) = match (ra, rb) {
        (Ok(_), Err(e)) => (a, e),
        (Err(e), Ok(_)) => (b, e),
        other => panic!("exactly one must succeed, got {other:?}"),
    };
    match refused {
        ProposeError::Concurrent { version, now } => {
            assert_eq!(version, 2);
            assert!(now.contains("no movement"), "{now}");
        }
        other => panic!("expected the concurrent refusal, got {other}"),
    }
    for (id, layout) in group.layouts() {
        assert_eq!(*layout, won, "node {id} holds the chosen v2");
    }
}

/// Two proposals made on the same node at once (an operator's keyspace
/// beside the node's own movement step) must not share a ballot: with
/// equal ballots both proposers counted the same acceptances and both
/// reported their different v2 chosen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_proposals_on_one_node_at_once_cannot_both_succeed() {
    let seed = Layout::seed(&Topology::dev());
    let group = Group::new(&seed, engine);
    let n1 = group.node("dc1-n1");
    let (a, b) = (with_keyspace(&seed, "a"), with_keyspace(&seed, "b"));
    // Both pass phase 1 before any accept reaches another node.
    group.hold_accepts();
    let pa = tokio::spawn({
        let (n1, a) = (n1.clone(), a.clone());
        async move { n1.propose(a).await }
    });
    let pb = tokio::spawn({
        let (n1, b) = (n1.clone(), b.clone());
        async move { n1.propose(b).await }
    });
    let both_sent = tokio::time::timeout(std::time::Duration::from_secs(30), group.held(10));
    both_sent
        .await
        .expect("two accept phases reached the other 5 nodes");
    group.release();
    let (ra, rb) = (pa.await.expect("a task"), pb.await.expect("a task"));
    let won = match (ra, rb) {
        (Ok(_), Err(ProposeError::Concurrent { .. })) => a,
        (Err(ProposeError::Concurrent { .. }), Ok(_)) => b,
        (ra, rb) => panic!(
            "exactly one must succeed, got {:?} and {:?}",
            ra.map(|v| v.version()),
            rb.map(|v| v.version())
        ),
    };
    for (id, layout) in group.layouts() {
        assert_eq!(*layout, won, "node {id} holds the chosen v2");
    }
}

/// A movement beside a keyspace creation, the loser's caller re-reads:
/// one change per version, and both end up applied in turn.
#[tokio::test]
async fn the_refused_caller_re_reads_and_applies_its_change_next() {
    let seed = Layout::seed(&Topology::dev());
    let group = Group::new(&seed, engine);
    let (n1, n2) = (group.node("dc1-n1"), group.node("dc1-n2"));
    let addr = "10.99.0.9:7070".parse().expect("an address");
    let joiner = crate::layout::NewNode {
        id: "dc1-n4".into(),
        client_address: addr,
        peer_address: addr,
        admin_address: addr,
    };
    let join = seed
        .begin_join(joiner, "dc1", "r1", &[11, 12])
        .expect("a join");
    let (r1, r2) = tokio::join!(
        http::create_keyspace(&n1, "orders", "dc1:2"),
        n2.propose(join)
    );
    let join_won = r2.is_ok();
    let v = r1.expect("the keyspace is created, on a retry if it lost");
    assert_eq!(v, if join_won { 3 } else { 2 });
    let now = n1.current().layout.clone();
    assert!(now.keyspaces.contains_key("orders"));
    assert_eq!(now.movements.is_empty(), !join_won);
    for (id, layout) in group.layouts() {
        assert_eq!(layout, now, "node {id}");
    }
}

#[tokio::test]
async fn a_minority_cannot_change_the_layout_and_says_so() {
    let seed = Layout::seed(&Topology::dev());
    let group = Group::new(&seed, engine);
    for id in ["dc1-n2", "dc1-n3", "dc2-n1"] {
        group.cut(id);
    }
    let n1 = group.node("dc1-n1");
    let err = n1.propose(with_keyspace(&seed, "a")).await.unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(
            err,
            ProposeError::Cas(cas::CasError::NoMajority {
                members: 6,
                needed: 4,
                answered: 3,
                maybe_applied: false,
                ..
            })
        ),
        "{text}"
    );
    assert!(
        text.contains("needs a majority of 6 members (4); 3 answered"),
        "{text}"
    );
    assert!(text.contains("it was not applied"), "{text}");
    for (id, layout) in group.layouts() {
        assert_eq!(layout.version, 1, "node {id} installed nothing");
    }
}

#[test]
fn an_acceptor_keeps_its_promise_across_a_restart() {
    let seed = Layout::seed(&Topology::dev());
    let e = engine().expect("an engine");
    let ballot = |round: u64| Ballot {
        round,
        node: "dc1-n2".into(),
    };
    let prepare = |round| Msg::Prepare {
        slot: 2,
        ballot: ballot(round),
        base: seed.digest(),
    };
    let before = Cluster::new(seed.clone(), "dc1-n1", Some(e.clone())).expect("view");
    let promised = before.accept(&prepare(5)).expect("promise");
    assert!(matches!(promised, Reply::Promise { accepted: None, .. }));
    drop(before);
    let after = Cluster::new(seed.clone(), "dc1-n1", Some(e)).expect("view");
    let lower = after.accept(&prepare(4)).expect("an answer");
    assert_eq!(
        lower,
        Reply::Rejected {
            ballot: ballot(4),
            promised: ballot(5)
        }
    );
    // Once v2 is installed, slot 2 is decided: the answer is that layout.
    let v2 = with_keyspace(&seed, "a");
    after.install(v2.clone()).expect("install");
    assert_eq!(
        after.accept(&prepare(9)).expect("an answer"),
        Reply::Decided { value: v2 }
    );
}
