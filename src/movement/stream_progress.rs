//! How far a stream got ([`Progress`], shared with whoever reports it, and
//! its [`ProgressSnapshot`]), and the stream metrics it sets. Must not
//! drive a stream (`super::stream` does) or decide what moves.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// How far a stream got; shared with whoever reports it.
#[derive(Debug, Default)]
pub struct Progress {
    ranges_total: AtomicU64,
    ranges_done: AtomicU64,
    keys: AtomicU64,
    bytes: AtomicU64,
}

/// A copy of [`Progress`] at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ProgressSnapshot {
    pub ranges_total: u64,
    pub ranges_done: u64,
    /// Keys and bytes (keys + encoded records) applied by this process.
    pub keys: u64,
    pub bytes: u64,
}

impl Progress {
    /// A stream of `ranges_total` ranges starts (none done yet).
    pub fn begin(&self, ranges_total: u64) {
        self.ranges_total.store(ranges_total, Ordering::Relaxed);
        self.ranges_done.store(0, Ordering::Relaxed);
        metrics::gauge!("geokv_stream_ranges_remaining").set(ranges_total as f64);
    }

    pub fn snapshot(&self) -> ProgressSnapshot {
        ProgressSnapshot {
            ranges_total: self.ranges_total.load(Ordering::Relaxed),
            ranges_done: self.ranges_done.load(Ordering::Relaxed),
            keys: self.keys.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
        }
    }

    /// `keys` rows of `bytes` moved.
    pub(super) fn add(&self, keys: u64, bytes: u64) {
        self.keys.fetch_add(keys, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        metrics::counter!("geokv_stream_keys_total").increment(keys);
        metrics::counter!("geokv_stream_bytes_total").increment(bytes);
    }

    pub(super) fn range_done(&self) {
        let done = self.ranges_done.fetch_add(1, Ordering::Relaxed) + 1;
        let total = self.ranges_total.load(Ordering::Relaxed);
        metrics::gauge!("geokv_stream_ranges_remaining").set(total.saturating_sub(done) as f64);
    }
}
