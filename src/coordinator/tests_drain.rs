//! A node that has begun its shutdown refuses writes other nodes forward
//! to it before minting anything (review of stop 23: its hint delivery has
//! stopped, so a forwarded write waiting on a remote datacenter would time
//! out "maybe applied" where another replica could have taken it). It reads
//! the node's shutdown signal itself (`Coordinator::stopping_on`), the one
//! hint delivery stops on.

use super::tests_pending::coordinator_on;
use super::*;
use crate::layout::Layout;
use crate::topology::Topology;

fn put(key: &[u8]) -> WriteRequest {
    WriteRequest {
        mutation: Mutation {
            keyspace: "default".into(),
            key: Bytes::copy_from_slice(key),
            value: Some(Bytes::from_static(b"v")),
            context: crate::version::CausalContext::new(),
        },
        level: ConsistencyLevel::One,
        explicit: None,
        timeout: Duration::from_millis(300),
    }
}

#[tokio::test]
async fn a_draining_node_refuses_forwarded_writes_before_minting() {
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let c = coordinator_on(Layout::seed(&Topology::dev())).stopping_on(shutdown);
    let view = c.cluster().current();
    let replicated = (0..1000u32).map(u32::to_be_bytes).filter(|k| {
        let set = view.ring.replicas("default", k);
        set.is_ok_and(|s| s.contains(view.me_idx()))
    });
    let keys: Vec<[u8; 4]> = replicated.take(2).collect();
    assert_eq!(keys.len(), 2, "dc1-n1 replicates keys of 'default'");

    // Before the drain a forwarded write of a key it replicates is taken
    // here: minted and stored (ONE: its own copy is enough).
    let taken = c.write_as_replica(put(&keys[0])).await;
    assert!(taken.is_ok(), "{taken:?}");
    assert!(c.replica.read("default", &keys[0]).expect("read").is_some());

    stop.send(true).expect("the coordinator watches the signal");
    let refused = c.write_as_replica(put(&keys[1])).await;
    let err = refused.expect_err("refused while draining");
    assert!(matches!(err, GeokvError::ShuttingDown), "{err:?}");
    assert!(
        err.nothing_applied(),
        "the forwarder may ask another replica"
    );
    assert!(
        c.replica.read("default", &keys[1]).expect("read").is_none(),
        "nothing was minted or stored"
    );
    // On the wire: UNAVAILABLE, applied: no, which the forwarder reads as
    // "ask the key's next replica".
    let status = tonic::Status::from(err);
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    let applied = status.metadata().get(crate::proto::APPLIED_METADATA);
    assert_eq!(applied.and_then(|v| v.to_str().ok()), Some("no"));
    let seen = crate::transport::status_error("dc1-n1", status, 300);
    assert_eq!(
        super::forward::after_failure(&seen),
        super::forward::AfterFailure::TryNext
    );
}
