//! The status page's memory: a [`Sample`] of this node's figures every
//! [`INTERVAL`] (from its own metrics exposition), kept for [`KEEP`]
//! ([`History`], a ring buffer), and what the page shows from it:
//! replication lag per datacenter pair over time, backlogs per destination,
//! repair figures, and request rates and latency per operation and level
//! over the last interval ([`rates`]).
//!
//! Pure but for [`History`]'s lock: the sampler task lives in
//! `status_page`. Must not: read metrics from anywhere but the text given.
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;

use super::exposition::{named, Series};

/// How often a sample is taken.
pub const INTERVAL: Duration = Duration::from_secs(5);
/// How long samples are kept (10 minutes at [`INTERVAL`]).
pub const KEEP: usize = 120;

/// One destination's queue of hinted or streamed entries, as this node has it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Backlog {
    /// `dc:NAME` (the stream to a datacenter) or `node:ID` (hints for a peer).
    pub dest: String,
    /// The destination's datacenter.
    pub dc: String,
    pub entries: f64,
    pub bytes: f64,
    /// Age of the oldest queued entry: the replication lag towards it.
    pub oldest_secs: f64,
    pub in_flight: f64,
}

/// Anti-entropy as this node runs it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RepairFigures {
    pub running: bool,
    pub pending: f64,
    pub sessions: f64,
    pub failures: f64,
    pub leaves_differing: f64,
    pub keys_streamed: f64,
}

/// Cumulative request figures of one (operation, level).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Requests {
    pub count: f64,
    pub errors: f64,
    pub seconds_sum: f64,
    /// `(upper bound, cumulative count)`, ascending.
    pub buckets: Vec<(f64, f64)>,
}

/// This node's figures at one instant.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sample {
    pub at_ms: u64,
    pub backlog: Vec<Backlog>,
    /// Destination datacenter → the oldest queued entry's age (seconds).
    pub lag: BTreeMap<String, f64>,
    pub repair: RepairFigures,
    /// `(op, level)` → cumulative figures.
    pub requests: BTreeMap<(String, String), Requests>,
    /// Data on disk and in memtables (the engine's SST and memtable bytes).
    pub load_bytes: f64,
}

/// Folds one series' value into a destination's backlog.
type Apply = fn(&mut Backlog, f64);

/// Reads a sample out of the exposition; `dc_of` names a node's datacenter.
pub fn sample(at_ms: u64, series: &[Series], dc_of: &dyn Fn(&str) -> Option<String>) -> Sample {
    let mut by_dest: BTreeMap<String, Backlog> = BTreeMap::new();
    let families: [(&str, Apply); 4] = [
        ("geokv_hint_backlog_entries", |b, v| b.entries += v),
        ("geokv_hint_backlog_bytes", |b, v| b.bytes += v),
        ("geokv_hint_oldest_age_seconds", |b, v| b.oldest_secs = v),
        ("geokv_stream_batches_in_flight", |b, v| b.in_flight = v),
    ];
    for (name, apply) in families {
        for s in named(series, name) {
            let dest = s.label("dest");
            let b = by_dest.entry(dest.to_string()).or_insert_with(|| Backlog {
                dest: dest.to_string(),
                dc: match dest.split_once(':') {
                    Some(("dc", dc)) => dc.to_string(),
                    Some((_, node)) => dc_of(node).unwrap_or_default(),
                    None => String::new(),
                },
                ..Backlog::default()
            });
            apply(b, s.value);
        }
    }
    let backlog: Vec<Backlog> = by_dest.into_values().collect();
    let mut lag = BTreeMap::new();
    for b in backlog.iter().filter(|b| !b.dc.is_empty()) {
        let l = lag.entry(b.dc.clone()).or_insert(0.0_f64);
        *l = l.max(b.oldest_secs);
    }
    Sample {
        at_ms,
        backlog,
        lag,
        repair: repair(series),
        requests: requests(series),
        load_bytes: total(series, "geokv_engine_sst_bytes")
            + total(series, "geokv_engine_memtable_bytes"),
    }
}

fn total(series: &[Series], name: &str) -> f64 {
    named(series, name).map(|s| s.value).sum()
}

