//! The bodies of the decoder properties (issue 12 §3) that reach a node's
//! own handlers, shared by the property tests (`node::decoders`) and the
//! fuzz target (`fuzz/fuzz_targets/internode.rs`, which cannot reach test
//! code): given bytes, decode them and use what decodes the way a node
//! does. By family: the layout compare-and-set's messages and persisted
//! acceptor state (as `decoders::paxos`), the replica calls and their
//! answers (`decoders::replica`), what a node reads back from `meta`
//! (`decoders::meta`). Each returns a value or a typed error, or nothing;
//! it panics only where a property fails (a decoder panicked, a batch
//! answered other than one result per entry, a malformed anti-entropy
//! record left in place), which both callers report.
//!
//! It lives in `node` because the batch handlers are the internode
//! server's, private to it.
//!
//! Must not: change a decoder to suit a property, or touch a node's real
//! storage (every engine here is a memory one).

use super::internode::{batch, read_batch, write_request};
use crate::engine::{Cf, Engine, EngineError, Limits, MemoryEngine, WriteBatch};
use crate::layout::consensus::{Ballot, Msg, Reply};
use crate::layout::Layout;
use crate::movement::cursor;
use crate::proto::v1::internode::{
    CoordinateWriteRequest, CoordinateWriteResponse, LayoutAcceptRequest, LayoutPaxosReply,
    LayoutPrepareRequest, ReplicaBatchRequest, ReplicaBatchResponse, ReplicaReadBatchRequest,
    ReplicaReadBatchResponse, SyncWalRequest, SyncWalResponse,
};
use crate::repair::plan::{Recorded, REPAIR_PREFIX};
use crate::repair::records::{load_records, SweepClock};
use crate::replica::Replica;
use crate::ring::TokenRange;
use crate::topology::Topology;
use crate::transport::encoded::Repeated;
use crate::version::CausalContext;
use crate::view::acceptor::{self, Acceptor, AcceptorError, PAXOS_KEY};
use crate::view::Cluster;
use prost::Message;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A memory engine holding `pairs` in its meta column family.
pub fn engine_with(pairs: &[(&[u8], &[u8])]) -> Arc<MemoryEngine> {
    let engine = Arc::new(MemoryEngine::new(Limits::default()));
    let mut b = WriteBatch::new();
    for (k, v) in pairs {
        b.put_raw(Cf::Meta, k, v);
    }
    engine.write(b).expect("a memory write");
    engine
}

/// What `layout_prepare` and `layout_accept` do with a peer's bytes: the
/// request decoded, then answered by a memory acceptor on `installed`;
/// and a `LayoutPaxosReply` as a proposer decodes it.
pub fn layout_paxos(installed: &Layout, raw: &[u8]) {
    let acc = Acceptor::new(None);
    if let Ok(r) = LayoutPrepareRequest::decode(raw) {
        if let Ok(msg) = acceptor::prepare_msg(&r) {
            let _ = acc.handle(installed, &msg);
        }
    }
    if let Ok(r) = LayoutAcceptRequest::decode(raw) {
        if let Ok(msg) = acceptor::accept_msg("peer", &r) {
            let _ = acc.handle(installed, &msg);
        }
    }
    if let Ok(r) = LayoutPaxosReply::decode(raw) {
        let _ = acceptor::reply_from("peer", &r);
    }
}

/// A memory acceptor on `installed` whose persisted state is `state`,
/// asked by `dc1-n1` to promise the next slot at the highest round (which
/// loads that state first).
pub fn acceptor_state(installed: &Layout, state: &[u8]) -> Result<Reply<Layout>, AcceptorError> {
    let engine = engine_with(&[(PAXOS_KEY, state)]);
    let acc = Acceptor::new(Some(engine as Arc<dyn Engine>));
    let msg = Msg::Prepare {
        slot: installed.version + 1,
        ballot: Ballot {
            round: u64::MAX,
            node: "dc1-n1".into(),
        },
        base: installed.digest(),
    };
    acc.handle(installed, &msg)
}

/// `dc1-n2`'s replica on the dev seed, over a memory engine.
pub fn dev_replica() -> (Cluster, Replica) {
    let cluster = Cluster::new(Layout::seed(&Topology::dev()), "dc1-n2", None).expect("a view");
    let engine = Arc::new(MemoryEngine::new(Limits::default()));
    (cluster, Replica::new(engine, "dc1-n2", 8))
}

