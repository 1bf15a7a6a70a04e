//! Bytes from the peer port and from a node's own hint lanes and meta
//! column family (server feature): internode messages, stream batches and
//! their entries, hint keys and values, gossip digests applied to a
//! membership table, layout and auth documents, the layout CAS messages
//! and persisted acceptor state, replica batches, read batches, forwarded
//! writes and their answers, anti-entropy records, stream cursors and start
//! state. Each decoder answers a value or a typed error; what decodes is
//! then used the way a node uses it, and must not panic. Arms 8-11 run the
//! bodies of the property tests `src/node/decoders/{paxos,replica,meta}.rs`,
//! which the library shares as `geokv::node::decoding` (they also reach the
//! server's own batch handlers, private to the crate).
#![no_main]

use geokv::hints::queue::{decode_entry, encode_entry, Dest};
use geokv::layout::Layout;
use geokv::membership::{Membership, MembershipConfig, PeerInfo};
use geokv::node::decoding;
use geokv::proto::v1::internode::{
    AuthMessage, GossipDigest, LayoutMessage, MerkleRequest, MerkleResponse, RangeScanRequest,
    RangeScanResponse, ReplicaReadRequest, ReplicaWriteRequest, StreamAck, StreamBatch,
};
use geokv::repair::plan::{Recorded, REPAIR_PREFIX};
use geokv::ring::Ring;
use geokv::topology::Topology;
use geokv::version::SiblingSet;
use libfuzzer_sys::fuzz_target;
use prost::Message;

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
        8 => decoding::layout_paxos(&Layout::seed(&Topology::dev()), rest),
        9 => {
            let _ = decoding::acceptor_state(&Layout::seed(&Topology::dev()), rest);
        }
        10 => {
            let (cluster, replica) = decoding::dev_replica();
            decoding::replica_calls(&cluster, &replica, rest);
            decoding::replica_answers(rest);
            decoding::forwarded_write(rest);
        }
        _ => meta(rest),
    }
});

/// What a node reads back from its meta column family, stored as `rest`.
fn meta(rest: &[u8]) {
    let key = [REPAIR_PREFIX, rest].concat();
    let _ = Recorded::parse(&key, rest);
    decoding::records_load(&[key], rest);
    decoding::cursor_of(rest);
    decoding::start_state(rest);
    decoding::sweep_clock(rest);
}
