//! Writes RocksDB would stall, kept off the async workers (review M2).
//!
//! Engine calls run inline on tokio workers (`engine/call_site.rs`): a
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
//! A write made under a lock others wait on (cleanup's deletes, under the
//! view's install lock) must not wait out a stall at all: it is written
//! only if RocksDB takes it at once (`Engine::write_unless_stalled`), and
//! otherwise the caller lets the lock go and waits here
//! (`Engine::wait_while_stalled`) before trying again.
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

    /// Writes `wb` only if RocksDB can at once: `Ok(false)`, nothing
    /// written, when it would stop or merely slow the write down (review
    /// M2 of stop 20: waiting out even a slowdown here would hold the
    /// caller's lock through it, and writes may stop meanwhile).
    pub(super) fn write_unless_stopped(
        &self,
        db: &DB,
        wb: &rocksdb::WriteBatch,
    ) -> Result<bool, rocksdb::Error> {
        match db.write_opt(wb, &self.fast) {
            Err(e) if e.kind() == ErrorKind::Incomplete => {
                metrics::counter!("geokv_engine_write_stalls_total").increment(1);
                Ok(false)
            }
            done => done.map(|()| true),
        }
    }

    /// Waits (off the async worker) until RocksDB no longer stops writes:
    /// an empty batch written as configured waits out a stop like any
    /// write, and writes nothing. Then a short pause, so a caller that
    /// was only slowed down does not spin on its retries.
    pub(super) fn wait_while_stopped(&self, db: &DB) -> Result<(), rocksdb::Error> {
        let empty = rocksdb::WriteBatch::default();
        let pause = std::time::Duration::from_millis(10);
        off_worker(|| loop {
            db.write_opt(&empty, &self.patient)?;
            // Stopped again already (or the empty write did not wait), or
            // only slowed down: either way, a moment before looking again.
            std::thread::sleep(pause);
            if !stopped(db)? {
                return Ok(());
            }
        })
    }
}

/// Whether RocksDB stops writes now (rather than only slowing them).
/// A property RocksDB does not report counts as not stopped (review L1:
/// otherwise the wait would never end).
fn stopped(db: &DB) -> Result<bool, rocksdb::Error> {
    Ok(db
        .property_int_value("rocksdb.is-write-stopped")?
        .is_some_and(|v| v != 0))
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

    /// Pauses background work and writes (1 KiB puts to the meta column
    /// family, `stall-fill-` keys) until RocksDB stops writes (too many
    /// immutable memtables); with a small memtable (tests).
    #[cfg(test)]
    pub(crate) fn stall_writes(&self) {
        self.pause_background_work();
        for i in 0..100_000 {
            let mut b = crate::engine::WriteBatch::new();
            let key = format!("stall-fill-{i}");
            b.put_raw(crate::engine::Cf::Meta, key.as_bytes(), &[7u8; 1024]);
            if !self.write_without_waiting(b).expect("fill") {
                return;
            }
        }
        panic!("writes never stalled with background work paused");
    }

    /// Writes `batch` if RocksDB can at once: `Ok(false)` when it would
    /// stop or slow it (nothing written).
    #[cfg(test)]
    pub(crate) fn write_without_waiting(
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
