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
use crate::engine::{Cf, Engine, EngineError, Limits, MemoryEngine, WriteBatch};
use crate::movement::cursor::{self, Cursor};
use crate::repair::plan::{repair_key, Recorded, REPAIR_PREFIX};
use crate::repair::records::{load_records, SweepClock};
use crate::ring::TokenRange;
use proptest::prelude::*;
use std::sync::Arc;
use std::time::Duration;

fn engine_with(pairs: &[(&[u8], &[u8])]) -> Arc<MemoryEngine> {
    let engine = Arc::new(MemoryEngine::new(Limits::default()));
    let mut b = WriteBatch::new();
    for (k, v) in pairs {
        b.put_raw(Cf::Meta, k, v);
    }
    engine.write(b).expect("a memory write");
    engine
}

/// Loads every anti-entropy record of an engine holding `keys` (each
/// with `value`) and checks that none left under the records' prefix is
/// malformed: those were set aside.
fn records_load(keys: &[Vec<u8>], value: &[u8]) -> Result<(), TestCaseError> {
    let pairs: Vec<(&[u8], &[u8])> = keys.iter().map(|k| (&k[..], value)).collect();
    let engine = engine_with(&pairs);
    let loaded = load_records(engine.as_ref());
    prop_assert!(loaded.is_ok(), "{loaded:?}");
    let mut end = REPAIR_PREFIX.to_vec();
    *end.last_mut().expect("a prefix") += 1;
    let left = engine
        .scan_raw(Cf::Meta, REPAIR_PREFIX, &end, 1000)
        .expect("a scan");
    for (k, v) in &left {
        prop_assert!(Recorded::parse(k, v).is_some(), "{k:?} left in place");
    }
    Ok(())
}

/// The sweep clock of an engine holding `value` as the node's first start
/// and as the sweep time of one range.
fn sweep_clock(value: &[u8]) -> Result<(), TestCaseError> {
    let range = TokenRange::new(5, 10);
    let mut swept = b"repair-swept/".to_vec();
    swept.push(7);
    swept.extend_from_slice(b"default");
    swept.extend_from_slice(&5u64.to_be_bytes());
    swept.extend_from_slice(&10u64.to_be_bytes());
    let engine = engine_with(&[(b"repair-swept-base", value), (&swept, value)]);
    let clock = SweepClock::open(engine, Duration::from_secs(60), 1_000);
    let clock = clock.map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert!(clock.last_swept("default", range).is_ok());
    prop_assert!(clock.is_due("default", range, u64::MAX).is_ok());
    Ok(())
}

/// A stream cursor stored as `value`: a cursor or a typed corruption.
fn cursor_of(value: &[u8]) -> Result<(), TestCaseError> {
    let range = TokenRange::new(1, 2);
    let engine = engine_with(&[(&cursor::key("s1", "default", range), value)]);
    match cursor::load(engine.as_ref(), "s1", "default", range) {
        Ok(_) | Err(EngineError::Corrupt { .. }) => Ok(()),
        Err(e) => Err(TestCaseError::fail(format!("{e}"))),
    }
}

/// Every other value of `meta` a start reads back, stored as `value`.
fn start_state(value: &[u8]) {
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
        records_load(&[raw, valid, bent], &value)?;
        sweep_clock(&value)?;
        sweep_clock(&mutate(1_000u64.to_be_bytes().to_vec(), kind, at, byte))?;
    }

    #[test]
    fn cursors_and_start_state_load_or_fail_typed(raw in proptest::collection::vec(any::<u8>(), 0..256),
                                                  last in proptest::collection::vec(any::<u8>(), 0..24),
                                                  kind: u8, at: usize, byte: u8) {
        cursor_of(&raw)?;
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
        cursor_of(&mutate(vec![0, 1, 2], kind, at, byte))?;
    }
}
