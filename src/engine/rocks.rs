//! [`RocksEngine`]: the product [`Engine`], on RocksDB. The only file (with
//! its submodules) that imports `rocksdb`.
//!
//! Owns opening the database (column families `data`, `hints`, `meta`; a
//! shared LRU block cache; bloom filters; LZ4 with ZSTD at the bottommost
//! level; the sibling-set merge operator in [`merge`]) and mapping
//! [`Durability`] onto write options (and, in [`set_aside`], moving
//! quarantined operands out of records they are read from):
//!
//! * `Sync`: every write has `sync = true`. RocksDB's write thread is a
//!   group commit: while a leader writes and fsyncs the WAL, the writers that
//!   arrive queue up and the next leader writes and fsyncs all of them at
//!   once, so N concurrent writers share one fsync (measured in the bench).
//! * `Periodic`: `sync = false` (the WAL reaches the OS on every write) and a
//!   [`syncer`] thread fsyncs it every interval.
//! * `None`: `disable_wal = true`.
//!
//! Every write is first tried with `no_slowdown`; one RocksDB would stall
//! (flushes or compactions behind) is written again off the async worker
//! ([`stall`], review M2). Every point read is first tried from the memtables
//! and block cache alone; one that needs the files is read again off the
//! async worker ([`read`], issue 14).
//!
//! Submodules: [`open`] (options → the database), [`scan`] (range scans),
//! [`error`] (`rocksdb::Error` → [`EngineError`] by kind; nothing else
//! sees a RocksDB error), [`latch`] (a failed sync refuses every later
//! write, and marks the directory for the next start), [`inject`] (failed
//! syncs and writes faked for tests and `--fault-injection`), [`read`],
//! [`stall`], [`set_aside`], [`syncer`], [`merge`], [`stats`].
//!
//! Must not contain replication logic: it stores what it is given.

mod error;
mod inject;
mod latch;
mod merge;
mod open;
mod read;
mod scan;
mod set_aside;
mod stall;
mod stats;
mod syncer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rocksdb::{Cache, ColumnFamily, ErrorKind, Options, DB};

use super::batch::Op;
use super::keys;
use super::InjectedFailure;
use super::{record_name, Cf, Durability, Engine, EngineError, Limits, RawEntry, WriteBatch};
use crate::version::SiblingSet;
use error::rocks;
pub use open::EngineOptions;

/// The RocksDB-backed engine. Cheap to share behind an `Arc`.
pub struct RocksEngine {
    /// Shared with the periodic syncer thread.
    db: Arc<DB>,
    /// Kept for statistics tickers.
    db_opts: Options,
    /// The block cache every column family shares (for its usage).
    cache: Cache,
    /// Client and replication writes, durable per `durability`.
    writes: stall::WriteOpts,
    /// Writes nobody waits on to be durable (the read path's set-aside):
    /// never an fsync of their own; see `set_aside`.
    aside_writes: stall::WriteOpts,
    /// Point reads: from the cache, else from the files off the worker.
    reads: read::ReadOpts,
    limits: Limits,
    durability: Durability,
    statistics: bool,
    path: PathBuf,
    /// First failed sync (the periodic syncer's, an explicit
    /// [`Engine::flush`]'s, a write's WAL write or fsync); once set, writes
    /// are refused.
    latch: Arc<latch::Latch>,
    /// Failed syncs and writes faked by tests and, on a node run with
    /// `--fault-injection`, by its admin port; shared with the syncer.
    injected: Arc<inject::Injected>,
    /// The clock incarnation in use; renewed by `set_aside`.
    incarnation: super::incarnation::Current,
    /// `Periodic` only. Holds its own `Arc<DB>`; stopped explicitly in
    /// `Drop` before the final WAL sync.
    syncer: Option<syncer::PeriodicSyncer>,
}

impl RocksEngine {
    /// Opens (creating if missing) the database at `path`.
    pub fn open(path: impl AsRef<Path>, opts: EngineOptions) -> Result<Self, EngineError> {
        let path = path.as_ref().to_path_buf();
        std::fs::create_dir_all(&path)?;
        let open::Opened { db, db_opts, cache } = open::open_db(&path, &opts)?;
        let db = Arc::new(db);

        let latch = Arc::new(latch::Latch::new(&path));
        let injected = Arc::new(inject::Injected::default());
        let syncer = match opts.durability {
            Durability::Periodic { interval_ms } => Some(syncer::PeriodicSyncer::start(
                db.clone(),
                Duration::from_millis(interval_ms.max(1)),
                latch.clone(),
                injected.clone(),
            )?),
            _ => None,
        };
        Ok(RocksEngine {
            db,
            db_opts,
            cache,
            writes: stall::WriteOpts::new(opts.durability, true),
            aside_writes: stall::WriteOpts::new(opts.durability, false),
            reads: read::ReadOpts::new(),
            limits: opts.limits,
            durability: opts.durability,
            statistics: opts.statistics,
            path,
            latch,
            injected,
            incarnation: Default::default(),
            syncer,
        })
    }

