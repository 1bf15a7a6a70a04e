//! Point reads that miss the block cache, kept off the async workers
//! (issue 14).
//!
//! Replica reads run inline on tokio workers (`engine/call_site.rs`): a
//! read from the memtable or the block cache takes microseconds. A read
//! whose blocks are not cached goes to the disk (or the OS page cache), and
//! on a slow or busy disk that is milliseconds a worker would spend waiting
//! while every task queued on it (timers, heartbeats, other requests) waits
//! too.
//!
//! So every point read is first tried with `ReadTier::BlockCache`: RocksDB
//! answers from the memtables and the block cache alone, or says
//! `Incomplete` without doing I/O. Only then is the same read done again
//! with the normal options, as a blocking section
//! ([`crate::blocking::off_worker`]): on a multi-threaded runtime's worker,
//! tokio hands the worker's queue to another thread first. Both reads see
//! the same data (the second one may see a write made in between, as any
//! later read would).
//!
//! Must not change what a read returns, only where it waits.

use rocksdb::{ColumnFamily, DBPinnableSlice, ErrorKind, ReadOptions, ReadTier, DB};

use crate::blocking::off_worker;

/// The read options of point reads: tried from the cache, then as usual.
pub(super) struct ReadOpts {
    /// Memtables and block cache only: `Incomplete` instead of I/O.
    cached: ReadOptions,
    /// RocksDB's defaults: reads what it must from the files.
    patient: ReadOptions,
}

/// Where a point read found its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tier {
    /// In the memtables or the block cache, on the calling thread.
    Cached,
    /// It needed the files, read off the async worker.
    Files,
}

impl ReadOpts {
    pub(super) fn new() -> Self {
        let mut cached = ReadOptions::default();
        cached.set_read_tier(ReadTier::BlockCache);
        ReadOpts {
            cached,
            patient: ReadOptions::default(),
        }
    }

    /// `key` in `cf`: from the cache if it can be, otherwise from the files
    /// off the async worker; and which of the two it was.
    pub(super) fn get<'a>(
        &self,
        db: &'a DB,
        cf: &ColumnFamily,
        key: &[u8],
    ) -> Result<(Option<DBPinnableSlice<'a>>, Tier), rocksdb::Error> {
        match db.get_pinned_cf_opt(cf, key, &self.cached) {
            Err(e) if e.kind() == ErrorKind::Incomplete => {
                metrics::counter!("geokv_engine_read_cache_misses_total").increment(1);
                let got = off_worker(|| db.get_pinned_cf_opt(cf, key, &self.patient))?;
                Ok((got, Tier::Files))
            }
            got => Ok((got?, Tier::Cached)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rocksdb::{BlockBasedOptions, Cache, ColumnFamilyDescriptor, Options};

    /// A database with one column family `cf` and a block cache of its own.
    fn open(path: &std::path::Path) -> DB {
        let cache = Cache::new_lru_cache(8 << 20);
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&cache);
        let mut cf_opts = Options::default();
        cf_opts.set_block_based_table_factory(&table);
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        let cfs = [ColumnFamilyDescriptor::new("cf", cf_opts)];
        DB::open_cf_descriptors(&opts, path, cfs).unwrap()
    }

    fn read(db: &DB, key: &[u8]) -> (Option<Vec<u8>>, Tier) {
        let (got, tier) = ReadOpts::new()
            .get(db, db.cf_handle("cf").unwrap(), key)
            .unwrap();
        (got.map(|v| v.to_vec()), tier)
    }

    /// A value only in an SST file, after a restart (empty block cache), is
    /// read from the files, on a multi-threaded runtime's worker (where the
    /// blocking section hands the worker's tasks away); the next read finds
    /// its block cached and gives the same bytes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_value_not_in_the_cache_is_read_from_the_files() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = open(dir.path());
            let cf = db.cf_handle("cf").unwrap();
            db.put_cf(cf, b"k", b"on disk").unwrap();
            db.put_cf(cf, b"other", b"x").unwrap();
            db.flush_cf(cf).unwrap();
        }
        let db = open(dir.path());
        let first = read(&db, b"k");
        assert_eq!(first, (Some(b"on disk".to_vec()), Tier::Files));
        let again = read(&db, b"k");
        assert_eq!(again, (Some(b"on disk".to_vec()), Tier::Cached));
    }

    /// A value in the memtable and a key that is nowhere are answered from
    /// the cache tier, with what the normal read answers.
    #[test]
    fn memtable_hits_and_absent_keys_need_no_files() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path());
        let cf = db.cf_handle("cf").unwrap();
        db.put_cf(cf, b"k", b"in memory").unwrap();
        assert_eq!(read(&db, b"k"), (Some(b"in memory".to_vec()), Tier::Cached));
        assert_eq!(read(&db, b"absent"), (None, Tier::Cached));
        let plain = db.get_cf(cf, b"k").unwrap();
        assert_eq!(plain.as_deref(), Some(&b"in memory"[..]));
    }

    /// A newer value over a flushed older one, across a restart (which may
    /// flush the replayed WAL): whichever tier answers, it is the newest
    /// value, as the normal read says.
    #[test]
    fn both_tiers_agree_on_overwritten_values_after_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = open(dir.path());
            let cf = db.cf_handle("cf").unwrap();
            db.put_cf(cf, b"k", b"old").unwrap();
            db.flush_cf(cf).unwrap();
            db.put_cf(cf, b"k", b"new").unwrap();
        }
        let db = open(dir.path());
        let cf = db.cf_handle("cf").unwrap();
        assert_eq!(read(&db, b"k").0, Some(b"new".to_vec()));
        assert_eq!(read(&db, b"k"), (Some(b"new".to_vec()), Tier::Cached));
        assert_eq!(db.get_cf(cf, b"k").unwrap(), Some(b"new".to_vec()));
    }
}
