//! Opening RocksDB for [`RocksEngine`](super::RocksEngine): the
//! [`EngineOptions`] a node chooses and the database and column-family
//! options they become (a shared LRU block cache, bloom filters, LZ4 with
//! ZSTD at the bottommost level, the sibling-set merge operator on `data`).
//! Must not read or write records.

use std::path::Path;

use rocksdb::{BlockBasedOptions, Cache, ColumnFamilyDescriptor, DBCompressionType, Options, DB};

use super::error::rocks;
use super::merge;
use crate::engine::{Cf, Durability, EngineError, Limits};

/// How to open a [`RocksEngine`].
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// When a write is durable.
    pub durability: Durability,
    /// Bytes of the LRU block cache shared by all column families.
    pub block_cache_bytes: usize,
    /// Size limits enforced on writes.
    pub limits: Limits,
    /// Keep RocksDB statistics (small CPU cost); enables [`RocksEngine::wal_syncs`].
    pub statistics: bool,
    /// Flush and compaction threads.
    pub background_jobs: i32,
    /// Bytes of one memtable per column family (RocksDB's default 64 MiB).
    pub write_buffer_bytes: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        EngineOptions {
            durability: Durability::default(),
            block_cache_bytes: 256 << 20,
            limits: Limits::default(),
            statistics: false,
            background_jobs: cpus.clamp(2, 8) as i32,
            write_buffer_bytes: 64 << 20,
        }
    }
}

/// A database just opened, with what the engine keeps of its opening.
pub(super) struct Opened {
    pub db: DB,
    /// The database options, kept for their statistics.
    pub db_opts: Options,
    /// The block cache every column family shares.
    pub cache: Cache,
}

/// Opens (creating if missing) the database at `path` with every column
/// family; returns it with the options kept for statistics and the cache.
pub(super) fn open_db(path: &Path, opts: &EngineOptions) -> Result<Opened, EngineError> {
    let cache = Cache::new_lru_cache(opts.block_cache_bytes);

    let mut db_opts = Options::default();
    db_opts.create_if_missing(true);
    db_opts.create_missing_column_families(true);
    db_opts.set_max_background_jobs(opts.background_jobs);
    db_opts.set_bytes_per_sync(1 << 20);
    if opts.statistics {
        db_opts.enable_statistics();
    }

    let descriptors = Cf::ALL.map(|cf| {
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&cache);
        table.set_bloom_filter(10.0, false);
        table.set_whole_key_filtering(true);
        let mut cf_opts = Options::default();
        cf_opts.set_block_based_table_factory(&table);
        cf_opts.set_compression_type(DBCompressionType::Lz4);
        cf_opts.set_bottommost_compression_type(DBCompressionType::Zstd);
        cf_opts.set_write_buffer_size(opts.write_buffer_bytes);
        if cf == Cf::Data {
            cf_opts.set_merge_operator(merge::NAME, merge::full_merge, merge::partial_merge);
        }
        ColumnFamilyDescriptor::new(cf.name(), cf_opts)
    });
    let db = DB::open_cf_descriptors(&db_opts, path, descriptors).map_err(rocks)?;
    Ok(Opened { db, db_opts, cache })
}
