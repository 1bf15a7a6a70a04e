//! An undecodable merge operand degrades one key, never the node: flushes,
//! compactions and reopening keep working, the bytes are kept aside in the
//! meta CF (named by key), and a valid write repairs the key. Records that
//! would not decode are refused before they reach the WAL.

use super::{enc, enc_opt, fresh, open, overwrite};
use crate::engine::keys::data_key;
use crate::engine::{Cf, Durability, Engine, EngineError, RocksEngine, WriteBatch};
use crate::version::{ActorId, Dot, Sibling, SiblingSet, VersionVector};

/// Starts with the record format byte, so only a full decode rejects it.
const GARBAGE: &[u8] = b"\x01\xff\xff\xff not a sibling set";

fn merge(engine: &dyn Engine, key: &[u8], set: &SiblingSet) {
    let mut b = WriteBatch::new();
    b.merge_versions("ks", key, set);
    engine.write(b).expect("merge");
}

/// A base value (not an operand): a flush must then fully merge what follows.
pub(super) fn overwrite_with(engine: &dyn Engine, key: &[u8], set: &SiblingSet) {
    let mut b = WriteBatch::new();
    b.put_versions("ks", key, set);
    engine.write(b).expect("put");
}

pub(super) fn inject_garbage(engine: &dyn Engine, key: &[u8]) {
    let mut b = WriteBatch::new();
    b.merge_raw_unchecked(&data_key("ks", key).unwrap(), GARBAGE);
    engine.write(b).expect("RocksDB accepts any operand");
}

/// The quarantined operands of `ks/key`, as kept in the meta CF.
pub(super) fn kept_aside(engine: &dyn Engine, key: &[u8]) -> Vec<Vec<u8>> {
    let mut prefix = b"quarantine/".to_vec();
    prefix.extend_from_slice(&data_key("ks", key).unwrap());
    let mut end = prefix.clone();
    end.extend_from_slice(&[0xff; 17]); // past every 16-byte hash
    engine
        .scan_raw(Cf::Meta, &prefix, &end, 100)
        .unwrap()
        .into_iter()
        .map(|(_, v)| v)
        .collect()
}

/// Other keys work; `bad` reads as `want` with the garbage kept aside once.
fn check_degraded(rocks: &RocksEngine, want: &SiblingSet, round: u8) {
    let other = format!("other-{round}");
    merge(rocks, other.as_bytes(), &fresh(9, b"still writable"));
    assert!(rocks
        .get_versions("ks", other.as_bytes())
        .unwrap()
        .is_some());
    assert_eq!(
        enc_opt(&rocks.get_versions("ks", b"bad").unwrap()),
        Some(enc(want)),
        "the decodable writes of the key are kept"
    );
    assert_eq!(kept_aside(rocks, b"bad"), vec![GARBAGE.to_vec()]);
}

#[test]
fn undecodable_operand_is_quarantined_and_the_node_keeps_working() {
    let dir = tempfile::tempdir().unwrap();
    let rocks = open(dir.path(), |_| {});
    let first = fresh(1, b"first");
    let later = fresh(2, b"later");
    overwrite_with(&rocks, b"bad", &first);
    inject_garbage(&rocks, b"bad");
    merge(&rocks, b"bad", &later);
    let mut want = first.clone();
    want.merge(&later);

    rocks
        .compact_data()
        .expect("a flush with an undecodable operand succeeds");
    check_degraded(&rocks, &want, 0);
    rocks.compact_data().expect("compaction after the move");
    check_degraded(&rocks, &want, 1);
    let raw = rocks
        .get_raw(Cf::Data, &data_key("ks", b"bad").unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(
        SiblingSet::decode(&raw).map(|s| enc(&s)),
        Ok(enc(&want)),
        "once kept aside, the record on disk is a plain record again"
    );
    drop(rocks);

    let rocks = open(dir.path(), |_| {});
    check_degraded(&rocks, &want, 2);
    // The repair: a valid write over what the key holds.
    let repaired = overwrite(&want, 3, Some(b"repaired"), 7);
    merge(&rocks, b"bad", &repaired);
    assert_eq!(
        enc_opt(&rocks.get_versions("ks", b"bad").unwrap()),
        Some(enc(&repaired))
    );
}

#[test]
fn reopen_with_an_undecodable_operand_in_the_wal() {
    for durability in [Durability::Sync, Durability::Periodic { interval_ms: 10 }] {
        let dir = tempfile::tempdir().unwrap();
        let rocks = open(dir.path(), |o| o.durability = durability);
        let first = fresh(1, b"first");
        overwrite_with(&rocks, b"bad", &first);
        inject_garbage(&rocks, b"bad");
        drop(rocks); // the operand is only in the WAL (and the memtable)

        let rocks = open(dir.path(), |o| o.durability = durability);
        check_degraded(&rocks, &first, 0);
        rocks.compact_data().unwrap();
        check_degraded(&rocks, &first, 1);
    }
}

#[test]
fn a_key_of_only_garbage_reads_as_absent_and_takes_a_new_write() {
    let dir = tempfile::tempdir().unwrap();
    let rocks = open(dir.path(), |_| {});
    inject_garbage(&rocks, b"bad");
    inject_garbage(&rocks, b"bad");
    rocks.compact_data().unwrap();
    assert_eq!(enc_opt(&rocks.get_versions("ks", b"bad").unwrap()), None);
    assert_eq!(kept_aside(&rocks, b"bad"), vec![GARBAGE.to_vec()]);
    let new = fresh(4, b"new");
    merge(&rocks, b"bad", &new);
    rocks.compact_data().unwrap();
    assert_eq!(
        enc_opt(&rocks.get_versions("ks", b"bad").unwrap()),
        Some(enc(&new))
    );
}

#[test]
fn records_that_would_not_decode_are_refused_before_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let rocks = open(dir.path(), |_| {});
    let actor = ActorId::from(5);
    // A wrapped counter: dot 0, which no clock covers.
    let mut wrapped = SiblingSet::new();
    let mut clock = VersionVector::new();
    clock.advance_to(actor, u64::MAX);
    wrapped.clock = clock;
    wrapped.siblings.push(Sibling {
        dot: Dot::new(actor, 0),
        value: Some(bytes::Bytes::from_static(b"v")),
        timestamp_ms: 1,
    });
    // A sibling its clock does not cover.
    let mut uncovered = fresh(5, b"v");
    uncovered.siblings[0].dot.counter = 2;
    for bad in [&wrapped, &uncovered] {
        for as_merge in [true, false] {
            let mut b = WriteBatch::new();
            b.put_raw(Cf::Meta, b"same batch", b"v");
            if as_merge {
                b.merge_versions("ks", b"k", bad);
            } else {
                b.put_versions("ks", b"k", bad);
            }
            match rocks.write(b) {
                Err(e @ EngineError::InvalidRecord { .. }) => assert!(!e.is_retriable()),
                other => panic!("want InvalidRecord, got {other:?}"),
            }
            assert_eq!(rocks.get_raw(Cf::Meta, b"same batch").unwrap(), None);
            assert_eq!(enc_opt(&rocks.get_versions("ks", b"k").unwrap()), None);
        }
    }
}

