//! The join scenario's arithmetic: how many keys a data size means, rates
//! over a window, the fraction of replicas a join moved against the ideal,
//! whether a node's compaction backlog is empty (its `/metrics` parsed by
//! [`geokv::admin::exposition`]), and which foreground samples fall in a
//! window.
//! Must not: read a clock or do any I/O (pure arithmetic).
use std::time::Duration;

use hdrhistogram::Histogram;

use geokv::admin::exposition;

use super::super::stats::{histogram, LatencySummary};

/// Keys of `value_size` bytes that make `size_mib` MiB of values (at least 1).
pub fn keys_for(size_mib: u64, value_size: usize) -> u64 {
    (size_mib * 1024 * 1024 / value_size.max(1) as u64).max(1)
}

/// `amount` per second over `over` (0 for an empty window).
pub fn per_sec(amount: u64, over: Duration) -> f64 {
    let secs = over.as_secs_f64();
    if secs <= 0.0 {
        0.0
    } else {
        amount as f64 / secs
    }
}

/// Megabytes (10^6 bytes) per second.
pub fn mb_per_sec(bytes: u64, over: Duration) -> f64 {
    per_sec(bytes, over) / 1e6
}

/// The share of a datacenter's replicas a join moved: `moved` keys streamed
/// to the new node out of `keys` keys stored `rf` times each.
pub fn moved_fraction(moved: u64, keys: u64, rf: u32) -> f64 {
    let copies = keys.saturating_mul(rf as u64);
    if copies == 0 {
        0.0
    } else {
        moved as f64 / copies as f64
    }
}

/// What a balanced join of one node to `nodes_before` nodes moves: each
/// node ends with 1/(n+1) of the replicas, all of the new node's moved.
pub fn ideal_fraction(nodes_before: usize) -> f64 {
    1.0 / (nodes_before as f64 + 1.0)
}

/// `during` ÷ `idle` (0 when idle is 0: no idle samples).
pub fn ratio(during: u64, idle: u64) -> f64 {
    if idle == 0 {
        0.0
    } else {
        during as f64 / idle as f64
    }
}

/// Whether a node's `/metrics` shows its engine idle after a load: no
/// compaction running and none estimated pending in any column family.
/// `false` when the gauges are missing (not yet published).
pub fn compaction_settled(text: &str) -> bool {
    let running = exposition::sum(text, "geokv_engine_running_compactions", &[]);
    let pending = exposition::sum(text, "geokv_engine_pending_compaction_bytes", &[]);
    matches!((running, pending), (Some(r), Some(p)) if r == 0.0 && p == 0.0)
}

/// One foreground operation: when it was due (since the foreground began),
/// how long it took from then, and whether it succeeded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub due: Duration,
    pub latency_us: u64,
    pub ok: bool,
}

/// Latencies and failures of the samples due in `[from, to)`.
#[derive(Debug, Clone)]
pub struct Window {
    pub hist: Histogram<u64>,
    pub errors: u64,
    pub secs: f64,
}

impl Window {
    pub fn summary(&self) -> LatencySummary {
        LatencySummary::of(&self.hist, self.secs)
    }
}

/// The samples due in `[from, to)`.
pub fn window(samples: &[Sample], from: Duration, to: Duration) -> Window {
    let mut hist = histogram();
    let mut errors = 0;
    for s in samples.iter().filter(|s| s.due >= from && s.due < to) {
        if s.ok {
            let _ = hist.record(s.latency_us.max(1));
        } else {
            errors += 1;
        }
    }
    Window {
        hist,
        errors,
        secs: to.saturating_sub(from).as_secs_f64(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_size_is_a_key_count() {
        assert_eq!(keys_for(64, 4096), 16_384);
        assert_eq!(keys_for(1024, 1024), 1_048_576);
        assert_eq!(keys_for(0, 100), 1);
    }

    #[test]
    fn rates_are_per_second_and_zero_over_nothing() {
        assert_eq!(per_sec(500, Duration::from_millis(250)), 2000.0);
        assert_eq!(per_sec(500, Duration::ZERO), 0.0);
        assert_eq!(mb_per_sec(3_000_000, Duration::from_secs(2)), 1.5);
    }

    #[test]
    fn a_balanced_join_to_three_nodes_at_rf_3_moves_a_quarter() {
        // 1000 keys, rf 3: 3000 copies; the fourth node ends with 3/4 of
        // the keys = 750 copies = 1/4 of all copies.
        assert_eq!(moved_fraction(750, 1000, 3), 0.25);
        assert_eq!(ideal_fraction(3), 0.25);
        assert_eq!(moved_fraction(10, 0, 3), 0.0);
        assert_eq!(ratio(30, 10), 3.0);
        assert_eq!(ratio(30, 0), 0.0);
    }

    #[test]
    fn the_engine_is_settled_only_with_no_compaction_running_or_pending() {
        let text = |running: u32, pending: [u64; 2]| {
            format!(
                "# TYPE geokv_engine_running_compactions gauge\n\
                 geokv_engine_running_compactions {running}\n\
                 geokv_engine_running_compactions_other 5\n\
                 geokv_engine_pending_compaction_bytes{{cf=\"default\"}} {}\n\
                 geokv_engine_pending_compaction_bytes{{cf=\"hints\"}} {}\n",
                pending[0], pending[1]
            )
        };
        assert!(compaction_settled(&text(0, [0, 0])));
        assert!(!compaction_settled(&text(1, [0, 0])));
        assert!(!compaction_settled(&text(0, [0, 4096])));
        assert_eq!(
            exposition::sum(
                &text(0, [10, 32]),
                "geokv_engine_pending_compaction_bytes",
                &[]
            ),
            Some(42.0)
        );
        // Not yet published: not settled.
        assert!(!compaction_settled("geokv_engine_running_compactions 0\n"));
        assert!(!compaction_settled(""));
    }

    #[test]
    fn a_window_holds_the_samples_due_in_it() {
        let s = |ms: u64, latency_us: u64, ok: bool| Sample {
            due: Duration::from_millis(ms),
            latency_us,
            ok,
        };
        let samples = [
            s(0, 100, true),
            s(999, 200, true),
            s(1000, 5000, true),
            s(1500, 0, false),
            s(2000, 7000, true),
        ];
        let idle = window(&samples, Duration::ZERO, Duration::from_secs(1));
        assert_eq!((idle.hist.len(), idle.errors), (2, 0));
        assert!(idle.hist.max() < 300);
        let during = window(&samples, Duration::from_secs(1), Duration::from_secs(2));
        assert_eq!((during.hist.len(), during.errors), (1, 1));
        let summary = during.summary();
        assert_eq!(summary.count, 1);
        assert!((4990..=5010).contains(&summary.p99_us), "{summary:?}");
    }
}
