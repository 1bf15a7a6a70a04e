//! Tests of the receiving end: the need count and what a node does with a
//! hint addressed to it.

use super::for_node::{node_hint, Mine, NodeHint};
use super::need;

/// A node hint reaches a node that has left (the sender's view is
/// older): it is kept by the sender, not acknowledged and lost when the
/// leaver exits; one for another node is refused; a replica applies it.
#[test]
fn a_node_that_has_left_leaves_its_hints_with_the_sender() {
    let gone = Mine::NotMember;
    assert_eq!(node_hint("a", "a", gone), NodeHint::Keep(gone));
    assert_eq!(node_hint("a", "a", Mine::Replica), NodeHint::Apply);
    assert_eq!(node_hint("b", "a", Mine::Replica), NodeHint::Refuse);
    assert_eq!(node_hint("b", "a", gone), NodeHint::Refuse);
}

/// A member that no longer replicates the key in its own view (it lost
/// the range to a joiner and may have cleaned it up) leaves the hint
/// with the sender instead of applying it.
#[test]
fn a_member_that_does_not_replicate_the_key_leaves_the_hint_with_the_sender() {
    let elsewhere = Mine::Elsewhere;
    assert_eq!(node_hint("a", "a", elsewhere), NodeHint::Keep(elsewhere));
    assert_eq!(node_hint("b", "a", elsewhere), NodeHint::Refuse);
}

/// M3: a receiver on a newer view than the coordinator's, with a
/// pending replica of the key the coordinator did not count, needs one
/// acknowledgement more; with the same count, or none sent (a fallback,
/// an older peer), the coordinator's need stands; backlog entries need
/// every replica; never more than the targets.
#[test]
fn a_receiver_with_more_pending_replicas_than_the_coordinator_counted_needs_more() {
    assert_eq!(need(2, Some(0), 1, 4), 3);
    assert_eq!(need(2, Some(1), 1, 4), 2);
    assert_eq!(need(2, None, 1, 4), 2);
    assert_eq!(need(2, Some(1), 0, 3), 2, "a movement that finished here");
    assert_eq!(need(0, Some(0), 1, 4), 4);
    assert_eq!(need(3, Some(0), 2, 4), 4);
}

mod apply {
    use super::super::for_node::node_hint_apply;
    use crate::engine::{Engine, Limits, MemoryEngine};
    use crate::layout::Layout;
    use crate::proto::v1::internode::StreamEntry;
    use crate::replica::Replica;
    use crate::topology::Topology;
    use crate::version::{ActorId, CausalContext, SiblingSet};
    use crate::view::Cluster;
    use std::sync::Arc;

    fn topo() -> String {
        crate::topology::testing::yaml(&[("dc1", &["a", "b", "c", "d"])], &[("dc1", 3)])
    }

    fn entry(key: &[u8], set: &SiblingSet) -> StreamEntry {
        let mut record = Vec::new();
        set.encode(&mut record);
        StreamEntry {
            seq: 7,
            keyspace: "ks".into(),
            key: key.to_vec(),
            record,
            target_node: "a".into(),
            ..Default::default()
        }
    }

    /// Node `a` receives hints addressed to it: one for a key it
    /// replicates is applied and acknowledged; one for a key its view
    /// places elsewhere (it may have cleaned the range up) is neither
    /// applied nor refused, so the sender keeps and redirects it.
    #[tokio::test]
    async fn a_hint_for_a_key_the_receiver_does_not_replicate_is_not_applied() {
        let layout = Layout::seed(&Topology::parse("t.yaml", &topo()).unwrap());
        let engine: Arc<dyn Engine> = Arc::new(MemoryEngine::new(Limits::default()));
        let cluster = Cluster::new(layout, "a", None).unwrap();
        let replica = Arc::new(Replica::new(engine.clone(), "a", 64));
        let view = cluster.current();
        let a = view.me_idx();
        let owned = |k: &Vec<u8>| view.ring.replicas("ks", k).unwrap().contains(a);
        let keys: Vec<Vec<u8>> = (0..200).map(|i| format!("k{i}").into_bytes()).collect();
        let mine = keys.iter().find(|k| owned(k)).unwrap();
        let other = keys.iter().find(|k| !owned(k)).unwrap();
        let mut set = SiblingSet::new();
        set.update(ActorId(1), &CausalContext::new(), Some("v".into()), 1, 8)
            .unwrap();

        let ack = node_hint_apply(&cluster, &replica, "a", entry(other, &set), set.clone()).await;
        assert!(!ack.durable && !ack.refused, "{ack:?}");
        assert_eq!(
            ack.elsewhere_layout,
            Some(view.version()),
            "the sender learns which view placed the key elsewhere"
        );
        assert_eq!(ack.seq, 7);
        assert_eq!(
            engine.get_versions("ks", other).unwrap(),
            None,
            "not applied"
        );

        let ack = node_hint_apply(&cluster, &replica, "a", entry(mine, &set), set.clone()).await;
        assert!(ack.durable && !ack.refused && ack.replicas == 1, "{ack:?}");
        assert_eq!(ack.elsewhere_layout, None);
        assert_eq!(engine.get_versions("ks", mine).unwrap(), Some(set));
    }

    /// Issue 10 (review of the shutdown, Medium): a node hint arriving on a
    /// connection still open after the node closed its replica (after the
    /// final sync) is not applied and not refused: the sender keeps it.
    #[tokio::test]
    async fn a_hint_received_after_the_replica_closed_is_kept_by_the_sender() {
        let layout = Layout::seed(&Topology::parse("t.yaml", &topo()).unwrap());
        let engine: Arc<dyn Engine> = Arc::new(MemoryEngine::new(Limits::default()));
        let cluster = Cluster::new(layout, "a", None).unwrap();
        let replica = Arc::new(Replica::new(engine.clone(), "a", 64));
        let view = cluster.current();
        let a = view.me_idx();
        let mine = (0..200)
            .map(|i| format!("k{i}").into_bytes())
            .find(|k| view.ring.replicas("ks", k).unwrap().contains(a))
            .unwrap();
        let mut set = SiblingSet::new();
        set.update(ActorId(1), &CausalContext::new(), Some("v".into()), 1, 8)
            .unwrap();
        replica
            .close(crate::replica::gate::CLOSE_WITHIN)
            .expect("closed");
        let ack = node_hint_apply(&cluster, &replica, "a", entry(&mine, &set), set.clone()).await;
        assert!(!ack.durable && !ack.refused && ack.replicas == 0, "{ack:?}");
        assert_eq!(ack.elsewhere_layout, None);
        assert_eq!(
            engine.get_versions("ks", &mine).unwrap(),
            None,
            "not applied"
        );
    }
}
