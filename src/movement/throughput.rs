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

/// The lowest cap accepted, MiB/s (0 aside: no cap): 10 KiB/s, as low as
/// Cassandra's data-rate settings go in practice. Below it one page of a
/// few MiB would wait for hours (review-lead25 M1); at it a 4 MiB page
/// waits ~7 min, cut short within a second when the cap is raised.
pub const MIN_MIB_PER_SEC: f64 = 0.01;

/// The longest wait one page is ever told, whatever the numbers: a bound
/// against a rate the checks did not see, not a pacing rule (at the floor
/// it takes an 864 MiB page).
pub const MAX_WAIT: Duration = Duration::from_secs(24 * 3600);

/// A waiting streamer re-reads the cap at least this often, so a raised,
/// removed or lowered cap reaches the streams already asleep.
pub const SLICE: Duration = Duration::from_secs(1);

const MIB: f64 = 1024.0 * 1024.0;

/// A cap the flag, the admin route or the CLI refuses.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error(
    "the stream throughput cap must be 0 (no cap) or at least {} MiB/s, not {}",
    MIN_MIB_PER_SEC,
    .0
)]
pub struct BadCap(pub f64);

/// `mib_per_sec` if it is a cap this node accepts: 0 (none) or a finite
/// number of at least [`MIN_MIB_PER_SEC`].
pub fn valid_mib_per_sec(mib_per_sec: f64) -> Result<f64, BadCap> {
    if mib_per_sec == 0.0 {
        Ok(0.0)
    } else if mib_per_sec.is_finite() && mib_per_sec >= MIN_MIB_PER_SEC {
        Ok(mib_per_sec)
    } else {
        Err(BadCap(mib_per_sec))
    }
}

/// A rate the bucket can divide by: positive and finite, else 0 (no cap).
fn sane(bytes_per_sec: f64) -> f64 {
    if bytes_per_sec.is_finite() && bytes_per_sec > 0.0 {
        bytes_per_sec
    } else {
        0.0
    }
}

/// `secs` as a wait, never negative, NaN or above [`MAX_WAIT`] (never
/// panics, unlike `Duration::from_secs_f64`).
fn wait_of(secs: f64) -> Duration {
    if secs > 0.0 {
        Duration::try_from_secs_f64(secs.min(MAX_WAIT.as_secs_f64())).unwrap_or(MAX_WAIT)
    } else {
        Duration::ZERO
    }
}

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
    /// Counts the times the debt was forgiven (cap raised or removed):
    /// a streamer waiting on an older count stops waiting.
    forgiven: u64,
}

/// What a wait was computed from; [`Bucket::rest`] adjusts it to the cap
/// in force now.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ticket {
    rate: f64,
    forgiven: u64,
}

impl Bucket {
    /// A bucket of `bytes_per_sec` (0, less or not finite: no cap), full.
    pub fn new(bytes_per_sec: f64) -> Bucket {
        let rate = sane(bytes_per_sec);
        Bucket {
            rate,
            burst: rate,
            tokens: rate,
            last: None,
            forgiven: 0,
        }
    }

    pub fn bytes_per_sec(&self) -> f64 {
        self.rate
    }

    /// `bytes` pass at `now`; how long the caller must wait before the
    /// next page so the average stays under the rate (at most
    /// [`MAX_WAIT`]). A page larger than the burst passes whole (pages are
    /// not split) and its debt is waited off afterwards.
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
        wait_of(-self.tokens / self.rate)
    }

    /// What the wait [`Bucket::take`] just answered was computed from.
    pub fn ticket(&self) -> Ticket {
        Ticket {
            rate: self.rate,
            forgiven: self.forgiven,
        }
    }

    /// What is left of a wait of `left` under `ticket`'s cap, under the
    /// cap in force now: nothing once the debt was forgiven (the cap was
    /// raised or removed since), stretched if the cap was lowered.
    pub fn rest(&self, left: Duration, ticket: &mut Ticket) -> Duration {
        if self.forgiven != ticket.forgiven || self.rate <= 0.0 {
            return Duration::ZERO;
        }
        if self.rate != ticket.rate {
            let stretched = wait_of(left.as_secs_f64() * ticket.rate / self.rate);
            ticket.rate = self.rate;
            return stretched;
        }
        left
    }

    /// A new rate from now on. A raised or removed cap forgives the debt
    /// (the pages owed for were paced by the old, lower cap); a lowered one
    /// keeps it within the new burst, to be waited off at the new rate.
    pub fn set_rate(&mut self, bytes_per_sec: f64) {
        let rate = sane(bytes_per_sec);
        if rate == self.rate {
            return;
        }
        let raised = rate == 0.0 || (self.rate > 0.0 && rate > self.rate);
        self.rate = rate;
        self.burst = rate;
        if raised {
            self.forgiven += 1;
            self.tokens = self.tokens.max(0.0);
        }
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
    /// A cap of `mib_per_sec` MiB/s; 0 means none (the flag checked it
    /// with [`valid_mib_per_sec`]; a value it refuses does not panic here).
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

    /// Changes the cap while streams run (`PUT /stream-throughput`); the
    /// streams already waiting see it within [`SLICE`]. A cap
    /// [`valid_mib_per_sec`] refuses changes nothing.
    pub fn set_mib_per_sec(&self, mib_per_sec: f64) -> Result<(), BadCap> {
        let mib_per_sec = valid_mib_per_sec(mib_per_sec)?;
        self.bucket.lock().set_rate(mib_per_sec * MIB);
        self.publish();
        Ok(())
    }

    /// Counts `bytes` just moved and waits as long as the cap asks, in
    /// slices of at most [`SLICE`] that re-read the cap (no lock is held
    /// while asleep).
    pub async fn moved(&self, bytes: u64) {
        let (mut left, mut ticket) = {
            let mut b = self.bucket.lock();
            (b.take(bytes, Instant::now()), b.ticket())
        };
        if left.is_zero() {
            return;
        }
        metrics::counter!("geokv_stream_throttled_total").increment(1);
        while !left.is_zero() {
            let slice = left.min(SLICE);
            tokio::time::sleep(slice).await;
            left = self.bucket.lock().rest(left - slice, &mut ticket);
        }
    }
}

#[cfg(test)]
#[path = "throughput_tests.rs"]
mod tests;
