//! Test helpers for `hints`: a store on the memory engine and queued
//! entries. Test-only.
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
        .filter_map(|(k, _)| Dest::parse_key(k).map(|p| p.2))
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

/// The memory engine, remembering which threads wrote to it; a write
/// (recorded first) waits while a test holds `hold`.
pub(crate) struct ThreadsEngine {
    inner: MemoryEngine,
    pub writers: parking_lot::Mutex<Vec<std::thread::ThreadId>>,
    pub hold: parking_lot::Mutex<()>,
    /// What [`Engine::write_waits_for_sync`] answers.
    pub syncs: bool,
    /// Writes left before one fails ([`ThreadsEngine::fail_after`]);
    /// negative: none fails.
    countdown: std::sync::atomic::AtomicI64,
}

impl ThreadsEngine {
    pub(crate) fn new() -> Self {
        ThreadsEngine {
            inner: MemoryEngine::new(Limits::default()),
            writers: Default::default(),
            hold: Default::default(),
            syncs: false,
            countdown: std::sync::atomic::AtomicI64::new(-1),
        }
    }

    /// The next `n` writes succeed, the one after fails (nothing written),
    /// and later ones succeed again.
    pub(crate) fn fail_after(&self, n: i64) {
        self.countdown.store(n, std::sync::atomic::Ordering::SeqCst);
    }

    /// One whose writes wait for an fsync (`Durability::Sync`).
    pub(crate) fn syncing() -> Self {
        ThreadsEngine {
            syncs: true,
            ..Self::new()
        }
    }
}

impl Engine for ThreadsEngine {
    fn write_waits_for_sync(&self) -> bool {
        self.syncs
    }
    fn write(&self, batch: WriteBatch) -> Result<(), crate::engine::EngineError> {
        self.writers.lock().push(std::thread::current().id());
        drop(self.hold.lock());
        let left = (self.countdown).fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        if left == 0 {
            return Err(crate::engine::EngineError::Backend(
                "injected failure".into(),
            ));
        }
        if left < 0 {
            self.countdown
                .store(-1, std::sync::atomic::Ordering::SeqCst);
        }
        self.inner.write(batch)
    }
    fn get_versions(
        &self,
        keyspace: &str,
        key: &[u8],
    ) -> Result<Option<crate::version::SiblingSet>, crate::engine::EngineError> {
        self.inner.get_versions(keyspace, key)
    }
    fn get_raw(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, crate::engine::EngineError> {
        self.inner.get_raw(cf, key)
    }
    fn scan_raw(
        &self,
        cf: Cf,
        from: &[u8],
        to: &[u8],
        limit: usize,
    ) -> Result<Vec<crate::engine::RawEntry>, crate::engine::EngineError> {
        self.inner.scan_raw(cf, from, to, limit)
    }
    fn scan_token_range(
        &self,
        keyspace: &str,
        start: u64,
        end: u64,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, crate::version::SiblingSet)>, crate::engine::EngineError> {
        self.inner
            .scan_token_range(keyspace, start, end, after, limit)
    }
    fn limits(&self) -> &Limits {
        self.inner.limits()
    }
    fn flush(&self) -> Result<(), crate::engine::EngineError> {
        self.inner.flush()
    }
    fn incarnation(&self) -> &crate::engine::incarnation::Current {
        self.inner.incarnation()
    }
}
