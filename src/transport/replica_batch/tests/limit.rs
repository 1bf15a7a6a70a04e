//! A write over the peer port's message limit (review-perf27 L4): its
//! size is known before it is sent, so it is refused as **not sent** (a
//! precise error, nothing applied), never sent to fail in tonic's encoder
//! after the call's headers went out and read as "maybe applied".

use super::*;
use crate::proto::v1::internode::ReplicaBatchEntry;
use crate::transport::encoded::MAX_MESSAGE_BYTES;
use crate::transport::testing::{peers, serve, Recorder};
use prost::Message;

const TIMEOUT: Duration = Duration::from_secs(30);

/// A write of `record_len` record bytes.
fn write(record_len: usize) -> ReplicaWriteRequest {
    ReplicaWriteRequest {
        keyspace: "ks".into(),
        key: bytes::Bytes::from_static(b"big"),
        record: bytes::Bytes::from(vec![7u8; record_len]),
        ..Default::default()
    }
}

/// Whether `r` says the write was not sent and names the limit.
fn refused_as_not_sent(r: &Result<(), TransportError>) -> bool {
    matches!(r, Err(TransportError::NotSent { message, .. }) if message.contains("limit"))
}

/// review-perf28 L1: a lone entry whose batch would be over the limit by
/// the batch's few wrapping bytes, though the write alone is within it, is
/// sent as the single `ReplicaWrite` the peer accepts, not refused.
#[tokio::test]
async fn a_lone_write_within_the_limit_is_sent_though_its_batch_would_not_be() {
    let peer = Recorder::default();
    let to = serve("new", peer.clone(), None).await;
    let peers = peers();
    let w = write(MAX_MESSAGE_BYTES - 16);
    assert!(w.encoded_len() <= MAX_MESSAGE_BYTES, "{}", w.encoded_len());
    let batch = ReplicaBatchEntry {
        write: Some(w.clone()),
        ..Default::default()
    };
    let wrapped = prost::encoding::message::encoded_len(1, &batch);
    assert!(
        wrapped > MAX_MESSAGE_BYTES,
        "the batch of it is over: {wrapped}"
    );
    let r = peers.replica_write_batched(&to, w, TIMEOUT).await;
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(peer.singles.lock().len(), 1, "delivered as a single write");
    assert!(peer.batches.lock().is_empty());
}

#[tokio::test]
async fn a_batched_write_over_the_message_limit_is_not_sent_and_says_why() {
    let peer = Recorder::default();
    let to = serve("new", peer.clone(), None).await;
    let peers = peers();
    let w = write(MAX_MESSAGE_BYTES);
    let r = peers.replica_write_batched(&to, w, TIMEOUT).await;
    assert!(refused_as_not_sent(&r), "{r:?}");
    assert!(peer.batches.lock().is_empty(), "nothing reached the peer");
    assert!(peer.singles.lock().is_empty(), "nothing reached the peer");
    // The lane goes on: a small write after it is sent.
    let ok = peers.replica_write_batched(&to, write(8), TIMEOUT).await;
    assert!(ok.is_ok(), "{ok:?}");
    assert_eq!(peer.batches.lock().len(), 1);
}

#[tokio::test]
async fn a_single_write_over_the_message_limit_is_not_sent_and_says_why() {
    let peer = Recorder::default();
    let to = serve("new", peer.clone(), None).await;
    let peers = peers();
    let r = peers
        .replica_write(&to, write(MAX_MESSAGE_BYTES), TIMEOUT)
        .await;
    assert!(refused_as_not_sent(&r), "{r:?}");
    assert!(peer.singles.lock().is_empty(), "nothing reached the peer");
}