fn repair(series: &[Series]) -> RepairFigures {
    RepairFigures {
        running: total(series, "geokv_repair_running") > 0.0,
        pending: total(series, "geokv_repair_pending"),
        sessions: total(series, "geokv_repair_sessions_total"),
        failures: total(series, "geokv_repair_failures_total"),
        leaves_differing: total(series, "geokv_repair_leaves_differing_total"),
        keys_streamed: total(series, "geokv_repair_keys_streamed_total"),
    }
}

fn requests(series: &[Series]) -> BTreeMap<(String, String), Requests> {
    let mut out: BTreeMap<(String, String), Requests> = BTreeMap::new();
    let key = |s: &Series| (s.label("op").to_string(), s.label("level").to_string());
    for s in named(series, "geokv_requests_total") {
        let r = out.entry(key(s)).or_default();
        r.count += s.value;
        if s.label("outcome") != "ok" {
            r.errors += s.value;
        }
    }
    for s in named(series, "geokv_request_seconds_sum") {
        out.entry(key(s)).or_default().seconds_sum += s.value;
    }
    for s in named(series, "geokv_request_seconds_bucket") {
        let le = match s.label("le") {
            "+Inf" => f64::INFINITY,
            le => le.parse().unwrap_or(f64::INFINITY),
        };
        out.entry(key(s)).or_default().buckets.push((le, s.value));
    }
    for r in out.values_mut() {
        r.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    out
}

/// Request rate and latency of one (operation, level) over an interval.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Rate {
    pub op: String,
    pub level: String,
    pub per_sec: f64,
    pub errors_per_sec: f64,
    /// `None` when no request completed in the interval.
    pub mean_ms: Option<f64>,
    /// Upper bound of the bucket holding the 99th percentile.
    pub p99_ms: Option<f64>,
}

/// Rates between two samples (`before` older than `now`).
pub fn rates(before: &Sample, now: &Sample) -> Vec<Rate> {
    let secs = (now.at_ms.saturating_sub(before.at_ms) as f64 / 1000.0).max(1e-3);
    let empty = Requests::default();
    now.requests
        .iter()
        .map(|((op, level), r)| {
            let b = before
                .requests
                .get(&(op.clone(), level.clone()))
                .unwrap_or(&empty);
            let n = (r.count - b.count).max(0.0);
            let sum = (r.seconds_sum - b.seconds_sum).max(0.0);
            Rate {
                op: op.clone(),
                level: level.clone(),
                per_sec: n / secs,
                errors_per_sec: (r.errors - b.errors).max(0.0) / secs,
                mean_ms: (n > 0.0).then(|| sum / n * 1000.0),
                p99_ms: quantile(&r.buckets, &b.buckets, 0.99).map(|s| s * 1000.0),
            }
        })
        .collect()
}

/// The upper bound of the bucket holding quantile `q` of the observations
/// made between two cumulative bucket lists (`None` when there were none).
fn quantile(now: &[(f64, f64)], before: &[(f64, f64)], q: f64) -> Option<f64> {
    let at = |le: f64| before.iter().find(|b| b.0 == le).map_or(0.0, |b| b.1);
    let delta: Vec<(f64, f64)> = now.iter().map(|&(le, c)| (le, c - at(le))).collect();
    let n = delta.last()?.1;
    if n <= 0.0 {
        return None;
    }
    let finite = delta.iter().rev().find(|d| d.0.is_finite()).map(|d| d.0);
    delta.iter().find(|(_, c)| *c >= q * n).map(|&(le, _)| {
        if le.is_finite() {
            le
        } else {
            finite.unwrap_or(le)
        }
    })
}

/// The last [`KEEP`] samples.
#[derive(Default)]
pub struct History(Mutex<VecDeque<Sample>>);

impl History {
    pub fn push(&self, s: Sample) {
        let mut q = self.0.lock();
        if q.len() == KEEP {
            q.pop_front();
        }
        q.push_back(s);
    }

    /// Oldest first.
    pub fn samples(&self) -> Vec<Sample> {
        self.0.lock().iter().cloned().collect()
    }
}

