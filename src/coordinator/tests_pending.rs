//! Writes during a movement go to the pending replicas too and need one more
//! acknowledgement each (blockFor + pending); reads use the owners only.

use super::consistency::{ConsistencyLevel, OpKind, Requirement};
use super::*;
use crate::engine::memory::MemoryEngine;
use crate::engine::{Engine, Limits};
use crate::hints::HintsConfig;
use crate::layout::Layout;
use crate::topology::Topology;
use crate::transport::faults::Faults;

/// The dev layout while `dc1-new` joins dc1 (rack r1).
fn joining() -> Layout {
    let seed = Layout::seed(&Topology::dev());
    crate::layout::testing::dev_join(&seed, "dc1-new", "127.0.0.14")
}

/// dc1-n1's coordinator while `dc1-new` joins dc1 (rack r1).
fn coordinator_during_join() -> Coordinator {
    coordinator_on(joining())
}

/// dc1-n1's coordinator on `layout`.
pub(super) fn coordinator_on(layout: Layout) -> Coordinator {
    coordinator_as(layout, "dc1-n1", Arc::new(AlwaysUp))
}

/// `me`'s coordinator on `layout`, which sees its peers through `liveness`.
pub(super) fn coordinator_as(layout: Layout, me: &str, liveness: Arc<dyn Liveness>) -> Coordinator {
    let engine: Arc<dyn Engine> = Arc::new(MemoryEngine::new(Limits::default()));
    coordinator_in(
        Cluster::new(layout, me, None).expect("view"),
        engine,
        liveness,
    )
}

/// The coordinator of `cluster`'s node, storing in `engine`.
pub(crate) fn coordinator_in(
    cluster: Cluster,
    engine: Arc<dyn Engine>,
    liveness: Arc<dyn Liveness>,
) -> Coordinator {
    let me = cluster.current().me().expect("member").clone();
    let hints = Hints::open(
        engine.clone(),
        cluster.clone(),
        me.clone(),
        HintsConfig::default(),
    );
    let replica = Arc::new(Replica::new(engine, &me.id, 64));
    Coordinator::new(
        cluster,
        me.clone(),
        Arc::new(Peers::new(
            me,
            Arc::new(Faults::new(false)),
            &crate::transport::tls::Tls::insecure(),
        )),
        replica,
        liveness,
        Arc::new(hints.expect("hints")),
        CoordinatorConfig::default(),
    )
}

#[test]
fn a_write_to_a_moving_range_goes_to_the_pending_replica_and_needs_its_ack() {
    let c = coordinator_during_join();
    let view = c.cluster().current();
    let joiner = view.node("dc1-new").expect("a member while joining").idx;
    let (mut moving, mut still) = (0, 0);
    for k in 0..400u32 {
        let key = k.to_be_bytes();
        let level = ConsistencyLevel::LocalQuorum;
        let w = c
            .plan(&view, "default", &key, level, None, OpKind::Write)
            .expect("write plan");
        let r = c
            .plan(&view, "default", &key, level, None, OpKind::Read)
            .expect("read plan");
        let local = |count| Requirement::Local {
            dc: "dc1".into(),
            count,
        };
        assert!(r.pending.is_empty(), "reads use the owners only");
        assert_eq!(r.requirement, local(2));
        assert!(
            !r.replicas.contains(joiner),
            "a joining node owns nothing yet"
        );
        if w.pending.iter().any(|d| d.nodes.contains(&joiner)) {
            moving += 1;
            assert_eq!(w.requirement, local(3), "LOCAL_QUORUM of 3 + 1 pending");
            let targets = w.targets_in("dc1");
            assert_eq!(targets.len(), 4);
            assert!(targets.contains(&joiner));
            assert_eq!(w.alive["dc1"], 4);
        } else {
            still += 1;
            assert_eq!(w.requirement, local(2));
            assert_eq!(w.targets_in("dc1").len(), 3);
        }
    }
    assert!(moving > 0 && still > 0, "{moving} moving, {still} not");
}

/// While dc1-n2 leaves (dc1 has four nodes after dc1-new joined), a write
/// to a range it loses goes to the node gaining it too and needs its ack;
/// the leaver is still an owner (reads use it).
#[test]
fn a_write_to_a_range_a_leaving_node_loses_goes_to_the_gainer_and_needs_its_ack() {
    let four = joining().finish_join("dc1-new").expect("joined");
    let leaving = four.begin_leave("dc1-n2").expect("leave");
    let c = coordinator_on(leaving);
    let view = c.cluster().current();
    let leaver = view.node("dc1-n2").expect("a member while leaving").idx;
    let level = ConsistencyLevel::LocalQuorum;
    let local = |count| Requirement::Local {
        dc: "dc1".into(),
        count,
    };
    let (mut moving, mut still) = (0, 0);
    for k in 0..400u32 {
        let key = k.to_be_bytes();
        let w = c
            .plan(&view, "default", &key, level, None, OpKind::Write)
            .expect("write plan");
        let r = c
            .plan(&view, "default", &key, level, None, OpKind::Read)
            .expect("read plan");
        assert!(r.pending.is_empty(), "reads use the owners only");
        let owners = view.ring.replicas("default", &key).expect("replicas");
        if owners.contains(leaver) {
            moving += 1;
            let gainer = w
                .pending
                .iter()
                .flat_map(|d| d.nodes.iter())
                .copied()
                .collect::<Vec<_>>();
            assert_eq!(gainer.len(), 1, "one node gains what the leaver loses");
            assert!(!owners.contains(gainer[0]));
            assert_eq!(w.requirement, local(3), "LOCAL_QUORUM of 3 + 1 pending");
            let targets = w.targets_in("dc1");
            assert_eq!(targets.len(), 4);
            assert!(targets.contains(&leaver) && targets.contains(&gainer[0]));
            assert!(r.replicas.contains(leaver), "the leaver still serves reads");
        } else {
            still += 1;
            assert!(w.pending.is_empty());
            assert_eq!(w.requirement, local(2));
        }
    }
    // dc1-new has a quarter of the others' tokens: the leaver replicates
    // nearly every key (a key it does not replicate has nothing pending).
    assert!(moving > 300, "{moving} moving, {still} not");
}

/// A put of `key` in `keyspace` at `level`, with 500 ms to go.
pub(super) fn put_request(keyspace: &str, key: &[u8], level: ConsistencyLevel) -> WriteRequest {
    WriteRequest {
        mutation: crate::mutation::Mutation {
            keyspace: keyspace.into(),
            key: Bytes::copy_from_slice(key),
            value: Some(Bytes::from_static(b"v")),
            context: crate::version::CausalContext::new(),
        },
        level,
        explicit: None,
        timeout: std::time::Duration::from_millis(500),
    }
}

/// Installs `left`, in which `c`'s node has left, and seals its hint store
/// as its drain does once everything was handed over.
pub(super) async fn leave_and_seal(c: &Coordinator, left: Layout) {
    c.cluster().install(left).expect("installed");
    let records = &c.hints.store.records;
    records.none_left(records.begin());
    assert_eq!(c.hints.seal_if_handed_over().await, 0, "sealed");
}
