//! RocksEngine behaviour: limits, corrupt records (a merge onto one is
//! quarantined), token-range scans, the
//! merge operator against read-modify-write, group commit and durability.

use std::sync::Arc;

use super::{enc, enc_opt, fresh, open, overwrite, put};
use crate::engine::keys::data_key;
use crate::engine::{Cf, Durability, Engine, EngineError, Limits, MemoryEngine, WriteBatch};
use crate::ring::token_of;

#[test]
fn oversized_entries_are_rejected_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let rocks = open(dir.path(), |_| {});
    let memory = MemoryEngine::default();
    for engine in [&rocks as &dyn Engine, &memory] {
        let limits = engine.limits().clone();
        assert_eq!(
            (limits.max_key_bytes, limits.max_value_bytes),
            (1024, 1 << 20)
        );

        let mut b = WriteBatch::new();
        b.put_versions("ks", b"good", &fresh(1, b"v"));
        b.merge_versions("ks", &[7u8; 1025], &fresh(1, b"v"));
        match engine.write(b) {
            Err(EngineError::KeyTooLarge {
                size: 1025,
                limit: 1024,
            }) => {}
            other => panic!("want KeyTooLarge, got {other:?}"),
        }

        let mut b = WriteBatch::new();
        b.put_raw(Cf::Meta, b"good", b"v");
        b.put_versions("ks", b"big", &fresh(1, &vec![0u8; (1 << 20) + 1]));
        match engine.write(b) {
            Err(EngineError::ValueTooLarge { size, limit }) => {
                assert_eq!((size, limit), ((1 << 20) + 1, 1 << 20));
            }
            other => panic!("want ValueTooLarge, got {other:?}"),
        }

        let mut b = WriteBatch::new();
        b.put_raw(Cf::Hints, &vec![1u8; limits.max_raw_key_bytes + 1], b"v");
        assert!(matches!(
            engine.write(b),
            Err(EngineError::KeyTooLarge { .. })
        ));

        let mut b = WriteBatch::new();
        b.put_raw(Cf::Meta, b"good", b"v");
        b.put_versions(&"x".repeat(256), b"k", &fresh(1, b"v"));
        assert!(matches!(
            engine.write(b),
            Err(EngineError::InvalidKeyspace { .. })
        ));

        assert!(engine.get_versions("ks", b"good").unwrap().is_none());
        assert!(engine.get_versions("ks", b"big").unwrap().is_none());
        assert!(engine.get_raw(Cf::Meta, b"good").unwrap().is_none());
        // Exactly at the limits is fine.
        let mut b = WriteBatch::new();
        b.put_versions("ks", &[7u8; 1024], &fresh(1, &vec![0u8; 1 << 20]));
        engine.write(b).expect("at the limit");
    }
}

#[test]
fn limits_are_configurable() {
    let dir = tempfile::tempdir().unwrap();
    let small = Limits {
        max_key_bytes: 4,
        max_value_bytes: 8,
        ..Limits::default()
    };
    let rocks = open(dir.path(), |o| o.limits = small);
    let mut b = WriteBatch::new();
    b.put_versions("ks", b"12345", &fresh(1, b"v"));
    assert!(matches!(
        rocks.write(b),
        Err(EngineError::KeyTooLarge { size: 5, limit: 4 })
    ));
    let mut b = WriteBatch::new();
    b.merge_versions("ks", b"1234", &fresh(1, b"123456789"));
    assert!(matches!(
        rocks.write(b),
        Err(EngineError::ValueTooLarge { size: 9, limit: 8 })
    ));
}

