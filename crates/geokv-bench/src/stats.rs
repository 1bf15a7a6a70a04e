//! What a phase measured: one HDR histogram of successful-operation latency
//! per operation kind (microseconds, 3 significant digits, up to 10 minutes),
//! errors by gRPC code, reads that saw siblings, successes per second; and
//! their summary (count, throughput, p50/p95/p99/p99.9/max) as reported.
//!
//! Each worker owns a [`Recorder`] (no locking on the hot path); the runner
//! merges them at the end. Must not time anything itself: latencies come in.
use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::workload::OpKind;

const MAX_MICROS: u64 = 600_000_000;

/// An empty latency histogram (µs) with the bounds every phase uses.
pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("static histogram bounds are valid")
}

/// Measurements of one worker, or of a whole phase after merging.
#[derive(Debug, Clone)]
pub struct Recorder {
    latencies: BTreeMap<OpKind, Histogram<u64>>,
    errors: BTreeMap<String, u64>,
    siblings_seen: u64,
    reads_not_found: u64,
    /// Successful operations completed in each second since the phase began.
    timeline: Vec<u64>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    /// An empty recorder.
    pub fn new() -> Self {
        Recorder {
            latencies: BTreeMap::new(),
            errors: BTreeMap::new(),
            siblings_seen: 0,
            reads_not_found: 0,
            timeline: Vec::new(),
        }
    }

    /// A successful operation that took `latency` and finished `at` after
    /// the phase began.
    pub fn record_ok(&mut self, kind: OpKind, latency: Duration, at: Duration) {
        let micros = (latency.as_micros() as u64).clamp(1, MAX_MICROS);
        self.latencies
            .entry(kind)
            .or_insert_with(histogram)
            .saturating_record(micros);
        let second = at.as_secs() as usize;
        if self.timeline.len() <= second {
            self.timeline.resize(second + 1, 0);
        }
        self.timeline[second] += 1;
    }

    /// A failed operation, by gRPC code name (`UNAVAILABLE`, …).
    pub fn record_error(&mut self, code: &str) {
        *self.errors.entry(code.to_string()).or_insert(0) += 1;
    }

    /// What a successful read returned.
    pub fn record_read(&mut self, siblings: usize, absent: bool) {
        self.siblings_seen += u64::from(siblings > 1);
        self.reads_not_found += u64::from(absent);
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Recorder) {
        for (kind, h) in &other.latencies {
            self.latencies
                .entry(*kind)
                .or_insert_with(histogram)
                .add(h)
                .expect("histograms share bounds");
        }
        for (code, n) in &other.errors {
            *self.errors.entry(code.clone()).or_insert(0) += n;
        }
        self.siblings_seen += other.siblings_seen;
        self.reads_not_found += other.reads_not_found;
        if self.timeline.len() < other.timeline.len() {
            self.timeline.resize(other.timeline.len(), 0);
        }
        for (i, n) in other.timeline.iter().enumerate() {
            self.timeline[i] += n;
        }
    }

    /// The latency histogram of each kind that succeeded at least once.
    pub fn latencies(&self) -> &BTreeMap<OpKind, Histogram<u64>> {
        &self.latencies
    }

    /// All kinds together.
    pub fn overall(&self) -> Histogram<u64> {
        let mut all = histogram();
        for h in self.latencies.values() {
            all.add(h).expect("histograms share bounds");
        }
        all
    }

    /// The summary of a phase that lasted `elapsed`.
    pub fn summarize(&self, elapsed: Duration) -> PhaseReport {
        let secs = elapsed.as_secs_f64();
        let overall = LatencySummary::of(&self.overall(), secs);
        PhaseReport {
            elapsed_secs: secs,
            operations: overall.count,
            throughput: overall.throughput,
            overall,
            by_op: self
                .latencies
                .iter()
                .map(|(k, h)| (k.name().to_string(), LatencySummary::of(h, secs)))
                .collect(),
            errors: self.errors.clone(),
            error_count: self.errors.values().sum(),
            siblings_seen: self.siblings_seen,
            reads_not_found: self.reads_not_found,
            timeline: self.timeline.clone(),
        }
    }
}

/// Count, throughput and latency percentiles of one histogram.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatencySummary {
    pub count: u64,
    /// Operations per second over the whole phase.
    pub throughput: f64,
    pub mean_us: f64,
    pub p50_us: u64,
    pub p95_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

