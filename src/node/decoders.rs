//! Every decoder of bytes that come from the network or the disk, fed
//! random bytes and mutated valid encodings (issue 12 §3): stored records
//! and their quarantine envelopes, causal contexts, hint/stream entries and
//! hint keys, gossip digests applied to a membership table, Merkle requests
//! and answers, layout and auth documents; by subsystem in its children:
//! the layout CAS messages and persisted acceptor state (`paxos`), the
//! replica batch, read batch, forwarded write and `SyncWal` calls and
//! their answers (`replica`), and what a node reads back from `meta`
//! (`meta`: anti-entropy records, stream cursors, start state). Each must
//! answer with a value or a typed error, never panic; counts in the binary
//! formats are bounded by the input's length, so a short input cannot ask
//! for a large allocation.
//!
//! Owns: these properties only (tests). It lives in `node`, the one
//! module that may depend on every other, because it reaches the decoders
//! of all of them (in `security` it made a module cycle).
//!
//! Must not: be built outside tests, or change a decoder to suit a property.

use crate::engine::{Limits, MemoryEngine};
use crate::proto::v1::internode::{AuthMessage, GossipDigest, LayoutMessage, StreamEntry};
use crate::ring::TokenRange;
use crate::version::{ActorId, CausalContext, SiblingSet, VersionVector};
use bytes::Bytes;
use proptest::prelude::*;
use prost::Message;

mod meta;
mod paxos;
mod replica;

/// A valid record with `n` siblings from a few actors.
fn record(n: usize, value_len: usize) -> Vec<u8> {
    let mut set = SiblingSet::new();
    for i in 0..n {
        let ctx = CausalContext::new();
        let value = (i % 3 != 0).then(|| Bytes::from(vec![b'v'; value_len]));
        set.update(ActorId(1 + (i as u64 % 3)), &ctx, value, i as u64, 64)
            .expect("a blind write");
    }
    let mut out = Vec::new();
    set.encode(&mut out);
    out
}

/// `bytes` with one of a few mutations at `at`: flip a bit, truncate,
/// insert a byte, or overwrite a byte with 0xff (a huge varint start).
fn mutate(mut bytes: Vec<u8>, kind: u8, at: usize, byte: u8) -> Vec<u8> {
    if bytes.is_empty() {
        return vec![byte];
    }
    let at = at % bytes.len();
    match kind % 4 {
        0 => bytes[at] ^= 1 << (byte % 8),
        1 => bytes.truncate(at),
        2 => bytes.insert(at, byte),
        _ => bytes[at] = 0xff,
    }
    bytes
}

