//! The peers' clocks as this node measures them (issue 12, review-authq33
//! H1): every `SyncAuth` message, offer and answer, carries its sender's
//! wall clock (`sent_at_ms`; 0 from an older build: unknown), so each side
//! learns the other's offset (the peer's clock minus ours; on a round trip
//! against the midpoint of the call, as NTP does, so half the round trip
//! is corrected). A change is refused before anything is stamped
//! ([`PeerClocks::refusal`]) unless a quorum of the peers heard, this node
//! counted, is within [`MAX_OFFSET_MS`] of its clock, either way
//! (review-clock34 H1). Ahead: its peers would defer its stamps
//! (`clock_ahead`) and take them once their clocks caught up, overriding
//! changes acknowledged elsewhere meanwhile. Behind: its stamps are older
//! than cells its peers already hold, so a revoke would be acknowledged
//! by them (their merge keeps what they had) and never take effect.
//!
//! Sans I/O: times are passed in (wall ms, monotonic instants); the
//! measuring is `node::auth_sync` and `sync::serve_from`, the refusal
//! `changes.rs`. Must not: read a clock, stamp or change anything.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::MAX_OFFSET_MS;

/// How long a peer's offset counts. Anti-entropy exchanges with a random
/// member every second in both directions, so a live peer of a cluster of
/// up to ~20 nodes is heard several times within it; one not heard within
/// it is unknown (down, partitioned, or an older build), and an unknown
/// peer does not count for or against a change.
pub const FRESH: Duration = Duration::from_secs(20);

/// The gauge of each peer's measured offset (seconds, the peer's clock
/// minus this node's), by `peer`.
pub const OFFSET_METRIC: &str = "geokv_auth_peer_clock_offset_seconds";

/// `a - b` in ms, saturated.
fn diff(a: u64, b: u64) -> i64 {
    (a as i128 - b as i128).clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

/// The offset (ms, theirs minus ours) of a peer whose clock read
/// `peer_ms` when it answered a call this node sent at `sent_ms` and got
/// the answer at `received_ms` (its wall clock): measured against the
/// midpoint, off by at most half the round trip. `None` when the peer sent
/// no clock (0: an older build).
pub fn on_round_trip(peer_ms: u64, sent_ms: u64, received_ms: u64) -> Option<i64> {
    let mid = ((sent_ms as u128 + received_ms as u128) / 2) as u64;
    (peer_ms != 0).then(|| diff(peer_ms, mid))
}

/// The offset of a peer whose message, sent when its clock read
/// `peer_ms`, arrived here at `received_ms`: low by the one-way delay.
/// `None` when the peer sent no clock.
pub fn one_way(peer_ms: u64, received_ms: u64) -> Option<i64> {
    (peer_ms != 0).then(|| diff(peer_ms, received_ms))
}

/// One peer's last measured offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Heard {
    offset_ms: i64,
    at: Instant,
}

/// Each peer's last measured offset, and when it was measured.
#[derive(Debug, Default)]
pub struct PeerClocks {
    heard: BTreeMap<String, Heard>,
}

impl PeerClocks {
    /// `peer`'s offset measured at `at` (replacing the one before).
    pub fn record(&mut self, peer: &str, offset_ms: i64, at: Instant) {
        self.heard.insert(peer.to_string(), Heard { offset_ms, at });
    }

    /// The peers heard within [`FRESH`] of `now`, with their offsets.
    pub fn fresh(&self, now: Instant) -> Vec<(String, i64)> {
        (self.heard.iter())
            .filter(|(_, h)| now.saturating_duration_since(h.at) <= FRESH)
            .map(|(p, h)| (p.clone(), h.offset_ms))
            .collect()
    }

    /// The offsets a change made at `now` is decided on: those heard
    /// within [`FRESH`]; when none was, each peer's last one, however old
    /// (review-clock34 M2: a node partitioned or quiet for 20 s keeps the
    /// offsets it last measured, since clocks do not fix themselves; the
    /// next sync with any peer replaces them, and they are kept in memory
    /// only, so nothing outlives a restart).
    pub fn counted(&self, now: Instant) -> Vec<(String, i64)> {
        let fresh = self.fresh(now);
        if !fresh.is_empty() {
            return fresh;
        }
        (self.heard.iter())
            .map(|(p, h)| (p.clone(), h.offset_ms))
            .collect()
    }

    /// Why a change made now (`now`) must be refused, if it must
    /// ([`far_from_most`] of the peers [`counted`](Self::counted)).
    pub fn refusal(&self, now: Instant) -> Option<FarFromPeers> {
        let offsets = self.counted(now);
        far_from_most(&offsets).then_some(FarFromPeers { offsets })
    }
}

/// Whether this node's clock is more than [`MAX_OFFSET_MS`] off a peer's
/// whose offset (theirs minus ours) is `offset_ms`, either way.
pub fn is_far(offset_ms: i64) -> bool {
    offset_ms.unsigned_abs() > MAX_OFFSET_MS
}

/// Whether this node's clock is more than [`MAX_OFFSET_MS`] off (ahead or
/// behind) more of the peers in `offsets` than it is not. With every
/// other member heard, that is exactly "fewer than a quorum of the
/// members, this node counted, are within the bound": with w within and f
/// far of n = w + f + 1 members, 1 + w < n / 2 + 1 iff w < f. So a
/// minority of wrong clocks, either way, never makes a node of a healthy
/// majority refuse; when no quorum agrees, every node refuses until a
/// clock is fixed. With some not heard, it decides on those heard; no peer
/// ever heard never refuses (the quorum acknowledgement answers 503 if
/// the others refuse).
pub fn far_from_most(offsets: &[(String, i64)]) -> bool {
    let far = offsets.iter().filter(|(_, o)| is_far(*o)).count();
    far > offsets.len() - far
}

/// A change refused because this node's clock is far from most of its
/// peers': the offsets it was decided on ([`PeerClocks::counted`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{reason}: this node's clock is more than {bound} s ahead of or behind most of its peers' \
     (offsets measured, peer's clock minus this node's, last {fresh} s or else the last known: \
     {list}); nothing was stamped or saved: a change stamped ahead would be refused by those \
     peers until their clocks reached its stamp, and would then override changes made elsewhere \
     meanwhile; one stamped behind would lose to changes they already hold, and be acknowledged \
     without taking effect; fix this node's clock (NTP, chrony) and retry",
    reason = CLOCK_SKEW,
    bound = MAX_OFFSET_MS / 1000,
    fresh = FRESH.as_secs(),
    list = self.list()
)]
pub struct FarFromPeers {
    pub offsets: Vec<(String, i64)>,
}

/// The reason of a change refused by [`FarFromPeers`] (409 text prefix
/// `clock_skew: `, and the `reason` of `geokv_auth_changes_refused_total`).
pub const CLOCK_SKEW: &str = "clock_skew";

impl FarFromPeers {
    /// `n2 -7200.000 s (this node ahead), n3 +0.012 s (within)`.
    fn list(&self) -> String {
        let each = (self.offsets.iter()).map(|(p, o)| {
            let side = match *o {
                o if !is_far(o) => "within",
                o if o < 0 => "this node ahead",
                _ => "this node behind",
            };
            format!("{p} {:+.3} s ({side})", *o as f64 / 1000.0)
        });
        each.collect::<Vec<_>>().join(", ")
    }
}

#[cfg(test)]
#[path = "peer_clocks_tests.rs"]
mod tests;
