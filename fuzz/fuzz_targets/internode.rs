//! Bytes from the peer port and from a node's own hint lanes and meta
//! column family (server feature): internode messages, stream batches and
//! their entries, hint keys and values, gossip digests applied to a
//! membership table, layout and auth documents, the layout CAS messages
//! and persisted acceptor state, replica batches, read batches, forwarded
//! writes and their answers, anti-entropy records, stream cursors and start
//! state. Each decoder answers a value or a typed error; what decodes is
//! then used the way a node uses it, and must not panic. Arms 8-11 follow
//! `src/node/decoders/{paxos,replica,meta}.rs` (the property tests, which
//! also reach the server's own batch handlers, private to the crate).
#![no_main]

use geokv::consistency::ConsistencyLevel;
use geokv::engine::{Cf, Engine, Limits, MemoryEngine, WriteBatch};
use geokv::hints::queue::{decode_entry, encode_entry, Dest};
use geokv::layout::consensus::{Ballot, Msg};
use geokv::layout::Layout;
use geokv::membership::{Membership, MembershipConfig, PeerInfo};
use geokv::proto::v1::internode::{
    AuthMessage, CoordinateWriteRequest, CoordinateWriteResponse, GossipDigest,
    LayoutAcceptRequest, LayoutMessage, LayoutPaxosReply, LayoutPrepareRequest, MerkleRequest,
    MerkleResponse, RangeScanRequest, RangeScanResponse, ReplicaBatchRequest, ReplicaBatchResponse,
    ReplicaReadBatchRequest, ReplicaReadBatchResponse, ReplicaReadRequest, ReplicaWriteRequest,
    StreamAck, StreamBatch, SyncWalRequest, SyncWalResponse,
};
use geokv::ring::{Ring, TokenRange};
use geokv::topology::Topology;
use geokv::version::{CausalContext, SiblingSet};
use geokv::view::acceptor::{self, Acceptor, PAXOS_KEY};
use geokv::view::{stale_view, ClusterView};
use libfuzzer_sys::fuzz_target;
use prost::Message;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 12 {
        0 => {
            if let Some((seq, entry)) = decode_entry(rest) {
                let _ = SiblingSet::decode(&entry.record);
                let again = decode_entry(&encode_entry(seq, &entry)).expect("re-encoded entry");
                assert_eq!(again, (seq, entry));
            }
            let _ = Dest::parse_key(rest);
        }
        1 => {
            if let Ok(batch) = StreamBatch::decode(rest) {
                for e in &batch.entries {
                    let _ = SiblingSet::decode(&e.record);
                }
            }
            let _ = StreamAck::decode(rest);
        }
        2 => {
            let peers = (0..3).map(|i| PeerInfo {
                id: format!("n{i}"),
                dc: "dc1".into(),
                rack: "r1".into(),
            });
            let mut table =
                Membership::new(MembershipConfig::default(), peers, "n0", 1_000, 0).unwrap();
            if let Ok(d) = GossipDigest::decode(rest) {
                let _ = table.apply_digest(&d, 10);
                let _ = table.apply_digest(&d, u64::MAX);
                let _ = table.digest();
            }
        }
        3 => {
            if let Ok(msg) = LayoutMessage::decode(rest) {
                if let Ok(layout) = geokv::view::sync::from_message("peer", &msg) {
                    let _ = Ring::from_layout(&layout);
                }
            }
        }
        4 => {
            if let Ok(msg) = AuthMessage::decode(rest) {
                let _ = geokv::security::auth::sync::from_message(&msg);
            }
        }
        5 => {
            let _ = MerkleRequest::decode(rest);
            let _ = MerkleResponse::decode(rest);
        }
        6 => {
            if let Ok(w) = ReplicaWriteRequest::decode(rest) {
                let _ = SiblingSet::decode(&w.record);
            }
            let _ = ReplicaReadRequest::decode(rest);
        }
        7 => {
            let _ = RangeScanRequest::decode(rest);
            let _ = RangeScanResponse::decode(rest);
        }
        8 => layout_paxos(rest),
        9 => {
            let acc = Acceptor::new(Some(engine_with(&[(PAXOS_KEY, rest)])));
            let seed = Layout::seed(&Topology::dev());
            let slot = seed.version + 1;
            let (round, node) = (u64::MAX, "dc1-n1".to_string());
            let base = seed.digest();
            let msg = Msg::Prepare {
                slot,
                ballot: Ballot { round, node },
                base,
            };
            let _ = acc.handle(&seed, &msg);
        }
        10 => replica_calls(rest),
        _ => meta(rest),
    }
});

