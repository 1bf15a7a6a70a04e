//! The per-address share of the client port's bounds (`api::shed`;
//! review-shed32 M1), as Cassandra's
//! `native_transport_max_request_data_in_flight_per_ip`: the requests and
//! request bytes in flight from one remote IP address are bounded, so one
//! host cannot hold every place or the whole byte budget with stalled
//! bodies; and when a refusal past the share may be logged (at most once
//! a minute per node, review-fix33 M1). Must not: take the node-wide
//! places or bytes (`admission`, `shed::ByteBudget`), or know about calls,
//! bodies or statuses.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

/// At most one warning a minute of a call shed past its address's share.
pub const SHARE_WARN_EVERY: Duration = Duration::from_secs(60);

/// A refusal past the share at `now` is logged: none was yet, or the last
/// one logged is [`SHARE_WARN_EVERY`] old.
fn warn_due(last: Option<Instant>, now: Instant) -> bool {
    match last {
        None => true,
        Some(last) => now.saturating_duration_since(last) >= SHARE_WARN_EVERY,
    }
}

/// What one address may hold at once (0: no bound).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShareLimits {
    /// Gets, puts and deletes in flight.
    pub requests: usize,
    /// Bytes of request bodies in flight.
    pub bytes: usize,
}

impl ShareLimits {
    /// The default share (review-shed33 M3): a quarter of each node-wide
    /// bound, as Cassandra's per-ip default is a fraction of its total, so
    /// raising or removing (0) a node-wide bound moves the share with it;
    /// at least one request, and at least `min_bytes` (one framed message
    /// of the largest size) but not past the node's budget.
    pub fn quarter_of(requests: usize, bytes: usize, min_bytes: usize) -> ShareLimits {
        ShareLimits {
            requests: if requests == 0 {
                0
            } else {
                (requests / 4).max(1)
            },
            bytes: if bytes == 0 {
                0
            } else {
                (bytes / 4).max(min_bytes).min(bytes)
            },
        }
    }
}

/// The share as configured: each bound set by its flag, or (`None`)
/// derived from the node-wide one ([`ShareLimits::quarter_of`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ShareConfig {
    pub requests: Option<usize>,
    pub bytes: Option<usize>,
}

impl ShareConfig {
    /// The share of a node with these node-wide bounds.
    pub fn limits(&self, requests: usize, bytes: usize, min_bytes: usize) -> ShareLimits {
        let derived = ShareLimits::quarter_of(requests, bytes, min_bytes);
        ShareLimits {
            requests: self.requests.unwrap_or(derived.requests),
            bytes: self.bytes.unwrap_or(derived.bytes),
        }
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Tally {
    requests: usize,
    bytes: usize,
}

/// What each address holds now; an address holding nothing has no entry.
#[derive(Debug)]
pub struct Shares {
    limits: ShareLimits,
    held: Mutex<HashMap<IpAddr, Tally>>,
    /// When a refusal past the share was last logged.
    warned: Mutex<Option<Instant>>,
}

impl Shares {
    pub fn new(limits: ShareLimits) -> Arc<Self> {
        Arc::new(Shares {
            limits,
            held: Mutex::default(),
            warned: Mutex::default(),
        })
    }

    /// A refusal past the share now is to be logged ([`warn_due`]); if so
    /// the next one is not for [`SHARE_WARN_EVERY`].
    pub(super) fn warn_now(&self) -> bool {
        let now = Instant::now();
        let mut last = self.warned.lock().unwrap_or_else(|e| e.into_inner());
        let due = warn_due(*last, now);
        if due {
            *last = Some(now);
        }
        due
    }

    /// No bound at all.
    pub fn unbounded() -> Arc<Self> {
        Shares::new(ShareLimits {
            requests: 0,
            bytes: 0,
        })
    }

    pub fn limits(&self) -> ShareLimits {
        self.limits
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<IpAddr, Tally>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `(requests, bytes)` held by `ip` now.
    pub fn held(&self, ip: IpAddr) -> (usize, usize) {
        let t = self.lock().get(&ip).copied().unwrap_or_default();
        (t.requests, t.bytes)
    }

    /// Takes a request place for `ip`; false when its share is full.
    pub(super) fn enter(&self, ip: IpAddr) -> bool {
        let mut held = self.lock();
        let t = held.get(&ip).copied().unwrap_or_default();
        if self.limits.requests != 0 && t.requests >= self.limits.requests {
            return false;
        }
        held.insert(
            ip,
            Tally {
                requests: t.requests + 1,
                ..t
            },
        );
        true
    }

    /// `ip` holds its whole byte share.
    pub(super) fn bytes_full(&self, ip: IpAddr) -> bool {
        self.limits.bytes != 0 && self.held(ip).1 >= self.limits.bytes
    }

    /// Takes `n` bytes for `ip` unless that passes its share (but by a
    /// `Status` call's few bytes: `over`).
    pub(super) fn take(&self, ip: IpAddr, n: usize, over: bool) -> bool {
        let mut held = self.lock();
        let t = held.get(&ip).copied().unwrap_or_default();
        if self.limits.bytes != 0 && !over && t.bytes + n > self.limits.bytes {
            return false;
        }
        held.insert(
            ip,
            Tally {
                bytes: t.bytes + n,
                ..t
            },
        );
        true
    }

    /// Gives back what `ip` took.
    pub(super) fn give(&self, ip: IpAddr, requests: usize, bytes: usize) {
        let mut held = self.lock();
        let Some(t) = held.get_mut(&ip) else { return };
        t.requests = t.requests.saturating_sub(requests);
        t.bytes = t.bytes.saturating_sub(bytes);
        if *t == Tally::default() {
            held.remove(&ip);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_refusal_is_logged_at_most_once_a_minute() {
        let t0 = Instant::now();
        assert!(warn_due(None, t0));
        assert!(!warn_due(Some(t0), t0));
        assert!(!warn_due(Some(t0), t0 + Duration::from_secs(59)));
        assert!(warn_due(Some(t0), t0 + SHARE_WARN_EVERY));
        // A clock read before the last warning is not a minute later.
        assert!(!warn_due(Some(t0 + Duration::from_secs(1)), t0));
    }

    #[tokio::test(start_paused = true)]
    async fn the_node_logs_its_first_share_refusal_then_one_a_minute() {
        let shares = Shares::new(ShareLimits::quarter_of(8, 0, 0));
        let mut logged = vec![];
        for _ in 0..5 {
            logged.push(shares.warn_now());
            tokio::time::advance(Duration::from_secs(20)).await;
        }
        // At 0, 20, 40, 60 and 80 s: the first, then the one at 60 s.
        assert_eq!(logged, [true, false, false, true, false]);
    }
}