    /// [`Engine::flush`] before its failure is latched.
    fn flush_unlatched(&self) -> Result<(), EngineError> {
        if let Some(injected) = self.injected.sync_failure() {
            return Err(injected);
        }
        match self.durability {
            Durability::None => {
                for cf in Cf::ALL {
                    self.db.flush_cf(self.cf(cf)).map_err(rocks)?;
                }
                Ok(())
            }
            _ => self.db.flush_wal(true).map_err(rocks),
        }
    }

    /// Tests: every later flush fails as a failed fsync would.
    #[cfg(test)]
    pub(crate) fn fail_flushes(&self) {
        self.injected.set(InjectedFailure::Syncs);
    }

    /// Tests: later fsyncs and writes succeed again (as one may after a
    /// failed one).
    #[cfg(test)]
    pub(crate) fn heal_flushes(&self) {
        self.injected.set(InjectedFailure::Healed);
    }

    /// Tests: every later write fails as a failed WAL write or group-commit
    /// fsync would (RocksDB's `IOError`), once it passed the checks.
    #[cfg(test)]
    pub(crate) fn fail_writes(&self) {
        self.injected.set(InjectedFailure::Writes);
    }

    /// Where the database lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// WAL fsyncs so far, when opened with `statistics: true`.
    pub fn wal_syncs(&self) -> Option<u64> {
        self.statistics.then(|| {
            self.db_opts
                .get_ticker_count(rocksdb::statistics::Ticker::WalFileSynced)
        })
    }

    /// Flushes memtables and compacts the data CF fully (tests, benchmarks, tools).
    pub fn compact_data(&self) -> Result<(), EngineError> {
        let cf = self.cf(Cf::Data);
        self.db.flush_cf(cf).map_err(rocks)?;
        self.db.compact_range_cf(cf, None::<&[u8]>, None::<&[u8]>);
        Ok(())
    }

    /// Writes a consistent copy of the database to `dir` (which must not
    /// exist): hard links to the SST files plus the live WAL. A backup, or in
    /// tests the "older copy" a lost WAL tail leaves behind.
    pub fn checkpoint(&self, dir: impl AsRef<Path>) -> Result<(), EngineError> {
        let cp = rocksdb::checkpoint::Checkpoint::new(&*self.db).map_err(rocks)?;
        cp.create_checkpoint(dir).map_err(rocks)
    }

    fn cf(&self, cf: Cf) -> &ColumnFamily {
        // Every CF is created at open; a missing handle is a programming error.
        self.db
            .cf_handle(cf.name())
            .expect("column family opened at start-up")
    }
}

impl RocksEngine {
    /// [`Engine::write`] with the given options.
    fn write_with(&self, batch: WriteBatch, opts: &stall::WriteOpts) -> Result<(), EngineError> {
        let wb = self.rocks_batch(&batch)?;
        self.wal_write(|| opts.write(&self.db, &wb))
    }

    /// Runs `write`, a checked batch's RocksDB write, and latches its
    /// failure when its WAL write or fsync failed (review-tidy34 M2): under
    /// `Sync` a group commit's failed fsync, under `Periodic` a failed WAL
    /// append, are as much a failed sync as the syncer's or a flush's, and
    /// RocksDB may resume writes after a retryable one.
    fn wal_write<T>(
        &self,
        write: impl FnOnce() -> Result<T, rocksdb::Error>,
    ) -> Result<T, EngineError> {
        let failed = match self.injected.write_failure() {
            Some(injected) => injected,
            None => match write() {
                Ok(done) => return Ok(done),
                Err(e) => rocks(e),
            },
        };
        match error::wal_failed(&failed) {
            true => Err(self.latch.set(failed)),
            false => Err(failed),
        }
    }

    /// `batch` as a RocksDB batch, once checked and while writes are allowed.
    fn rocks_batch(&self, batch: &WriteBatch) -> Result<rocksdb::WriteBatch, EngineError> {
        batch.validate(&self.limits)?;
        if let Some(e) = self.latch.get() {
            return Err(EngineError::SyncFailed(e));
        }
        let mut wb = rocksdb::WriteBatch::default();
        for op in &batch.ops {
            match op {
                Op::Put { cf, key, value } => wb.put_cf(self.cf(*cf), key, value),
                Op::Merge { key, value } => wb.merge_cf(self.cf(Cf::Data), key, value),
                Op::Delete { cf, key } => wb.delete_cf(self.cf(*cf), key),
                Op::DeleteRange { cf, from, to } => wb.delete_range_cf(self.cf(*cf), from, to),
            }
        }
        Ok(wb)
    }
}