/// What `replica_batch` and `replica_read_batch` do with a peer's bytes
/// (each entry checked on its own: record, deadline, view, trace
/// context), and `SyncWal`'s request. Panics unless a batch is answered
/// with one result per entry.
pub fn replica_calls(cluster: &Cluster, rep: &Replica, raw: &[u8]) {
    if let Ok(req) = ReplicaBatchRequest::decode(raw) {
        let n = req.entries.len();
        let got = batch::results(rep, cluster, req.entries, Instant::now());
        assert_eq!(got.len(), n, "one result per write");
    }
    if let Ok(req) = ReplicaReadBatchRequest::decode(raw) {
        let n = req.entries.len();
        let got = read_batch::results(rep, &cluster.current(), req.entries, Instant::now());
        assert_eq!(got.len(), n, "one result per read");
    }
    // The hand-rolled send-only encodings (`transport::encoded`,
    // `replica_batch::Entry`) decode by skipping every field.
    let _ = Repeated::<crate::transport::replica_batch::Entry>::decode(raw);
    let _ = crate::transport::replica_batch::Entry::decode(raw);
    let _ = SyncWalRequest::decode(raw);
}

/// What the sending side does with a peer's answers: each batch entry's
/// result as a single call's outcome, the coordinator's context decoded.
pub fn replica_answers(raw: &[u8]) {
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

/// A forwarded `CoordinateWrite` made into the write it asks for (its
/// level and context decoded), as the internode server does.
pub fn forwarded_write(raw: &[u8]) {
    if let Ok(r) = CoordinateWriteRequest::decode(raw) {
        let _ = write_request(r);
    }
}

/// Loads every anti-entropy record of an engine holding `keys` (each with
/// `value`). Panics unless the load succeeds and every key left under the
/// records' prefix parses: the malformed ones were set aside.
pub fn records_load(keys: &[Vec<u8>], value: &[u8]) {
    let pairs: Vec<(&[u8], &[u8])> = keys.iter().map(|k| (&k[..], value)).collect();
    let engine = engine_with(&pairs);
    let loaded = load_records(engine.as_ref());
    assert!(loaded.is_ok(), "{loaded:?}");
    let mut end = REPAIR_PREFIX.to_vec();
    *end.last_mut().expect("a prefix") += 1;
    let left = engine
        .scan_raw(Cf::Meta, REPAIR_PREFIX, &end, 1000)
        .expect("a scan");
    for (k, v) in &left {
        assert!(Recorded::parse(k, v).is_some(), "{k:?} left in place");
    }
}

/// The sweep clock of an engine holding `value` as the node's first start
/// and as the sweep time of one range. Panics unless it opens and answers.
pub fn sweep_clock(value: &[u8]) {
    let range = TokenRange::new(5, 10);
    let mut swept = b"repair-swept/".to_vec();
    swept.push(7);
    swept.extend_from_slice(b"default");
    swept.extend_from_slice(&5u64.to_be_bytes());
    swept.extend_from_slice(&10u64.to_be_bytes());
    let engine = engine_with(&[(b"repair-swept-base", value), (&swept, value)]);
    let clock = SweepClock::open(engine, Duration::from_secs(60), 1_000);
    let clock = clock.unwrap_or_else(|e| panic!("the sweep clock: {e}"));
    assert!(clock.last_swept("default", range).is_ok());
    assert!(clock.is_due("default", range, u64::MAX).is_ok());
}

/// A stream cursor stored as `value`. Panics unless it loads as a cursor
/// or a typed corruption.
pub fn cursor_of(value: &[u8]) {
    let range = TokenRange::new(1, 2);
    let engine = engine_with(&[(&cursor::key("s1", "default", range), value)]);
    match cursor::load(engine.as_ref(), "s1", "default", range) {
        Ok(_) | Err(EngineError::Corrupt { .. }) => {}
        Err(e) => panic!("a cursor: {e}"),
    }
}

/// Every other value of `meta` a start reads back, stored as `value`;
/// data keys split into token and user key; a layout digest as gossip
/// reads it.
pub fn start_state(value: &[u8]) {
    let engine = engine_with(&[
        (crate::view::store::LAYOUT_KEY, value),
        (crate::security::auth::store::AUTH_KEY, value),
        (b"incarnation", value),
        (b"clean_shutdown", value),
        (b"generation", value),
    ]);
    let _ = crate::view::store::load(engine.as_ref());
    let _ = crate::security::auth::store::load(engine.as_ref());
    let _ = crate::engine::incarnation::on_start(engine.as_ref());
    let _ = crate::engine::keys::split_data_key(&[7], value);
    let _ = crate::view::staging::digest_of(value);
}