#[test]
fn corrupt_record_is_reported_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let rocks = open(dir.path(), |_| {});
    let memory = MemoryEngine::default();
    let garbage = b"\xEE not a sibling set".to_vec();
    let dk = data_key("ks", b"bad").unwrap();
    for engine in [&rocks as &dyn Engine, &memory] {
        let mut b = WriteBatch::new();
        b.put_raw(Cf::Data, &dk, &garbage);
        engine.write(b).unwrap();
        put(engine, "ks", b"fine", b"v");

        let err = engine.get_versions("ks", b"bad").unwrap_err();
        match &err {
            EngineError::Corrupt { what, .. } => assert!(what.contains("ks/bad"), "{what}"),
            other => panic!("want Corrupt, got {other:?}"),
        }
        assert!(!err.is_retriable());
        assert_eq!(
            engine.get_raw(Cf::Data, &dk).unwrap(),
            Some(garbage.clone())
        );
        let scan = engine.scan_token_range("ks", 0, 0, None, 100);
        assert!(matches!(scan, Err(EngineError::Corrupt { .. })), "{scan:?}");
        assert!(engine.get_versions("ks", b"fine").unwrap().is_some());
    }
    // A merge onto the corrupt record quarantines it in RocksDB: the key
    // reads as the new write and the old bytes are kept aside in the meta
    // CF (see tests/quarantine.rs). The memory engine refuses the merge.
    let new = fresh(2, b"new");
    let mut b = WriteBatch::new();
    b.merge_versions("ks", b"bad", &new);
    rocks.write(b.clone()).unwrap();
    assert_eq!(
        enc_opt(&rocks.get_versions("ks", b"bad").unwrap()),
        Some(enc(&new))
    );
    let kept = rocks.quarantined(10).unwrap();
    assert_eq!(kept.len(), 1);
    assert!(kept[0].0.contains("ks/bad"), "{}", kept[0].0);
    assert_eq!(kept[0].1, garbage);
    assert!(matches!(memory.write(b), Err(EngineError::Corrupt { .. })));
    assert_eq!(memory.get_raw(Cf::Data, &dk).unwrap(), Some(garbage));
    // An explicit overwrite is the repair.
    let good = fresh(3, b"repaired");
    for engine in [&rocks as &dyn Engine, &memory] {
        let mut b = WriteBatch::new();
        b.put_versions("ks", b"bad", &good);
        engine.write(b).unwrap();
        assert_eq!(
            enc_opt(&engine.get_versions("ks", b"bad").unwrap()),
            Some(enc(&good))
        );
    }
}

#[test]
fn token_range_scans_wrap_and_page() {
    let dir = tempfile::tempdir().unwrap();
    let rocks = open(dir.path(), |_| {});
    let memory = MemoryEngine::default();
    let keys: Vec<Vec<u8>> = (0..300).map(|i| format!("key-{i}").into_bytes()).collect();
    for engine in [&rocks as &dyn Engine, &memory] {
        for k in &keys {
            put(engine, "ks", k, k);
        }
        put(engine, "k", b"other keyspace", b"v"); // a shorter keyspace name
        put(engine, "ks2", b"other keyspace", b"v"); // a longer one
    }
    let mut by_token: Vec<(u64, Vec<u8>)> = keys.iter().map(|k| (token_of(k), k.clone())).collect();
    by_token.sort();
    let t = |i: usize| by_token[i].0;
    let cases = [
        (t(10), t(50)),       // plain
        (t(250), t(40)),      // wrapped
        (t(100), t(100)),     // whole ring
        (0, u64::MAX),        // everything but token 0
        (u64::MAX, 0),        // wrapped to [0, 0]
        (u64::MAX, u64::MAX), // whole ring
        (t(299), t(0)),       // wrapped, boundaries inclusive/exclusive
    ];
    for (start, end) in cases {
        let inside = |tok: u64| {
            if start < end {
                tok > start && tok <= end
            } else {
                tok > start || tok <= end
            }
        };
        let want: Vec<Vec<u8>> = by_token
            .iter()
            .filter(|(tok, _)| inside(*tok))
            .map(|(_, k)| k.clone())
            .collect();
        for engine in [&rocks as &dyn Engine, &memory] {
            let all = engine
                .scan_token_range("ks", start, end, None, usize::MAX)
                .unwrap();
            let got: Vec<Vec<u8>> = all.iter().map(|(k, _)| k.clone()).collect();
            assert_eq!(got, want, "({start}, {end}]");
            let mut paged = Vec::new();
            let mut after: Option<Vec<u8>> = None;
            loop {
                let page = engine
                    .scan_token_range("ks", start, end, after.as_deref(), 7)
                    .unwrap();
                if page.is_empty() {
                    break;
                }
                after = page.last().map(|(k, _)| k.clone());
                paged.extend(page.into_iter().map(|(k, _)| k));
            }
            assert_eq!(paged, want, "paged ({start}, {end}]");
        }
    }
    assert!(rocks
        .scan_token_range("ks", 0, 0, None, 0)
        .unwrap()
        .is_empty());
}

