//! The replica calls' bytes (issue 12 §3), as the internode server decodes
//! and uses them: `ReplicaBatch` and `ReplicaReadBatch` requests handed to
//! a replica over a memory engine, every entry checked on its own (its
//! record, its deadline, the view it was planned on, its trace context);
//! a forwarded `CoordinateWrite` made into the write it asks for;
//! `SyncWal`. And as the sending side decodes the answers: each batch
//! entry's result as the error a single call would have given, the
//! coordinator's `CoordinateWrite` answer. Random bytes and mutated valid
//! encodings: a value or a typed error, never a panic, and one result per
//! entry.
//!
//! Owns: these properties only (tests). Must not: change a decoder to
//! suit a property.

use super::{cfg, mutate, record};
use crate::proto::v1::internode::{
    CoordinateWriteRequest, ReplicaBatchEntry, ReplicaBatchRequest, ReplicaReadBatchEntry,
    ReplicaReadBatchRequest, ReplicaReadRequest, ReplicaWriteRequest,
};
use crate::version::CausalContext;
use proptest::prelude::*;
use prost::Message;

/// A W3C trace context as a coordinator sends it with each entry.
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

// The bodies, shared with the fuzz target: `node::decoding` (a batch
// answered with other than one result per entry panics, which fails the
// property).
use super::super::decoding::{
    dev_replica as replica, forwarded_write, replica_answers as answers, replica_calls as serve,
};

/// A batch of two writes and one of two reads, as the lanes send them.
fn valid_batches(version: u64, timeout_ms: u32) -> [Vec<u8>; 2] {
    let write = |key: &str| ReplicaBatchEntry {
        write: Some(ReplicaWriteRequest {
            keyspace: "default".into(),
            key: key.as_bytes().to_vec().into(),
            record: record(2, 5).into(),
            coordinator: "dc1-n1".into(),
            layout_version: version,
            targets: vec!["dc1-n1".into(), "dc1-n2".into()],
            layout_digest: vec![7; 16].into(),
            ..Default::default()
        }),
        timeout_ms,
        traceparent: TRACEPARENT.into(),
    };
    let read = |key: &str| ReplicaReadBatchEntry {
        read: Some(ReplicaReadRequest {
            keyspace: "default".into(),
            key: key.as_bytes().to_vec(),
            layout_version: version,
            layout_digest: vec![7; 16],
        }),
        timeout_ms,
        traceparent: TRACEPARENT.into(),
    };
    [
        ReplicaBatchRequest {
            entries: vec![write("a"), write("b")],
        }
        .encode_to_vec(),
        ReplicaReadBatchRequest {
            entries: vec![read("a"), read("b")],
        }
        .encode_to_vec(),
    ]
}

/// A forwarded write, as `coordinator::forward` sends it.
fn valid_forward(level: &str, explicit: u32) -> Vec<u8> {
    CoordinateWriteRequest {
        keyspace: "default".into(),
        key: b"k".to_vec(),
        value: Some(b"v".to_vec()),
        context: CausalContext::new().encode_context(),
        level: level.into(),
        explicit_count: explicit,
        timeout_ms: 500,
    }
    .encode_to_vec()
}

proptest! {
    #![proptest_config(cfg())]

    #[test]
    fn replica_batches_answer_each_entry_or_fail_typed(raw in proptest::collection::vec(any::<u8>(), 0..512),
                                                       version in 0u64..4, timeout_ms in 0u32..2000,
                                                       kind: u8, at: usize, byte: u8) {
        let (cluster, rep) = replica();
        serve(&cluster, &rep, &raw);
        answers(&raw);
        for valid in valid_batches(version, timeout_ms) {
            serve(&cluster, &rep, &valid);
            let bent = mutate(valid, kind, at, byte);
            serve(&cluster, &rep, &bent);
            answers(&bent);
        }
    }

    #[test]
    fn forwarded_writes_decode_or_fail_typed(raw in proptest::collection::vec(any::<u8>(), 0..256),
                                             level in "ONE|QUORUM|LOCAL_QUORUM|ALL|EACH_QUORUM|[A-Z_]{0,6}",
                                             explicit in 0u32..9,
                                             kind: u8, at: usize, byte: u8) {
        forwarded_write(&raw);
        let valid = valid_forward(&level, explicit);
        prop_assert!(CoordinateWriteRequest::decode(&valid[..]).is_ok(), "a valid request");
        forwarded_write(&valid);
        let bent = mutate(valid, kind, at, byte);
        forwarded_write(&bent);
        answers(&bent);
    }
}
