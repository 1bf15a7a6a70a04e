//! Test helpers for `hints`: a store on the memory engine, queued entries,
//! and engine hooks that watch which threads write. Test-only.
//!
//! Must not: be used outside `#[cfg(test)]` code.

use super::queue::{Dest, Lane};
use super::store::{Loaded, Store};
use super::HintsConfig;
use crate::engine::memory::MemoryEngine;
use crate::engine::{Cf, Engine, Limits, WriteBatch};
use crate::proto::v1::internode::StreamEntry;
use std::sync::Arc;

/// The layouts of `topology::testing::four_and_one` (dc1 = a, b, c, d;
/// dc2 = x; `ks` 3 + 1): the seed, and the one where `d` has
/// decommissioned (Left).
pub(crate) fn layouts() -> (crate::layout::Layout, crate::layout::Layout) {
    let topo = crate::topology::testing::four_and_one();
    let parsed = crate::topology::Topology::parse("t.yaml", &topo).expect("parses");
    let seed = crate::layout::Layout::seed(&parsed);
    let left = seed.begin_leave("d").unwrap().finish_leave("d").unwrap();
    (seed, left)
}

/// A store on a fresh memory engine.
pub(crate) fn store() -> Arc<Store> {
    let engine: Arc<dyn Engine> = Arc::new(MemoryEngine::new(Limits::default()));
    Arc::new(Store::open(engine, HintsConfig::default()).expect("open"))
}

/// An entry for `key` (no record: the store does not look inside).
pub(crate) fn entry(key: &[u8]) -> StreamEntry {
    StreamEntry {
        keyspace: "default".into(),
        key: key.to_vec(),
        ..StreamEntry::default()
    }
}

/// Commits one entry for `key` to the backlog lane of `dest`; its seq.
pub(crate) fn put(store: &Store, dest: &Dest, key: &[u8]) -> u64 {
    let mut b = WriteBatch::new();
    let (seq, _) = store
        .enqueue(dest, Lane::Backlog, entry(key), &mut b)
        .expect("under the bound");
    store.write(b).expect("commit");
    seq
}

/// The sequence numbers on disk in the backlog lane of `dest`.
pub(crate) fn on_disk(store: &Store, dest: &Dest) -> Vec<u64> {
    let (from, to) = (dest.prefix(Lane::Backlog), dest.prefix_end(Lane::Backlog));
    let rows = store.engine().scan_raw(Cf::Hints, &from, &to, 1000);
    rows.expect("scan")
        .iter()
        .filter_map(|(k, _)| Dest::parse_key(k).map(|p| p.seq))
        .collect()
}

/// A loaded entry with sequence number `seq` (for pure tests).
pub(crate) fn loaded(seq: u64, created_ms: u64) -> Loaded {
    Loaded {
        key: Dest::Dc("dc2".into()).key(Lane::Backlog, seq),
        created_ms,
        entry: StreamEntry { seq, ..entry(b"k") },
        bytes: 10,
    }
}

/// The engine hooks that watch which threads write (they live with the
/// engine's other test hooks; `replica` tests use them too).
pub(crate) use crate::engine::testing::Threads;