impl Engine for RocksEngine {
    fn write(&self, batch: WriteBatch) -> Result<(), EngineError> {
        self.write_with(batch, &self.writes)
    }

    fn write_unless_stalled(&self, batch: &WriteBatch) -> Result<bool, EngineError> {
        let wb = self.rocks_batch(batch)?;
        self.wal_write(|| self.writes.write_unless_stopped(&self.db, &wb))
    }

    fn wait_while_stalled(&self) -> Result<(), EngineError> {
        self.writes.wait_while_stopped(&self.db).map_err(rocks)
    }

    fn get_versions(&self, keyspace: &str, key: &[u8]) -> Result<Option<SiblingSet>, EngineError> {
        let dk = keys::data_key(keyspace, key)?;
        let got = self.reads.get(&self.db, self.cf(Cf::Data), &dk);
        match got.map(|(got, _tier)| got) {
            Ok(Some(bytes)) => self.stored(keyspace, key, &dk, &bytes),
            Ok(None) => Ok(None),
            Err(e) if e.kind() == ErrorKind::Corruption => Err(EngineError::Corrupt {
                what: record_name(keyspace, key),
                detail: e.to_string(),
            }),
            Err(e) => Err(rocks(e)),
        }
    }

    fn get_raw(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        let (got, _tier) = self.reads.get(&self.db, self.cf(cf), key).map_err(rocks)?;
        Ok(got.map(|v| v.to_vec()))
    }

    fn scan_raw(
        &self,
        cf: Cf,
        from: &[u8],
        to: &[u8],
        limit: usize,
    ) -> Result<Vec<RawEntry>, EngineError> {
        scan::raw(self, cf, from, to, limit)
    }

    fn scan_token_range(
        &self,
        keyspace: &str,
        start: u64,
        end: u64,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, SiblingSet)>, EngineError> {
        scan::token_range(self, keyspace, start, end, after, limit)
    }

    fn limits(&self) -> &Limits {
        &self.limits
    }

    /// A failed flush is latched as the periodic syncer's failure is: after
    /// a failed fsync the kernel may have dropped the dirty pages while a
    /// later fsync succeeds ("fsyncgate"), so the writes before it may be
    /// lost while later ones become durable. Every later write is refused
    /// ([`EngineError::SyncFailed`]): a caller whose batch was written but
    /// not flushed cannot make a later state durable on top of it
    /// (review-layout33 M1: a layout adoption's batch written, its flush
    /// failed, memory left on the old layout, then an acceptor write made
    /// that stale state durable under the new layout).
    /// Once a sync failed, no later flush answers `Ok` either: a peer or a
    /// stream asking for durability must not be told its rows are durable
    /// after an earlier fsync failed (review-me33 M1).
    /// A flush that failed only for a contention, a shutdown or a refused
    /// argument is not latched (review-tidy34 L2: not ready until a restart
    /// would be too much for it).
    fn flush(&self) -> Result<(), EngineError> {
        if let Some(e) = self.latch.get() {
            self.latch.retry_mark();
            return Err(EngineError::SyncFailed(e));
        }
        match self.flush_unlatched() {
            Err(e) if error::flush_failed(&e) => Err(self.latch.set(e)),
            done => done,
        }
    }

    fn incarnation(&self) -> &super::incarnation::Current {
        &self.incarnation
    }

    fn write_waits_for_sync(&self) -> bool {
        self.durability == Durability::Sync
    }

    fn stats(&self) -> Option<super::stats::EngineStats> {
        let mut stats = stats::collect(&self.db, &self.cache, &self.db_opts, self.statistics);
        stats.writes_refused = self.writes_refused().is_some();
        Some(stats)
    }

    fn writes_refused(&self) -> Option<String> {
        self.latch.get()
    }

    fn sync_failure_marked(&self) -> Result<bool, EngineError> {
        self.latch.marked()
    }

    fn clear_sync_failure_mark(&self) -> Result<(), EngineError> {
        self.latch.unmark()
    }

    fn inject_failure(&self, failure: InjectedFailure) -> bool {
        self.injected.set(failure);
        true
    }
}

impl Drop for RocksEngine {
    fn drop(&mut self) {
        // Stop the syncer first so its Arc<DB> is released, then make the
        // last interval durable: a clean shutdown loses nothing.
        drop(self.syncer.take());
        if let Err(e) = self.flush() {
            tracing::error!(error = %e, path = %self.path.display(), "final WAL sync on close failed");
        }
    }
}