/// Lag towards each datacenter over time: `dc → [(at_ms, seconds)]`.
pub fn lag_series(samples: &[Sample]) -> BTreeMap<String, Vec<(u64, f64)>> {
    let mut out: BTreeMap<String, Vec<(u64, f64)>> = BTreeMap::new();
    for s in samples {
        for (dc, l) in &s.lag {
            out.entry(dc.clone()).or_default().push((s.at_ms, *l));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::exposition::parse;

    fn text(count: u64, errors: u64, sum: f64, fast: u64, slow: u64, age: f64) -> String {
        format!(
            "geokv_hint_backlog_entries{{dest=\"dc:dc2\",lane=\"urgent\"}} 3\n\
             geokv_hint_backlog_entries{{dest=\"dc:dc2\",lane=\"backlog\"}} 4\n\
             geokv_hint_backlog_entries{{dest=\"node:dc1-n2\",lane=\"urgent\"}} 1\n\
             geokv_hint_oldest_age_seconds{{dest=\"dc:dc2\"}} {age}\n\
             geokv_hint_oldest_age_seconds{{dest=\"node:dc1-n2\"}} 0.5\n\
             geokv_repair_running 1\n\
             geokv_repair_failures_total 2\n\
             geokv_requests_total{{op=\"put\",level=\"QUORUM\",outcome=\"ok\"}} {count}\n\
             geokv_requests_total{{op=\"put\",level=\"QUORUM\",outcome=\"Unavailable\"}} {errors}\n\
             geokv_request_seconds_bucket{{op=\"put\",level=\"QUORUM\",le=\"0.001\"}} {fast}\n\
             geokv_request_seconds_bucket{{op=\"put\",level=\"QUORUM\",le=\"0.01\"}} {slow}\n\
             geokv_request_seconds_bucket{{op=\"put\",level=\"QUORUM\",le=\"+Inf\"}} {slow}\n\
             geokv_request_seconds_sum{{op=\"put\",level=\"QUORUM\"}} {sum}\n\
             geokv_request_seconds_count{{op=\"put\",level=\"QUORUM\"}} {slow}\n"
        )
    }

    fn dc_of(node: &str) -> Option<String> {
        node.split('-').next().map(str::to_string)
    }

    #[test]
    fn a_sample_sums_lanes_and_takes_the_worst_lag_per_datacenter() {
        let s = sample(1000, &parse(&text(10, 0, 0.0, 0, 10, 7.5)), &dc_of);
        let dc2 = s.backlog.iter().find(|b| b.dest == "dc:dc2").unwrap();
        assert_eq!(
            (dc2.dc.as_str(), dc2.entries, dc2.oldest_secs),
            ("dc2", 7.0, 7.5)
        );
        let peer = s.backlog.iter().find(|b| b.dest == "node:dc1-n2").unwrap();
        assert_eq!(peer.dc, "dc1");
        assert_eq!(
            s.lag,
            BTreeMap::from([("dc1".into(), 0.5), ("dc2".into(), 7.5)])
        );
        assert!(s.repair.running);
        assert_eq!(s.repair.failures, 2.0);
        let put = &s.requests[&("put".to_string(), "QUORUM".to_string())];
        assert_eq!((put.count, put.buckets.len()), (10.0, 3));
    }

    #[test]
    fn rates_and_p99_come_from_the_deltas_between_two_samples() {
        let a = sample(0, &parse(&text(100, 0, 1.0, 100, 100, 0.0)), &dc_of);
        // 50 more requests in 5 s, 10 of them errors; 40 under 1 ms, 10 under 10 ms.
        let b = sample(5000, &parse(&text(140, 10, 1.5, 140, 150, 0.0)), &dc_of);
        let r = rates(&a, &b);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].per_sec, 10.0);
        assert_eq!(r[0].errors_per_sec, 2.0);
        assert!((r[0].mean_ms.unwrap() - 10.0).abs() < 1e-9, "{r:?}");
        assert_eq!(r[0].p99_ms, Some(10.0));
        assert_eq!(rates(&b, &b)[0].p99_ms, None);
        assert_eq!(rates(&b, &b)[0].mean_ms, None);
    }

    #[test]
    fn history_keeps_the_last_ten_minutes_and_lag_series_follow_it() {
        let h = History::default();
        for i in 0..(KEEP as u64 + 5) {
            let mut s = Sample {
                at_ms: i,
                ..Sample::default()
            };
            s.lag.insert("dc2".into(), i as f64);
            h.push(s);
        }
        let samples = h.samples();
        assert_eq!(samples.len(), KEEP);
        assert_eq!(samples[0].at_ms, 5);
        let series = lag_series(&samples);
        assert_eq!(series["dc2"].len(), KEEP);
        assert_eq!(
            series["dc2"].last(),
            Some(&(KEEP as u64 + 4, (KEEP + 4) as f64))
        );
    }
}
