//! The node's stream throughput cap: how many bytes per second every range
//! movement into or out of this node may move together (Cassandra's
//! `stream_throughput_outbound`, `nodetool setstreamthroughput`).
//!
//! The adaptive page rate ([`super::rate`]) backs off when the *source's*
//! pages slow down; it cannot see the foreground requests a stream takes
//! CPU and disk from on the receiving node. A byte cap shared by every
//! streamer of the node bounds that cost whatever the pages look like: on
//! the bench's three nodes plus a joiner on two cores, an uncapped join
//! stream of 62 MB/s raised the foreground LOCAL_QUORUM p99 2.7-2.9x.
//!
//! Owns [`Bucket`] (a pure token bucket: bytes and instants in, a wait
//! out) and [`Throughput`] (the bucket behind a lock, settable while
//! streams run, waiting on tokio's clock so tests run under
//! `tokio::time::pause`). A hand-written bucket rather than `governor`:
//! governor waits on its own clock, which paused-time tests cannot drive,
//! and cannot change its quota in place. Must not choose page sizes or
//! sources.

use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

/// The default cap, MiB per second (Cassandra's default outbound stream
/// throughput is 24 MiB/s).
pub const DEFAULT_MIB_PER_SEC: f64 = 24.0;

const MIB: f64 = 1024.0 * 1024.0;

/// A token bucket over bytes. Pure: the caller passes the time.
#[derive(Clone, Debug, PartialEq)]
pub struct Bucket {
    /// Bytes per second; 0 means no cap.
    rate: f64,
    /// Bytes that may pass at once after an idle spell (one second's worth).
    burst: f64,
    /// Bytes available now (negative: owed by the pages already let through).
    tokens: f64,
    last: Option<Instant>,
}

impl Bucket {
    /// A bucket of `bytes_per_sec` (0 or less: no cap), full.
    pub fn new(bytes_per_sec: f64) -> Bucket {
        let rate = bytes_per_sec.max(0.0);
        Bucket {
            rate,
            burst: rate,
            tokens: rate,
            last: None,
        }
    }

    pub fn bytes_per_sec(&self) -> f64 {
        self.rate
    }

    /// `bytes` pass at `now`; how long the caller must wait before the
    /// next page so the average stays under the rate. A page larger than
    /// the burst passes whole (pages are not split) and its debt is waited
    /// off afterwards.
    pub fn take(&mut self, bytes: u64, now: Instant) -> Duration {
        if self.rate <= 0.0 {
            return Duration::ZERO;
        }
        if let Some(last) = self.last {
            let refill = now.saturating_duration_since(last).as_secs_f64() * self.rate;
            self.tokens = (self.tokens + refill).min(self.burst);
        }
        self.last = Some(now);
        self.tokens -= bytes as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }

    /// A new rate from now on; the debt or credit so far is kept within
    /// the new burst.
    pub fn set_rate(&mut self, bytes_per_sec: f64) {
        self.rate = bytes_per_sec.max(0.0);
        self.burst = self.rate;
        self.tokens = self.tokens.min(self.burst);
    }
}

/// The node-wide cap every streamer of this node shares.
#[derive(Debug)]
pub struct Throughput {
    bucket: Mutex<Bucket>,
}

impl Default for Throughput {
    /// No cap (tests and tools; a node takes its cap from its flag).
    fn default() -> Self {
        Throughput::new(0.0)
    }
}

impl Throughput {
    /// A cap of `mib_per_sec` MiB/s; 0 means none.
    pub fn new(mib_per_sec: f64) -> Throughput {
        let cap = Throughput {
            bucket: Mutex::new(Bucket::new(mib_per_sec * MIB)),
        };
        cap.publish();
        cap
    }

    fn publish(&self) {
        metrics::gauge!("geokv_stream_throughput_cap_bytes_per_second")
            .set(self.bucket.lock().bytes_per_sec());
    }

    /// The cap in MiB/s (0: none).
    pub fn mib_per_sec(&self) -> f64 {
        self.bucket.lock().bytes_per_sec() / MIB
    }

    /// Changes the cap while streams run (`PUT /stream-throughput`).
    pub fn set_mib_per_sec(&self, mib_per_sec: f64) {
        self.bucket.lock().set_rate(mib_per_sec * MIB);
        self.publish();
    }

    /// Counts `bytes` just moved and waits as long as the cap asks.
    pub async fn moved(&self, bytes: u64) {
        let wait = self.bucket.lock().take(bytes, Instant::now());
        if !wait.is_zero() {
            metrics::counter!("geokv_stream_throttled_total").increment(1);
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn no_cap_never_waits() {
        let mut b = Bucket::new(0.0);
        let t = Instant::now();
        assert_eq!(b.take(u64::MAX / 2, t), Duration::ZERO);
    }

    #[test]
    fn a_burst_passes_then_the_debt_is_waited_off() {
        let mut b = Bucket::new(1000.0);
        let t = Instant::now();
        assert_eq!(b.take(1000, t), Duration::ZERO);
        assert_eq!(b.take(500, t), Duration::from_millis(500));
    }

    #[test]
    fn a_lower_rate_applies_to_what_follows() {
        let mut b = Bucket::new(1000.0);
        let t = Instant::now();
        b.take(1000, t);
        b.set_rate(100.0);
        assert_eq!(b.take(100, t), Duration::from_secs(1));
    }

    proptest! {
        /// Whatever the page sizes, a caller that waits as told never moves
        /// more than one burst above rate x elapsed time.
        #[test]
        fn waiting_as_told_keeps_the_average_under_the_rate(
            rate in 1_000u64..10_000_000,
            pages in proptest::collection::vec(1u64..5_000_000, 1..60),
        ) {
            let mut b = Bucket::new(rate as f64);
            let start = Instant::now();
            let (mut now, mut moved) = (start, 0u64);
            for p in pages {
                let wait = b.take(p, now);
                moved += p;
                now += wait;
                let allowed = rate as f64 * (now - start).as_secs_f64() + rate as f64;
                prop_assert!(moved as f64 <= allowed + 1.0, "{moved} > {allowed}");
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn streamers_sharing_a_cap_share_its_rate() {
        let cap = std::sync::Arc::new(Throughput::new(1.0)); // 1 MiB/s
        let began = Instant::now();
        let a = {
            let cap = cap.clone();
            tokio::spawn(async move {
                for _ in 0..4 {
                    cap.moved(MIB as u64 / 2).await;
                }
            })
        };
        for _ in 0..4 {
            cap.moved(MIB as u64 / 2).await;
        }
        a.await.unwrap();
        // 4 MiB through a 1 MiB/s cap with a 1 MiB burst: 3 s.
        let took = began.elapsed();
        assert!(
            took >= Duration::from_secs(3) && took < Duration::from_millis(3100),
            "{took:?}"
        );
    }
}