#[test]
fn raw_scan_and_delete_range() {
    let dir = tempfile::tempdir().unwrap();
    let rocks = open(dir.path(), |_| {});
    let memory = MemoryEngine::default();
    for engine in [&rocks as &dyn Engine, &memory] {
        let mut b = WriteBatch::new();
        for i in 0u8..10 {
            b.put_raw(Cf::Hints, &[b'h', i], &[i]);
        }
        b.put_raw(Cf::Meta, &[b'h', 3], b"meta is separate");
        engine.write(b).unwrap();
        let rows = engine
            .scan_raw(Cf::Hints, &[b'h', 2], &[b'h', 6], 3)
            .unwrap();
        assert_eq!(
            rows,
            vec![
                (vec![b'h', 2], vec![2]),
                (vec![b'h', 3], vec![3]),
                (vec![b'h', 4], vec![4])
            ]
        );
        let mut b = WriteBatch::new();
        b.delete_range_raw(Cf::Hints, &[b'h', 0], &[b'h', 8]);
        b.delete_raw(Cf::Hints, &[b'h', 9]);
        engine.write(b).unwrap();
        let rows = engine.scan_raw(Cf::Hints, b"", b"\xff", 100).unwrap();
        assert_eq!(rows, vec![(vec![b'h', 8], vec![8])]);
        assert_eq!(
            engine.get_raw(Cf::Meta, &[b'h', 3]).unwrap(),
            Some(b"meta is separate".to_vec())
        );
    }
}

#[test]
fn merge_operator_matches_read_modify_write() {
    let dir = tempfile::tempdir().unwrap();
    let rocks = open(dir.path(), |_| {});
    // Replicas 1..=4 each keep their own history of key "k"; every write is
    // sent to the engine both as a merge (keyspace "m") and as a
    // read-modify-write (keyspace "r").
    let mut replicas: Vec<crate::version::SiblingSet> = vec![Default::default(); 4];
    for step in 0..200u64 {
        let r = (step % 4) as usize;
        if step % 7 == 0 {
            let other = replicas[(r + 1) % 4].clone();
            replicas[r].merge(&other);
        }
        let value = step.to_be_bytes();
        let deleted = step % 11 == 0;
        replicas[r] = overwrite(
            &replicas[r],
            r as u64 + 1,
            (!deleted).then_some(&value[..]),
            step,
        );
        let mut b = WriteBatch::new();
        b.merge_versions("m", b"k", &replicas[r]);
        rocks.write(b).unwrap();
        let mut current = rocks.get_versions("r", b"k").unwrap().unwrap_or_default();
        current.merge(&replicas[r]);
        let mut b = WriteBatch::new();
        b.put_versions("r", b"k", &current);
        rocks.write(b).unwrap();
        if step % 50 == 0 {
            rocks.compact_data().unwrap();
        }
    }
    let merged = rocks.get_versions("m", b"k").unwrap();
    let rmw = rocks.get_versions("r", b"k").unwrap();
    assert_eq!(enc_opt(&merged), enc_opt(&rmw));
    rocks.compact_data().unwrap();
    drop(rocks);
    let rocks = open(dir.path(), |_| {});
    assert_eq!(
        enc_opt(&rocks.get_versions("m", b"k").unwrap()),
        enc_opt(&rmw)
    );
}

#[test]
fn sync_group_commit_shares_fsyncs() {
    let dir = tempfile::tempdir().unwrap();
    let rocks = Arc::new(open(dir.path(), |o| {
        o.durability = Durability::Sync;
        o.statistics = true;
    }));
    let (threads, per_thread) = (16, 40);
    let before = rocks.wal_syncs().unwrap();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let rocks = rocks.clone();
            std::thread::spawn(move || {
                for i in 0..per_thread {
                    put(&*rocks, "ks", format!("{t}/{i}").as_bytes(), b"v");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let writes = threads * per_thread;
    let syncs = rocks.wal_syncs().unwrap() - before;
    assert!(
        syncs >= 1 && syncs < writes as u64,
        "{syncs} fsyncs for {writes} writes"
    );
    drop(Arc::into_inner(rocks).expect("writers finished"));
    let rocks = open(dir.path(), |_| {});
    for t in 0..threads {
        for i in 0..per_thread {
            assert!(rocks
                .get_versions("ks", format!("{t}/{i}").as_bytes())
                .unwrap()
                .is_some());
        }
    }
}

#[test]
fn every_durability_survives_a_clean_reopen() {
    for durability in [
        Durability::Sync,
        Durability::Periodic { interval_ms: 10 },
        Durability::None,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let rocks = open(dir.path(), |o| o.durability = durability);
        put(&rocks, "ks", b"k", b"v");
        std::thread::sleep(std::time::Duration::from_millis(30));
        rocks.flush().unwrap();
        drop(rocks);
        let rocks = open(dir.path(), |_| {});
        assert!(
            rocks.get_versions("ks", b"k").unwrap().is_some(),
            "{durability:?}"
        );
    }
}

#[test]
fn engine_is_object_safe() {
    let engine: Arc<dyn Engine> = Arc::new(MemoryEngine::default());
    put(&*engine, "ks", b"k", b"v");
    assert!(engine.get_versions("ks", b"k").unwrap().is_some());
}
