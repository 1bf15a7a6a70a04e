//! Point reads tried from the block cache first (`engine/rocks/read.rs`,
//! issue 14): a record that is not cached is still read whole and right,
//! and the same as when it is.

use super::{enc_opt, fresh, open, overwrite};
use crate::engine::{Engine, MemoryEngine, WriteBatch};
use crate::version::SiblingSet;

/// Writes, as merge operands spread over two flushed files and the
/// memtable, updates of keys `0..keys` to `engines`; returns the sets.
fn write_history(engines: &[&dyn Engine], keys: u32) -> Vec<SiblingSet> {
    let mut sets = vec![SiblingSet::default(); keys as usize];
    for round in 0..3u64 {
        for (k, set) in sets.iter_mut().enumerate() {
            let mut other = fresh(10 + round, format!("r{round}").as_bytes());
            other = overwrite(&other, 20 + round, Some(&round.to_be_bytes()), round);
            *set = overwrite(set, 1, Some(format!("{k}/{round}").as_bytes()), round);
            set.merge(&other);
            for engine in engines {
                let mut b = WriteBatch::new();
                b.merge_versions("ks", &k.to_be_bytes(), set);
                engine.write(b).unwrap();
            }
        }
    }
    sets
}

/// A block cache of one byte keeps no block, so every read of a flushed
/// record misses it and goes to the files (off the worker: this runs on a
/// multi-threaded runtime's worker, where that is a blocking section); a
/// normal cache serves the second read. Both give what a model engine
/// holds, for every key and for absent keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn records_not_in_the_cache_read_the_same_as_cached_ones() {
    let (cold_dir, warm_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let model = MemoryEngine::default();
    let keys = 200u32;
    {
        let cold = open(cold_dir.path(), |o| o.block_cache_bytes = 1);
        let warm = open(warm_dir.path(), |_| {});
        write_history(&[&model, &cold, &warm], keys);
        // Flush via a full compaction, then a last memtable operand.
        cold.compact_data().unwrap();
        warm.compact_data().unwrap();
        let extra = fresh(99, b"memtable");
        for engine in [&model as &dyn Engine, &cold, &warm] {
            let mut b = WriteBatch::new();
            b.merge_versions("ks", &7usize.to_be_bytes(), &extra);
            engine.write(b).unwrap();
        }
    }
    let stats = |o: &mut crate::engine::EngineOptions| o.statistics = true;
    let cold = open(cold_dir.path(), |o| {
        o.block_cache_bytes = 1;
        stats(o)
    });
    let warm = open(warm_dir.path(), stats);
    for pass in 0..2 {
        for k in 0..keys as usize + 5 {
            let key = k.to_be_bytes();
            let want = enc_opt(&model.get_versions("ks", &key).unwrap());
            assert_eq!(k < keys as usize, want.is_some());
            let from_files = enc_opt(&cold.get_versions("ks", &key).unwrap());
            let cached = enc_opt(&warm.get_versions("ks", &key).unwrap());
            assert_eq!(from_files, want, "key {k}, pass {pass}, no cache");
            assert_eq!(cached, want, "key {k}, pass {pass}, cache");
        }
    }
    // The cold engine's reads did go to the files; the warm one's second
    // pass was served by its cache.
    let (cold, warm) = (cold.stats().unwrap(), warm.stats().unwrap());
    assert!(
        cold.block_cache_misses.unwrap() >= u64::from(keys),
        "{cold:?}"
    );
    assert!(
        warm.block_cache_hits.unwrap() >= u64::from(keys),
        "{warm:?}"
    );
}
