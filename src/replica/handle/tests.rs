//! Which merges queue in a peer's batching lane (issue 14, head-of-line
//! blocking): client writes only (the coordinator's fan-out and another
//! datacenter's stream entries, through [`Handle::merge_batched`]). Any
//! other merge (read repair, node hints, movement and repair pages, all
//! through [`Handle::merge`]) goes to the peer as a write of its own,
//! so a lane held by a batch the peer never answers neither delays it nor
//! counts it against its cap. Over a real loopback socket: nothing here
//! waits on time but the merge's own deadline, which only a merge stuck
//! behind the stalled batch would reach. Reads go through a lane of
//! their own, never behind the peer's writes.

use super::*;
use crate::transport::testing::{peers, serve, Recorder};

#[tokio::test]
async fn a_stalled_lane_does_not_hold_up_a_merge_that_is_not_a_client_write() {
    let peer = Recorder {
        stall: true,
        ..Recorder::default()
    };
    let to = serve("stalled", peer.clone(), None).await;
    let peers = peers();
    let arrived = peer.arrived.notified();
    // A client write: its batch reaches the peer and is never answered.
    let client = {
        let (peers, to) = (peers.clone(), to.clone());
        let req = ReplicaWriteRequest {
            keyspace: "ks".into(),
            key: bytes::Bytes::from_static(b"client"),
            ..Default::default()
        };
        tokio::spawn(async move {
            let long = Duration::from_secs(600);
            peers.replica_write_batched(&to, req, long).await
        })
    };
    arrived.await;

    // What read repair and node hints send (no client plan).
    let set = SiblingSet::new();
    let m = Merge {
        keyspace: "ks",
        key: b"hinted",
        set: &set,
        record: b"a record",
        planned: None,
    };
    let handle = Handle::Peer {
        peers: peers.clone(),
        node: to.clone(),
    };
    let got = handle.merge(m, Duration::from_secs(5)).await;
    assert!(got.is_ok(), "{got:?}");
    assert_eq!(*peer.singles.lock(), vec![b"hinted".to_vec()], "alone");
    assert_eq!(
        peer.batches.lock().len(),
        1,
        "only the client write's batch"
    );
    assert!(!client.is_finished(), "that batch is still unanswered");
    client.abort();
}

#[tokio::test]
async fn a_stalled_write_lane_does_not_hold_up_a_read() {
    let peer = Recorder {
        stall: true,
        ..Recorder::default()
    };
    let to = serve("stalled", peer.clone(), None).await;
    let peers = peers();
    let arrived = peer.arrived.notified();
    let client = {
        let (peers, to) = (peers.clone(), to.clone());
        let req = ReplicaWriteRequest {
            keyspace: "ks".into(),
            key: bytes::Bytes::from_static(b"client"),
            ..Default::default()
        };
        tokio::spawn(async move {
            let long = Duration::from_secs(600);
            peers.replica_write_batched(&to, req, long).await
        })
    };
    arrived.await;
    let handle = Handle::Peer {
        peers: peers.clone(),
        node: to.clone(),
    };
    let got = handle.read("ks", b"missing-k", (0, &[]), Duration::from_secs(5));
    assert!(matches!(got.await, Ok(None)), "answered, not held");
    let reads = peer.read_batches.lock().clone();
    assert_eq!(reads, vec![vec![b"missing-k".to_vec()]], "in a read batch");
    assert!(!client.is_finished(), "the write batch is still unanswered");
    client.abort();
}