/// A memory engine holding `pairs` in its meta column family.
fn engine_with(pairs: &[(&[u8], &[u8])]) -> Arc<dyn Engine> {
    let engine = Arc::new(MemoryEngine::new(Limits::default()));
    let mut b = WriteBatch::new();
    for (k, v) in pairs {
        b.put_raw(Cf::Meta, k, v);
    }
    engine.write(b).expect("a memory write");
    engine
}

/// `LayoutPrepare` and `LayoutAccept` answered by an acceptor on the dev
/// seed, as the server does; `LayoutPaxosReply` as a proposer decodes it.
fn layout_paxos(rest: &[u8]) {
    let seed = Layout::seed(&Topology::dev());
    let acc = Acceptor::new(None);
    if let Ok(r) = LayoutPrepareRequest::decode(rest) {
        if let Ok(msg) = acceptor::prepare_msg(&r) {
            let _ = acc.handle(&seed, &msg);
        }
    }
    if let Ok(r) = LayoutAcceptRequest::decode(rest) {
        if let Ok(msg) = acceptor::accept_msg("peer", &r) {
            let _ = acc.handle(&seed, &msg);
        }
    }
    if let Ok(r) = LayoutPaxosReply::decode(rest) {
        let _ = acceptor::reply_from("peer", &r);
    }
}

/// What the replica checks of each batch entry (its record, its trace
/// context, the view it was planned on), a forwarded write's level and
/// context, and the answers a sender decodes.
fn replica_calls(rest: &[u8]) {
    let view = ClusterView::derive(Layout::seed(&Topology::dev()), "dc1-n2").expect("a view");
    let span = tracing::Span::none();
    if let Ok(req) = ReplicaBatchRequest::decode(rest) {
        for e in req.entries {
            geokv::telemetry::adopt_traceparent(&span, &e.traceparent);
            let Some(r) = e.write else { continue };
            let _ = SiblingSet::decode(&r.record);
            let planned = stale_view::Planned {
                keyspace: &r.keyspace,
                key: &r.key,
                version: r.layout_version,
                digest: &r.layout_digest,
                targets: &r.targets,
                repair: r.repair,
            };
            let _ = stale_view::check(&view, &planned);
        }
    }
    if let Ok(req) = ReplicaReadBatchRequest::decode(rest) {
        for e in req.entries {
            geokv::telemetry::adopt_traceparent(&span, &e.traceparent);
            let Some(r) = e.read else { continue };
            let (v, d) = (r.layout_version, &r.layout_digest[..]);
            let _ = stale_view::check_read(&view, &r.keyspace, &r.key, v, d);
        }
    }
    if let Ok(r) = CoordinateWriteRequest::decode(rest) {
        let _ = r.level.parse::<ConsistencyLevel>();
        let _ = CausalContext::decode_context(&r.context);
    }
    if let Ok(r) = CoordinateWriteResponse::decode(rest) {
        let _ = CausalContext::decode_context(&r.context);
    }
    let _ = ReplicaBatchResponse::decode(rest);
    let _ = ReplicaReadBatchResponse::decode(rest);
    let _ = SyncWalRequest::decode(rest);
    let _ = SyncWalResponse::decode(rest);
}

/// What a node reads back from its meta column family, stored as `rest`.
fn meta(rest: &[u8]) {
    use geokv::repair::plan::{Recorded, REPAIR_PREFIX};
    let key = [REPAIR_PREFIX, rest].concat();
    let _ = Recorded::parse(&key, rest);
    let range = TokenRange::new(1, 2);
    let cursor = geokv::movement::cursor::key("s1", "default", range);
    let engine = engine_with(&[
        (&key, rest),
        (&cursor, rest),
        (geokv::view::store::LAYOUT_KEY, rest),
        (geokv::security::auth::store::AUTH_KEY, rest),
        (b"repair-swept-base", rest),
        (b"incarnation", rest),
        (b"clean_shutdown", rest),
    ]);
    let _ = geokv::repair::records::load_records(engine.as_ref());
    let _ = geokv::movement::cursor::load(engine.as_ref(), "s1", "default", range);
    let _ = geokv::view::store::load(engine.as_ref());
    let _ = geokv::security::auth::store::load(engine.as_ref());
    let _ = geokv::engine::incarnation::on_start(engine.as_ref());
    let clock = geokv::repair::records::SweepClock::open(engine, Default::default(), 1_000);
    if let Ok(clock) = clock {
        let _ = clock.last_swept("default", range);
    }
}
