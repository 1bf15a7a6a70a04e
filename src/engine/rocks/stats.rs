//! Reads [`EngineStats`] out of RocksDB: integer properties per column
//! family, the shared block cache, and statistics tickers when the engine
//! was opened with `statistics: true`. Read-only; never changes options.
//!
//! Must not: change an option or write.
use rocksdb::statistics::Ticker;
use rocksdb::{properties, Cache, Options, DB};

use crate::engine::stats::{CfStats, EngineStats};
use crate::engine::Cf;

/// A snapshot of `db`'s statistics (a property RocksDB cannot answer reads as 0).
pub(crate) fn collect(db: &DB, cache: &Cache, opts: &Options, statistics: bool) -> EngineStats {
    let int = |cf: Cf, name: &properties::PropName| -> u64 {
        db.cf_handle(cf.name())
            .and_then(|h| db.property_int_value_cf(&h, name).ok().flatten())
            .unwrap_or(0)
    };
    let column_families = Cf::ALL
        .iter()
        .map(|&cf| {
            let s = CfStats {
                memtable_bytes: int(cf, properties::CUR_SIZE_ALL_MEM_TABLES),
                sst_bytes: int(cf, properties::TOTAL_SST_FILES_SIZE),
                pending_compaction_bytes: int(cf, properties::ESTIMATE_PENDING_COMPACTION_BYTES),
                estimated_keys: int(cf, properties::ESTIMATE_NUM_KEYS),
            };
            (cf, s)
        })
        .collect();
    let db_int =
        |name: &properties::PropName| db.property_int_value(name).ok().flatten().unwrap_or(0);
    let ticker = |t: Ticker| statistics.then(|| opts.get_ticker_count(t));
    EngineStats {
        column_families,
        block_cache_usage_bytes: cache.get_usage() as u64,
        block_cache_capacity_bytes: cache.get_capacity() as u64,
        block_cache_hits: ticker(Ticker::BlockCacheHit),
        block_cache_misses: ticker(Ticker::BlockCacheMiss),
        stall_micros: ticker(Ticker::StallMicros),
        running_compactions: db_int(properties::NUM_RUNNING_COMPACTIONS),
        running_flushes: db_int(properties::NUM_RUNNING_FLUSHES),
        writes_refused: false,
    }
}
