//! Periodic collection of the metrics nobody increments: the process's
//! (CPU, memory, file descriptors, threads; through `metrics-process`) and
//! the storage engine's ([`EngineStats`] from [`Engine::stats`], published
//! as gauges per column family). Runs every [`INTERVAL`] until shutdown.
//! Must not read RocksDB directly: only the engine's typed snapshot.
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::catalog::Kind::{self, Counter, Gauge};
use crate::engine::{CallSite, Engine, EngineStats};
use crate::topology::NodeInfo;

/// How often process and engine figures are refreshed.
pub const INTERVAL: Duration = Duration::from_secs(5);

/// The node-info and engine families this module publishes (described by the catalog).
pub const FAMILIES: &[(Kind, &str, &str)] = &[
    (
        Gauge,
        "geokv_node_info",
        "Always 1; the labels name this node, its datacenter and rack.",
    ),
    (
        Gauge,
        "geokv_engine_memtable_bytes",
        "Active and unflushed memtables, by column family, in bytes.",
    ),
    (
        Gauge,
        "geokv_engine_sst_bytes",
        "Size of all SST files, by column family, in bytes.",
    ),
    (
        Gauge,
        "geokv_engine_pending_compaction_bytes",
        "Bytes compaction must rewrite to meet level targets, by column family.",
    ),
    (
        Gauge,
        "geokv_engine_estimated_keys",
        "Estimated number of keys, by column family.",
    ),
    (
        Gauge,
        "geokv_engine_block_cache_usage_bytes",
        "Bytes in the block cache.",
    ),
    (
        Gauge,
        "geokv_engine_block_cache_capacity_bytes",
        "Capacity of the block cache, in bytes.",
    ),
    (
        Gauge,
        "geokv_engine_block_cache_hit_ratio",
        "Block cache hits / lookups since the node started.",
    ),
    (
        Counter,
        "geokv_engine_block_cache_hits_total",
        "Block cache hits.",
    ),
    (
        Counter,
        "geokv_engine_block_cache_misses_total",
        "Block cache misses.",
    ),
    (
        Gauge,
        "geokv_engine_write_stall_seconds",
        "Time writes were stalled by the engine since the node started, in seconds.",
    ),
    (
        Gauge,
        "geokv_engine_running_compactions",
        "Compactions running now.",
    ),
    (
        Gauge,
        "geokv_engine_running_flushes",
        "Memtable flushes running now.",
    ),
    (
        Gauge,
        "geokv_engine_writes_refused",
        "1 once an fsync failed: the engine refuses every write until the node restarts.",
    ),
];

/// Sets `geokv_node_info{node,dc,rack} 1` (what alert rules join on to
/// name a node's datacenter), then publishes process and engine metrics
/// every [`INTERVAL`] until `shutdown`.
pub async fn run(me: &NodeInfo, engine: Arc<dyn Engine>, mut shutdown: watch::Receiver<bool>) {
    metrics::gauge!("geokv_node_info", "node" => me.id.clone(), "dc" => me.dc.clone(),
        "rack" => me.rack.clone())
    .set(1.0);
    let process = metrics_process::Collector::default();
    process.describe();
    let mut tick = tokio::time::interval(INTERVAL);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.wait_for(|v| *v) => return,
        }
        process.collect();
        let e = engine.clone();
        if let Ok(Some(stats)) = CallSite::BlockingPool.run(move || e.stats()).await {
            publish(&stats);
        }
    }
}

/// Sets the engine gauges from one snapshot.
pub fn publish(s: &EngineStats) {
    for (cf, c) in &s.column_families {
        let cf = cf.name();
        metrics::gauge!("geokv_engine_memtable_bytes", "cf" => cf).set(c.memtable_bytes as f64);
        metrics::gauge!("geokv_engine_sst_bytes", "cf" => cf).set(c.sst_bytes as f64);
        metrics::gauge!("geokv_engine_pending_compaction_bytes", "cf" => cf)
            .set(c.pending_compaction_bytes as f64);
        metrics::gauge!("geokv_engine_estimated_keys", "cf" => cf).set(c.estimated_keys as f64);
    }
    metrics::gauge!("geokv_engine_block_cache_usage_bytes").set(s.block_cache_usage_bytes as f64);
    metrics::gauge!("geokv_engine_block_cache_capacity_bytes")
        .set(s.block_cache_capacity_bytes as f64);
    if let Some(r) = s.block_cache_hit_ratio() {
        metrics::gauge!("geokv_engine_block_cache_hit_ratio").set(r);
    }
    if let (Some(h), Some(m)) = (s.block_cache_hits, s.block_cache_misses) {
        metrics::counter!("geokv_engine_block_cache_hits_total").absolute(h);
        metrics::counter!("geokv_engine_block_cache_misses_total").absolute(m);
    }
    if let Some(us) = s.stall_micros {
        metrics::gauge!("geokv_engine_write_stall_seconds").set(us as f64 / 1e6);
    }
    metrics::gauge!("geokv_engine_running_compactions").set(s.running_compactions as f64);
    metrics::gauge!("geokv_engine_running_flushes").set(s.running_flushes as f64);
    metrics::gauge!("geokv_engine_writes_refused").set(f64::from(u8::from(s.writes_refused)));
}