/// 256 cases, or `PROPTEST_CASES` when set (to look harder locally).
fn cfg() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok();
    ProptestConfig {
        cases: cases.and_then(|c| c.parse().ok()).unwrap_or(256),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(cfg())]

    #[test]
    fn records_decode_or_fail_typed(raw in proptest::collection::vec(any::<u8>(), 0..256),
                                    n in 0usize..6, len in 0usize..40,
                                    kind: u8, at: usize, byte: u8) {
        let _ = SiblingSet::decode(&raw);
        let _ = crate::engine::decode_record("ks", b"k", &raw);
        let valid = record(n, len);
        prop_assert!(SiblingSet::decode(&valid).is_ok());
        let bent = mutate(valid, kind, at, byte);
        let _ = SiblingSet::decode(&bent);
        let _ = crate::engine::decode_record("ks", b"k", &bent);
    }

    #[test]
    fn contexts_decode_or_fail_typed(raw in proptest::collection::vec(any::<u8>(), 0..256),
                                     actors in proptest::collection::btree_map(1u64..1000, 1u64..1_000_000, 0..8),
                                     kind: u8, at: usize, byte: u8) {
        let _ = VersionVector::decode_context(&raw);
        let _ = CausalContext::decode_context(&raw);
        let _ = CausalContext::decode_for(&raw, "ks", b"k");
        let vv = VersionVector::from_entries(actors.into_iter().map(|(a, n)| (ActorId(a), n)));
        let ctx = CausalContext::from_past(vv.clone());
        for valid in [vv.encode_context(), ctx.encode_context(), ctx.encode_for("ks", b"k")] {
            let bent = mutate(valid, kind, at, byte);
            let _ = VersionVector::decode_context(&bent);
            let _ = CausalContext::decode_context(&bent);
            let _ = CausalContext::decode_for(&bent, "ks", b"k");
        }
    }

    #[test]
    fn hint_entries_and_keys_decode_or_fail_typed(raw in proptest::collection::vec(any::<u8>(), 0..256),
                                                  kind: u8, at: usize, byte: u8) {
        let _ = crate::hints::queue::decode_entry(&raw);
        let _ = crate::hints::queue::Dest::parse_key(&raw);
        let _ = StreamEntry::decode(&raw[..]);
        let entry = StreamEntry {
            seq: 7,
            keyspace: "ks".into(),
            key: b"key".to_vec(),
            record: record(2, 5),
            target_node: "dc1-n2".into(),
            ..StreamEntry::default()
        };
        let valid = crate::hints::queue::encode_entry(42, &entry);
        prop_assert!(crate::hints::queue::decode_entry(&valid).is_some());
        let bent = mutate(valid, kind, at, byte);
        if let Some((_, e)) = crate::hints::queue::decode_entry(&bent) {
            let _ = SiblingSet::decode(&e.record);
        }
    }

    #[test]
    fn gossip_digests_merge_or_are_ignored(raw in proptest::collection::vec(any::<u8>(), 0..256),
                                           ids in proptest::collection::vec("[a-z0-9-]{0,6}", 0..6),
                                           gens in proptest::collection::vec(any::<u64>(), 6),
                                           beats in proptest::collection::vec(any::<u64>(), 6)) {
        use crate::membership::{Membership, MembershipConfig, PeerInfo};
        let peers = (0..3).map(|i| PeerInfo {
            id: format!("n{i}"),
            dc: "dc1".into(),
            rack: "r1".into(),
        });
        let mut table = Membership::new(MembershipConfig::default(), peers, "n0", 1_000, 0).unwrap();
        if let Ok(d) = GossipDigest::decode(&raw[..]) {
            let _ = table.apply_digest(&d, 10);
        }
        let entries = ids.iter().zip(gens.iter().zip(&beats)).map(|(id, (&generation, &heartbeat))| {
            crate::proto::v1::internode::GossipEntry { node_id: id.clone(), generation, heartbeat, features: 0, not_ready: false }
        });
        let d = GossipDigest {
            from: ids.first().cloned().unwrap_or_default(),
            entries: entries.collect(),
            ..GossipDigest::default()
        };
        let _ = table.apply_digest(&d, u64::MAX);
        let _ = table.apply_digest(&d, 0);
        let _ = table.digest();
    }

    // A huge depth is capped at MAX_DEPTH (2^MAX_DEPTH hashers): drawn
    // rarely, to keep the suite fast.
    #[test]
    fn merkle_requests_and_answers_never_panic(start: u64, end: u64,
                                              depth in prop_oneof![20 => 0u32..10, 1 => Just(u32::MAX)],
                                              a in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..20), 0..40),
                                              b in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..20), 0..40),
                                              first: usize, last: usize) {
        let engine = MemoryEngine::new(Limits::default());
        let _ = crate::replica::merkle::merkle_leaves(&engine, "ks", start, end, depth);
        let _ = crate::replica::merkle::merkle_leaves(&engine, "nowhere", start, end, depth);
        let range = TokenRange::new(start, end);
        let _ = crate::repair::diff::differing_leaves(&a, &b);
        let _ = crate::repair::diff::differing_ranges(range, depth, &a, &b);
        let _ = crate::repair::diff::leaves_range(range, depth, first, last);
        let _ = crate::repair::diff::leaf_range(range, depth, first);
    }

    #[test]
    fn layout_and_auth_documents_decode_or_fail_typed(raw in proptest::collection::vec(any::<u8>(), 0..512),
                                                      version: u64, kind: u8, at: usize, byte: u8) {
        let _ = crate::view::sync::from_message("peer", &LayoutMessage { version, json: raw.clone(), ..Default::default() });
        let _ = crate::view::lineage::Lineage::from_message(&LayoutMessage { version, json: vec![], prev_digest: raw.clone(), chosen_at: None });
        let _ = crate::security::auth::sync::from_message(&AuthMessage { version, json: raw.clone(), ..Default::default() });
        let _ = LayoutMessage::decode(&raw[..]);
        let _ = AuthMessage::decode(&raw[..]);
        let topo = crate::topology::Topology::parse("t", crate::topology::DEV_TOPOLOGY_YAML).unwrap();
        let layout = crate::layout::Layout::seed(&topo);
        let valid = crate::view::sync::to_message(&layout);
        prop_assert!(crate::view::sync::from_message("peer", &valid).is_ok());
        let bent = LayoutMessage { version: valid.version, json: mutate(valid.json, kind, at, byte), ..Default::default() };
        let _ = crate::view::sync::from_message("peer", &bent);
    }
}
