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

use super::super::internode::{batch, read_batch, write_request};
use super::{cfg, mutate, record};
use crate::engine::{Limits, MemoryEngine};
use crate::layout::Layout;
use crate::proto::v1::internode::{
    CoordinateWriteRequest, CoordinateWriteResponse, ReplicaBatchEntry, ReplicaBatchRequest,
    ReplicaBatchResponse, ReplicaReadBatchEntry, ReplicaReadBatchRequest, ReplicaReadBatchResponse,
    ReplicaReadRequest, ReplicaWriteRequest, SyncWalRequest, SyncWalResponse,
};
use crate::replica::Replica;
use crate::topology::Topology;
use crate::transport::encoded::Repeated;
use crate::version::CausalContext;
use crate::view::Cluster;
use proptest::prelude::*;
use prost::Message;
use std::sync::Arc;
use std::time::Instant;

/// A W3C trace context as a coordinator sends it with each entry.
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// `dc1-n2`'s replica on the dev seed, over a memory engine.
fn replica() -> (Cluster, Replica) {
    let cluster = Cluster::new(Layout::seed(&Topology::dev()), "dc1-n2", None).expect("a view");
    let engine = Arc::new(MemoryEngine::new(Limits::default()));
    (cluster, Replica::new(engine, "dc1-n2", 8))
}

/// What `replica_batch` and `replica_read_batch` do with a peer's bytes,
/// and `SyncWal`'s request: one result per entry, whatever the entry.
fn serve(cluster: &Cluster, rep: &Replica, raw: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(req) = ReplicaBatchRequest::decode(raw) {
        let n = req.entries.len();
        let got = batch::results(rep, cluster, req.entries, Instant::now());
        prop_assert_eq!(got.len(), n);
    }
    if let Ok(req) = ReplicaReadBatchRequest::decode(raw) {
        let n = req.entries.len();
        let got = read_batch::results(rep, &cluster.current(), req.entries, Instant::now());
        prop_assert_eq!(got.len(), n);
    }
    // The hand-rolled send-only encodings (`transport::encoded`,
    // `replica_batch::Entry`) decode by skipping every field.
    let _ = Repeated::<crate::transport::replica_batch::Entry>::decode(raw);
    let _ = crate::transport::replica_batch::Entry::decode(raw);
    let _ = SyncWalRequest::decode(raw);
    Ok(())
}

/// What the sending side does with a peer's answers: each entry's result
/// as a single call's outcome, the coordinator's context decoded.
fn answers(raw: &[u8]) {
    if let Ok(r) = ReplicaBatchResponse::decode(raw) {
        for x in r.results {
            let _ = crate::transport::replica_batch::entry_result("peer", x);
        }
    }
    if let Ok(r) = ReplicaReadBatchResponse::decode(raw) {
        for x in r.results {
            let _ = crate::transport::read_batch::read_result("peer", x);
        }
    }
    if let Ok(r) = CoordinateWriteResponse::decode(raw) {
        let _ = CausalContext::decode_context(&r.context);
    }
    let _ = SyncWalResponse::decode(raw);
}

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
        serve(&cluster, &rep, &raw)?;
        answers(&raw);
        for valid in valid_batches(version, timeout_ms) {
            serve(&cluster, &rep, &valid)?;
            let bent = mutate(valid, kind, at, byte);
            serve(&cluster, &rep, &bent)?;
            answers(&bent);
        }
    }

    #[test]
    fn forwarded_writes_decode_or_fail_typed(raw in proptest::collection::vec(any::<u8>(), 0..256),
                                             level in "ONE|QUORUM|LOCAL_QUORUM|ALL|EACH_QUORUM|[A-Z_]{0,6}",
                                             explicit in 0u32..9,
                                             kind: u8, at: usize, byte: u8) {
        if let Ok(r) = CoordinateWriteRequest::decode(&raw[..]) {
            let _ = write_request(r);
        }
        let valid = valid_forward(&level, explicit);
        let r = CoordinateWriteRequest::decode(&valid[..]).expect("a valid request");
        let _ = write_request(r);
        let bent = mutate(valid, kind, at, byte);
        if let Ok(r) = CoordinateWriteRequest::decode(&bent[..]) {
            let _ = write_request(r);
        }
        answers(&bent);
    }
}
