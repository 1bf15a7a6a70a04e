//! Writes RocksDB would stall, kept off the async workers (review M2).
//!
//! Engine calls run inline on tokio workers (`replica/call_site.rs`): a
//! memtable write takes microseconds. But when flushes or compactions fall
//! behind, RocksDB stalls writers (too many immutable memtables, too many L0
//! files, too much compaction debt) for as long as the background catches
//! up; a stalled writer on an async worker would stop every task on that
//! worker (heartbeats, timers, reads), and enough of them the whole runtime.
//!
//! So every write is first tried with `no_slowdown`: RocksDB writes it if it
//! can at once and otherwise answers `Incomplete` having written nothing.
//! Only then is the same batch written again with the engine's normal
//! options, as a blocking section ([`crate::blocking::off_worker`]): on a multi-threaded
//! runtime's worker, tokio hands the worker's queue to another thread first,
//! so the runtime keeps running while this thread waits. The write keeps its
//! caller's thread, so locks the caller holds (the replica's per-key stripe,
//! which keeps a dot from being minted twice) stay held, and the batch stays
//! one atomic write.
//!
//! Must not change what is written, or when a write is durable.

use rocksdb::{ErrorKind, WriteOptions, DB};

use crate::blocking::off_worker;
use crate::engine::Durability;

/// The write options of one kind of write: tried without waiting, then as
/// configured.
pub(super) struct WriteOpts {
    /// As configured, plus `no_slowdown`.
    fast: WriteOptions,
    /// As configured.
    patient: WriteOptions,
}

impl WriteOpts {
    /// Options for `durability`; `sync` false leaves the fsync out even
    /// under [`Durability::Sync`] (for writes no caller waits to be durable).
    pub(super) fn new(durability: Durability, sync: bool) -> Self {
        let make = |no_slowdown: bool| {
            let mut o = WriteOptions::default();
            match durability {
                Durability::Sync => o.set_sync(sync),
                Durability::Periodic { .. } => o.set_sync(false),
                Durability::None => o.disable_wal(true),
            }
            o.set_no_slowdown(no_slowdown);
            o
        };
        WriteOpts {
            fast: make(true),
            patient: make(false),
        }
    }

    /// Writes `wb` at once if RocksDB can; if it would stall the write,
    /// writes it as configured off the async worker.
    pub(super) fn write(&self, db: &DB, wb: &rocksdb::WriteBatch) -> Result<(), rocksdb::Error> {
        match db.write_opt(wb, &self.fast) {
            Err(e) if e.kind() == ErrorKind::Incomplete => {
                metrics::counter!("geokv_engine_write_stalls_total").increment(1);
                off_worker(|| db.write_opt(wb, &self.patient))
            }
            done => done,
        }
    }
}

impl super::RocksEngine {
    /// Stops flushes and compactions until [`Self::continue_background_work`]
    /// (tests: with a small memtable, writes then stall).
    #[cfg(test)]
    pub(crate) fn pause_background_work(&self) {
        self.db
            .pause_background_work()
            .expect("pause background work");
    }

    /// Undoes one [`Self::pause_background_work`].
    #[cfg(test)]
    pub(crate) fn continue_background_work(&self) {
        self.db
            .continue_background_work()
            .expect("continue background work");
    }

    /// Writes `batch` if RocksDB can at once: `Ok(false)` when it would
    /// stall it (nothing written).
    #[cfg(test)]
    pub(crate) fn write_unless_stalled(
        &self,
        batch: crate::engine::WriteBatch,
    ) -> Result<bool, crate::engine::EngineError> {
        let wb = self.rocks_batch(&batch)?;
        match self.db.write_opt(&wb, &self.writes.fast) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == ErrorKind::Incomplete => Ok(false),
            Err(e) => Err(super::rocks(e)),
        }
    }
}
