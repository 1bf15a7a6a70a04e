//! `fan.rs`'s not-ready branch (review-write35 L4): a datacenter-stream
//! entry's replica that is up but gossiped it refuses writes (its storage
//! latched a failed sync) is hinted, is not sent the write, and does not
//! count as a replica that applied it.

use crate::engine::{Engine, Limits, MemoryEngine};
use crate::hints::queue::Dest;
use crate::hints::receive::Receiver;
use crate::hints::Hints;
use crate::layout::Layout;
use crate::membership::Liveness;
use crate::proto::v1::internode::{StreamBatch, StreamEntry};
use crate::replica::Replica;
use crate::topology::{generate, Topology};
use crate::transport::faults::Faults;
use crate::transport::testing::{serve, Recorder};
use crate::transport::tls::Tls;
use crate::transport::Peers;
use crate::version::{ActorId, CausalContext, SiblingSet};
use crate::view::Cluster;
use std::sync::Arc;

/// `b` is up but refuses writes; `c` is down.
struct BNotReadyCDown;

impl Liveness for BNotReadyCDown {
    fn is_up(&self, id: &str) -> bool {
        id != "c"
    }
    fn is_ready(&self, id: &str) -> bool {
        id != "b"
    }
}

/// dc1 = a, b, c with `ks` at rf 3; `b`'s peer port is `b_port`.
fn layout(b_port: u16) -> Layout {
    let ip = std::net::IpAddr::from([127, 0, 0, 1]);
    let nodes = vec![
        generate::node("a", ip, [1, 2, 3]),
        generate::node("b", ip, [4, b_port, 6]),
        generate::node("c", ip, [7, 8, 9]),
    ];
    let dcs = vec![("dc1".to_string(), nodes)];
    let yaml = generate::one_rack_per_node("t", 16, dcs, &[("ks", &[("dc1", 3)])]).to_yaml();
    Layout::seed(&Topology::parse("t.yaml", &yaml).expect("parses"))
}

/// A backlog entry (every replica answers before the acknowledgement):
/// applied here only, `b` and `c` hinted, nothing reaches `b`'s port.
/// Fails before (by reading, with the branch gone): `b` is up, so it is
/// sent the write, which its port (a recording peer) applies and counts.
#[tokio::test]
async fn a_stream_entry_hints_a_not_ready_replica_and_does_not_count_it() {
    let b = Recorder::default();
    let b_at = serve("b", b.clone(), None).await;
    let cluster = Cluster::new(layout(b_at.peer_address.port()), "a", None).expect("a view");
    let me = cluster.current().me().expect("a member").clone();
    let engine: Arc<dyn Engine> = Arc::new(MemoryEngine::new(Limits::default()));
    let hints = Hints::open(
        engine.clone(),
        cluster.clone(),
        me.clone(),
        Default::default(),
    );
    let hints = Arc::new(hints.expect("open"));
    let tls = Tls::insecure();
    let receiver = Receiver {
        hints: hints.clone(),
        // This node's transport: `a` is here, the others are peers.
        peers: Arc::new(Peers::new(me.clone(), Arc::new(Faults::new(false)), &tls)),
        cluster,
        replica: Arc::new(Replica::new(engine.clone(), "a", 64)),
        liveness: Arc::new(BNotReadyCDown),
        me,
        permits: Arc::new(tokio::sync::Semaphore::new(4)),
    };
    let mut set = SiblingSet::new();
    set.update(ActorId(1), &CausalContext::new(), Some("v".into()), 1, 8)
        .unwrap();
    let mut record = Vec::new();
    set.encode(&mut record);
    let entry = StreamEntry {
        seq: 7,
        keyspace: "ks".into(),
        key: b"k".to_vec(),
        record,
        ..Default::default()
    };
    let batch = StreamBatch {
        source_node: "x".into(),
        source_dc: "dc2".into(),
        entries: vec![entry],
        batch_id: 1,
        ..Default::default()
    };
    let ack = receiver.apply(batch).await;
    let ack = &ack.entries[0];
    assert_eq!(ack.replicas, 1, "only this node applied it: {ack:?}");
    assert!(ack.durable, "the others are hinted: {ack:?}");
    let sent = b.batches.lock().len() + b.singles.lock().len();
    assert_eq!(sent, 0, "nothing was sent to b");
    assert_eq!(hints.backlog_entries(&Dest::Node("b".into())), 1);
    assert_eq!(hints.backlog_entries(&Dest::Node("c".into())), 1);
    assert_eq!(engine.get_versions("ks", b"k").unwrap(), Some(set));
}
