//! What a node reads back from its own `meta` column family and data keys
//! (issue 12 §3): anti-entropy records and sweep times, movement/stream
//! cursors, the persisted layout and auth state, the start markers
//! (incarnation, clean shutdown, generation), data keys split into token
//! and user key, and gossip's layout digests. Random bytes and mutated
//! valid encodings under the real keys of a memory engine: a value or a
//! typed error, never a panic, and a malformed anti-entropy record is set
//! aside, never read again.
//!
//! Owns: these properties only (tests). Must not: change a decoder to
//! suit a property.

use super::{cfg, mutate};
use crate::engine::{Engine, Limits, MemoryEngine, WriteBatch};
use crate::movement::cursor::{self, Cursor};
use crate::repair::plan::{repair_key, Recorded, REPAIR_PREFIX};
use crate::ring::TokenRange;
use proptest::prelude::*;
use std::sync::Arc;

// The bodies, shared with the fuzz target: `node::decoding` (a property
// that fails panics, which fails the test case).
use super::super::decoding::{cursor_of, records_load, start_state, sweep_clock};

proptest! {
    #![proptest_config(cfg())]

    #[test]
    fn repair_records_parse_or_are_set_aside(tail in proptest::collection::vec(any::<u8>(), 0..48),
                                             value in proptest::collection::vec(any::<u8>(), 0..24),
                                             ks in "[a-z_]{0,12}", token: u64, unique: u64,
                                             kind: u8, at: usize, byte: u8) {
        let raw = [REPAIR_PREFIX, &tail].concat();
        let _ = Recorded::parse(&tail, &value);
        let _ = Recorded::parse(&raw, &value);
        let valid = repair_key(&ks, token, unique).expect("a short keyspace");
        prop_assert!(Recorded::parse(&valid, b"node:dc1-n2").is_some());
        let bent = mutate(valid.clone(), kind, at, byte);
        let _ = Recorded::parse(&bent, &value);
        records_load(&[raw, valid, bent], &value);
        sweep_clock(&value);
        sweep_clock(&mutate(1_000u64.to_be_bytes().to_vec(), kind, at, byte));
    }

    #[test]
    fn cursors_and_start_state_load_or_fail_typed(raw in proptest::collection::vec(any::<u8>(), 0..256),
                                                  last in proptest::collection::vec(any::<u8>(), 0..24),
                                                  kind: u8, at: usize, byte: u8) {
        cursor_of(&raw);
        start_state(&raw);
        for c in [Cursor::Start, Cursor::After(last), Cursor::Done] {
            let mut b = WriteBatch::new();
            cursor::save(&mut b, "s1", "default", TokenRange::new(1, 2), &c);
            let engine = Arc::new(MemoryEngine::new(Limits::default()));
            engine.write(b).expect("a memory write");
            let back = cursor::load(engine.as_ref(), "s1", "default", TokenRange::new(1, 2));
            prop_assert_eq!(back.expect("a saved cursor"), c);
        }
        let layout = crate::layout::Layout::seed(&crate::topology::Topology::dev());
        let valid = serde_json::to_vec(&layout).expect("a layout serialises");
        start_state(&mutate(valid, kind, at, byte));
        cursor_of(&mutate(vec![0, 1, 2], kind, at, byte));
    }
}
