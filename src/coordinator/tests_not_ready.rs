//! A replica that gossiped it refuses writes (its storage latched a failed
//! write or sync: review-tidy34 L4) is counted out of a write's live
//! replicas, so a level that needs it is UNAVAILABLE up front ("not
//! applied"), and a forward tries it last; reads still count it.

use super::consistency::{ConsistencyLevel, OpKind};
use super::tests_pending::{coordinator_as, put_request};
use super::*;
use crate::layout::Layout;
use crate::topology::Topology;

/// Every node up; `0` refuses writes.
struct NotReady(String);
impl Liveness for NotReady {
    fn is_up(&self, _: &str) -> bool {
        true
    }
    fn is_ready(&self, id: &str) -> bool {
        id != self.0
    }
}

/// ALL (and a level dc1 cannot meet without dc1-n2) fails before anything
/// is sent, "not applied"; LOCAL_QUORUM goes on with the two others; a
/// read at ALL still counts dc1-n2. Fails before: dc1-n2 counted alive,
/// so ALL planned, fanned out and at best timed out "maybe".
#[test]
fn a_replica_not_ready_is_counted_out_of_writes_not_reads() {
    let seed = Layout::seed(&Topology::dev());
    let c = coordinator_as(seed, "dc1-n1", Arc::new(NotReady("dc1-n2".into())));
    let view = c.cluster().current();
    let plan = |level, op| c.plan(&view, "default", b"k", level, None, op);
    let all = plan(ConsistencyLevel::All, OpKind::Write).err();
    let all = all.expect("dc1-n2 is counted out of ALL");
    assert!(matches!(all, GeokvError::Unavailable { .. }), "{all:?}");
    assert!(all.nothing_applied(), "{all}");
    let status = tonic::Status::from(all);
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    let applied = status.metadata().get(crate::proto::APPLIED_METADATA);
    assert_eq!(applied.and_then(|v| v.to_str().ok()), Some("no"));
    let quorum = plan(ConsistencyLevel::LocalQuorum, OpKind::Write);
    let quorum = quorum.expect("two of dc1's three take it");
    assert_eq!((quorum.alive["dc1"], quorum.alive["dc2"]), (2, 3));
    let read = plan(ConsistencyLevel::All, OpKind::Read);
    let read = read.expect("reads still count it");
    assert_eq!(read.alive["dc1"], 3, "it serves reads");
}

/// A forwarder (dc1-new, not a replica of the key) tries the replica that
/// refuses writes last, not first. Fails before: the order was by
/// proximity only.
#[test]
fn a_forward_tries_a_replica_not_ready_last() {
    let seed = Layout::seed(&Topology::dev());
    let joined = crate::layout::testing::dev_join(&seed, "dc1-new", "127.0.0.14");
    let four = joined.finish_join("dc1-new").expect("joined");
    let up = coordinator_as(four.clone(), "dc1-new", Arc::new(AlwaysUp));
    let view = up.cluster().current();
    let me = view.me_idx();
    let key = (0..400u32)
        .map(|k| k.to_be_bytes())
        .find(|k| !view.ring.replicas("default", k).unwrap().contains(me))
        .expect("a key dc1-new does not replicate");
    let set = view.ring.replicas("default", &key).unwrap();
    for level in [ConsistencyLevel::Quorum, ConsistencyLevel::LocalQuorum] {
        let req = put_request("default", &key, level);
        let before = up.forward_candidates(&view, &req, set);
        assert_eq!(before.len(), if level.is_local() { 3 } else { 6 });
        let nearest = view.ring.node(before[0]).id.clone();
        let c = coordinator_as(four.clone(), "dc1-new", Arc::new(NotReady(nearest.clone())));
        let after = c.forward_candidates(&c.cluster().current(), &req, set);
        let mut want = before[1..].to_vec();
        want.push(before[0]);
        assert_eq!(after, want, "{level:?}: {nearest} last");
    }
}
