//! What the engine reports about itself for monitoring: a small typed
//! snapshot ([`EngineStats`]) that [`super::Engine::stats`] returns and the
//! admin port publishes as gauges. Plain data; must not import `rocksdb`
//! (only [`super::rocks`] fills it in) and must not publish anything itself.
use super::Cf;

/// One column family's sizes and compaction debt.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CfStats {
    /// Active and unflushed immutable memtables, in bytes.
    pub memtable_bytes: u64,
    /// Every SST file of the column family (live and obsolete), in bytes.
    pub sst_bytes: u64,
    /// Bytes compaction must rewrite to bring every level under its target.
    pub pending_compaction_bytes: u64,
    /// RocksDB's estimate of the number of keys.
    pub estimated_keys: u64,
}

/// A snapshot of the engine's statistics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EngineStats {
    /// Per column family, in [`Cf::ALL`] order.
    pub column_families: Vec<(Cf, CfStats)>,
    /// Bytes in the block cache (shared by every column family).
    pub block_cache_usage_bytes: u64,
    /// The block cache's capacity.
    pub block_cache_capacity_bytes: u64,
    /// Block cache hits and misses since the engine opened, when the engine
    /// keeps statistics.
    pub block_cache_hits: Option<u64>,
    pub block_cache_misses: Option<u64>,
    /// Microseconds writes were stalled (slowed down or stopped by too many
    /// memtables, L0 files or pending compaction bytes) since the engine
    /// opened, when the engine keeps statistics.
    pub stall_micros: Option<u64>,
    /// Compactions and flushes running now.
    pub running_compactions: u64,
    pub running_flushes: u64,
    /// An fsync failed and the engine refuses every write until the node
    /// restarts ([`super::EngineError::SyncFailed`]).
    pub writes_refused: bool,
}

impl EngineStats {
    /// Hits / (hits + misses) of the block cache since the engine opened;
    /// `None` without statistics or before the first lookup.
    pub fn block_cache_hit_ratio(&self) -> Option<f64> {
        let (hits, misses) = (self.block_cache_hits?, self.block_cache_misses?);
        let total = hits + misses;
        (total > 0).then(|| hits as f64 / total as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hit_ratio_needs_statistics_and_lookups() {
        let mut s = EngineStats::default();
        assert_eq!(s.block_cache_hit_ratio(), None);
        s.block_cache_hits = Some(0);
        s.block_cache_misses = Some(0);
        assert_eq!(s.block_cache_hit_ratio(), None);
        s.block_cache_hits = Some(3);
        s.block_cache_misses = Some(1);
        assert_eq!(s.block_cache_hit_ratio(), Some(0.75));
    }
}
