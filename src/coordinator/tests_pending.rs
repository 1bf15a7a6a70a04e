//! Writes during a movement go to the pending replicas too and need one more
//! acknowledgement each (blockFor + pending); reads use the owners only.

use super::consistency::{ConsistencyLevel, OpKind, Requirement};
use super::*;
use crate::engine::memory::MemoryEngine;
use crate::engine::{Engine, Limits};
use crate::hints::HintsConfig;
use crate::layout::{Layout, NewNode};
use crate::topology::Topology;
use crate::transport::faults::Faults;

/// dc1-n1's coordinator while `dc1-new` joins dc1 (rack r1).
fn coordinator_during_join() -> Coordinator {
    let seed = Layout::seed(&Topology::dev());
    let tokens = crate::ring::allocate_tokens(&seed, "dc1", "r1", 64, 3).expect("tokens");
    let node = NewNode {
        id: "dc1-new".into(),
        client_address: "127.0.0.14:7070".parse().expect("addr"),
        peer_address: "127.0.0.14:7071".parse().expect("addr"),
        admin_address: "127.0.0.14:7072".parse().expect("addr"),
    };
    let joining = seed.begin_join(node, "dc1", "r1", &tokens).expect("join");
    let cluster = Cluster::new(joining, "dc1-n1", None).expect("view");
    let me = cluster.current().me().expect("member").clone();
    let engine: Arc<dyn Engine> = Arc::new(MemoryEngine::new(Limits::default()));
    let hints = Hints::open(
        engine.clone(),
        cluster.clone(),
        me.clone(),
        HintsConfig::default(),
    );
    Coordinator::new(
        cluster,
        me.clone(),
        Arc::new(Peers::new(
            me,
            Arc::new(Faults::new(false)),
            &crate::transport::tls::Tls::insecure(),
        )),
        Arc::new(Replica::new(engine, "dc1-n1", 64)),
        Arc::new(AlwaysUp),
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