impl LatencySummary {
    /// Summarises `h` for a phase of `secs` seconds.
    pub fn of(h: &Histogram<u64>, secs: f64) -> Self {
        let count = h.len();
        let q = |p: f64| {
            if count == 0 {
                0
            } else {
                h.value_at_quantile(p)
            }
        };
        LatencySummary {
            count,
            throughput: count as f64 / secs.max(f64::EPSILON),
            mean_us: if count == 0 { 0.0 } else { h.mean() },
            p50_us: q(0.50),
            p95_us: q(0.95),
            p99_us: q(0.99),
            p999_us: q(0.999),
            max_us: if count == 0 { 0 } else { h.max() },
        }
    }
}

/// What a phase measured, as printed and written to JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhaseReport {
    pub elapsed_secs: f64,
    /// Successful operations.
    pub operations: u64,
    /// Successful operations per second.
    pub throughput: f64,
    /// Every kind together.
    pub overall: LatencySummary,
    /// By YCSB operation name (`READ`, `UPDATE`, `INSERT`, `READ-MODIFY-WRITE`).
    pub by_op: BTreeMap<String, LatencySummary>,
    /// Failed operations by gRPC code name.
    pub errors: BTreeMap<String, u64>,
    pub error_count: u64,
    /// Reads (including those of read-modify-writes) that returned more than one sibling.
    pub siblings_seen: u64,
    /// Reads that found no live value.
    pub reads_not_found: u64,
    /// Successful operations completed in each second of the phase.
    pub timeline: Vec<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_reports_percentiles_and_throughput() {
        let mut r = Recorder::new();
        for ms in 1..=1000u64 {
            r.record_ok(
                OpKind::Read,
                Duration::from_micros(ms * 100),
                Duration::from_millis(ms),
            );
        }
        r.record_ok(OpKind::Update, Duration::from_secs(1), Duration::ZERO);
        r.record_error("UNAVAILABLE");
        r.record_error("UNAVAILABLE");
        r.record_error("DEADLINE_EXCEEDED");
        r.record_read(2, false);
        r.record_read(1, true);
        let s = r.summarize(Duration::from_secs(2));
        assert_eq!(s.operations, 1001);
        assert!((s.throughput - 500.5).abs() < 1e-9);
        let read = &s.by_op["READ"];
        assert_eq!(read.count, 1000);
        // 3 significant digits: within 0.1 %.
        let near =
            |got: u64, want: u64| (got as f64 - want as f64).abs() <= want as f64 * 0.001 + 1.0;
        assert!(near(read.p50_us, 50_000), "{}", read.p50_us);
        assert!(near(read.p99_us, 99_000), "{}", read.p99_us);
        assert!(near(read.p999_us, 99_900), "{}", read.p999_us);
        assert!(near(read.max_us, 100_000));
        assert!(near(s.by_op["UPDATE"].max_us, 1_000_000));
        assert_eq!(s.error_count, 3);
        assert_eq!(s.errors["UNAVAILABLE"], 2);
        assert_eq!((s.siblings_seen, s.reads_not_found), (1, 1));
        assert_eq!(s.timeline, vec![1 + 999, 1]);
    }

    #[test]
    fn merge_adds_everything() {
        let mut a = Recorder::new();
        let mut b = Recorder::new();
        a.record_ok(OpKind::Read, Duration::from_millis(1), Duration::ZERO);
        b.record_ok(
            OpKind::Read,
            Duration::from_millis(3),
            Duration::from_secs(2),
        );
        b.record_ok(OpKind::Insert, Duration::from_millis(2), Duration::ZERO);
        b.record_error("UNAVAILABLE");
        b.record_read(3, false);
        a.merge(&b);
        let s = a.summarize(Duration::from_secs(3));
        assert_eq!(s.by_op["READ"].count, 2);
        assert_eq!(s.by_op["INSERT"].count, 1);
        assert_eq!(s.timeline, vec![2, 0, 1]);
        assert_eq!((s.error_count, s.siblings_seen), (1, 1));
    }

    #[test]
    fn empty_phase_summarises_to_zeros() {
        let s = Recorder::new().summarize(Duration::ZERO);
        assert_eq!(s.operations, 0);
        assert_eq!(s.overall.p99_us, 0);
        assert!(s.by_op.is_empty());
    }
}