mod props {
    //! The fold RocksDB runs in any grouping (partial merges, then a full
    //! merge) gives what one flat fold gives: every decodable write joined,
    //! every undecodable operand kept until released.

    use proptest::prelude::*;
    use xxhash_rust::xxh3::xxh3_128;

    use super::super::{enc, fresh};
    use crate::engine::quarantine::{release_operand, Fold, Stored};
    use crate::version::SiblingSet;

    #[derive(Debug, Clone)]
    enum Part {
        Valid(u64, u8),
        Garbage(Vec<u8>),
        Release(Vec<usize>),
    }

    fn part() -> impl Strategy<Value = Part> {
        prop_oneof![
            (1u64..4, any::<u8>()).prop_map(|(a, v)| Part::Valid(a, v)),
            // 0xEE is no format version and no envelope tag: never decodes.
            proptest::collection::vec(any::<u8>(), 0..6).prop_map(|mut b| {
                b.insert(0, 0xEE);
                Part::Garbage(b)
            }),
            proptest::collection::vec(0usize..8, 0..3).prop_map(Part::Release),
        ]
    }

    fn fold(parts: &[Vec<u8>], full: bool) -> Vec<u8> {
        let mut f = Fold::default();
        for p in parts {
            f.add(p);
        }
        f.finish(full)
    }

    proptest! {
        #[test]
        fn any_grouping_folds_alike(
            parts in proptest::collection::vec(part(), 1..12),
            cuts in proptest::collection::vec(any::<bool>(), 12),
        ) {
            let garbage: Vec<Vec<u8>> = parts.iter().filter_map(|p| match p {
                Part::Garbage(b) => Some(b.clone()),
                _ => None,
            }).collect();
            let mut released = std::collections::BTreeSet::new();
            let mut want = SiblingSet::default();
            let bytes: Vec<Vec<u8>> = parts.iter().map(|p| match p {
                Part::Valid(a, v) => {
                    let s = fresh(*a, &[*v]);
                    want.merge(&s);
                    enc(&s)
                }
                Part::Garbage(b) => b.clone(),
                Part::Release(ix) => {
                    let hashes: Vec<u128> = ix.iter().filter_map(|&i| garbage.get(i))
                        .map(|b| xxh3_128(b)).collect();
                    released.extend(hashes.iter().copied());
                    release_operand(hashes)
                }
            }).collect();

            let flat = fold(&bytes, true);
            let mut chunks = vec![Vec::new()];
            for (i, b) in bytes.iter().enumerate() {
                chunks.last_mut().unwrap().push(b.clone());
                if cuts[i] { chunks.push(Vec::new()); }
            }
            let partials: Vec<Vec<u8>> =
                chunks.iter().filter(|c| !c.is_empty()).map(|c| fold(c, false)).collect();
            prop_assert_eq!(&fold(&partials, true), &flat);

            let mut left: Vec<u128> = garbage.iter().map(|b| xxh3_128(b))
                .filter(|h| !released.contains(h)).collect();
            left.sort();
            left.dedup();
            let any_valid = parts.iter().any(|p| matches!(p, Part::Valid(..)));
            match crate::engine::quarantine::parse(&flat).unwrap() {
                Stored::Plain(set) => {
                    prop_assert!(left.is_empty());
                    prop_assert_eq!(enc(&set), enc(&want));
                }
                Stored::Quarantined(f) => {
                    prop_assert_eq!(f.bad.keys().copied().collect::<Vec<_>>(), left);
                    prop_assert_eq!(f.good.map(|s| enc(&s)), any_valid.then(|| enc(&want)));
                }
            }
        }
    }
}
