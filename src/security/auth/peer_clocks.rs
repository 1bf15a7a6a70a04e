//! The peers' clocks as this node measures them (issue 12, review-authq33
//! H1): every `SyncAuth` message, offer and answer, carries its sender's
//! wall clock (`sent_at_ms`; 0 from an older build: unknown), so each side
//! learns the other's offset (the peer's clock minus ours; on a round trip
//! against the midpoint of the call, as NTP does, so half the round trip
//! is corrected), kept with when it was measured, and which members were
//! heard since this process started (with or without a clock).
//!
//! [`PeerClocks::hold`] is the one decision on a change, made before
//! anything is stamped, in this order: a wait (503 `clock not yet
//! measured`, [`NotYetHeard`]) while fewer than a quorum of the members,
//! this node counted, were heard since start (review-clock35 M1); a
//! refusal (409 `clock_skew`, [`FarFromPeers`]) when this node's clock is
//! more than [`MAX_OFFSET_MS`] off, either way, more of the members than
//! not, each judged by its last measured offset, however old
//! (review-clock34 H1, review-clock34b M1); else a wait while fewer than a
//! quorum are known within the bound since start (review-clock35b H1: the
//! offsets are in memory only, so after a restart the members not yet
//! measured count for neither side). Ahead: its peers would defer its
//! stamps (`clock_ahead`) and take them once their clocks caught up,
//! overriding changes acknowledged elsewhere meanwhile. Behind: its stamps
//! are older than cells its peers already hold, so its change loses to
//! them (`spread` answers it `superseded`).
//!
//! Sans I/O: times (ms on a monotonic clock, such as since the process
//! started: an offset's age is a duration) and the members are passed
//! in; the measuring is `node::auth_sync` and `sync::serve_from`, the call
//! `changes.rs`. Must not: read a clock, stamp or change anything.

use std::collections::{BTreeMap, BTreeSet};

use super::MAX_OFFSET_MS;

/// The gauge of each peer's measured offset (seconds, the peer's clock
/// minus this node's), by `peer`; `/metrics` shows only the current
/// members' series ([`members_only`]).
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

/// A peer's offset as measured (ms, its clock minus ours) at `at_ms` (a
/// monotonic time, not the wall clock: an age read from a wall clock
/// stepped since would be false, review-clock36 M1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Measured {
    offset_ms: i64,
    at_ms: u64,
}

/// Each peer's last measured offset and when, and the peers heard since
/// this process started.
#[derive(Debug, Default)]
pub struct PeerClocks {
    heard: BTreeMap<String, Measured>,
    since_start: BTreeSet<String>,
}

/// Why a change made now is not stamped ([`PeerClocks::hold`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hold {
    /// Fewer than a quorum of the members heard since start (503; its text
    /// counts and names as [`Hold::NotWithin`]'s does: review-h1-35 L1).
    NotHeard(NotYetHeard),
    /// This node's clock is far from most members' (409 `clock_skew`).
    Far(FarFromPeers),
    /// A quorum heard, but fewer than a quorum known within the bound
    /// since start (503).
    NotWithin(NotYetHeard),
}

impl Hold {
    /// Its `reason` label on `geokv_auth_changes_refused_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            Hold::NotHeard(_) => NOT_HEARD,
            Hold::Far(_) => CLOCK_SKEW,
            Hold::NotWithin(_) => NOT_WITHIN,
        }
    }
}

impl PeerClocks {
    /// `peer`'s offset as measured at `at_ms` (monotonic ms), replacing the
    /// one before; it is heard since start.
    pub fn record(&mut self, peer: &str, offset_ms: i64, at_ms: u64) {
        self.since_start.insert(peer.to_string());
        let measured = Measured { offset_ms, at_ms };
        self.heard.insert(peer.to_string(), measured);
    }

    /// Why a change made at `now_ms` (monotonic ms) must not be
    /// stamped, if it must: [`not_yet_heard`](Self::not_yet_heard) (told as
    /// [`not_yet_within`](Self::not_yet_within) counts and names, which
    /// then holds too, since the members known within are heard), then
    /// [`refusal`](Self::refusal), then `not_yet_within` (after the
    /// refusal, so a far clock is told as such, not as a wait). So: 409
    /// iff a quorum is heard and more members are far than within; else a
    /// wait iff fewer than a quorum, this node counted, are known within.
    pub fn hold(&self, members: Option<&[String]>, now_ms: u64) -> Option<Hold> {
        if let Some(heard) = self.not_yet_heard(members) {
            return Some(not_heard(heard, self.not_yet_within(members)));
        }
        if let Some(far) = self.refusal(members, now_ms) {
            return Some(Hold::Far(far));
        }
        self.not_yet_within(members).map(Hold::NotWithin)
    }

    /// `peer` was heard without a clock (an older build, or a rollback to
    /// one): heard since start, and its last offset is dropped, since it
    /// may predate a clock fix and nothing will replace it
    /// (review-clock35 L2): it counts neither way.
    pub fn record_no_clock(&mut self, peer: &str) {
        self.since_start.insert(peer.to_string());
        self.heard.remove(peer);
    }

    /// Why a change made now must wait (review-clock35 M1): fewer than a
    /// quorum of the members, this node counted, heard since this process
    /// started (by `SyncAuth`, either way, with or without a clock). The
    /// offsets are kept in memory only, so without this a node restarted
    /// inside a wrong-clock minority cut off from the rest would measure
    /// only that minority and stamp. No wedge: a node that reaches a
    /// quorum hears it within seconds (anti-entropy every second, both
    /// ways); one that cannot could not have its change acknowledged, but
    /// it cannot make a change in force on itself alone either (a revoke
    /// on a node cut off) until it hears a quorum. `None` members (not
    /// known: a tool, a test): never waits.
    pub fn not_yet_heard(&self, members: Option<&[String]>) -> Option<NotYetHeard> {
        self.short_of_quorum(members, |m| self.since_start.contains(m))
    }

    /// Why a change made now must still wait once a quorum was heard and
    /// the change is not refused as far (review-clock35b H1): fewer than a
    /// quorum of the members, this node counted, are *known within* the
    /// bound, that is heard since start with an offset within it or with no
    /// clock at all (an older build: it decides neither way, so an upgrade
    /// is not blocked). Without it a node restarted inside a wrong-clock
    /// minority that has heard, say, one peer of that minority and one
    /// right peer (1 within, 1 far: not refused) would stamp far ahead; the
    /// members it has not measured since the restart count for neither
    /// side. With every member measured with a clock this never holds when
    /// [`refusal`](Self::refusal) does not. Checked after `refusal`, so a
    /// far clock is told as such (409), not as a wait.
    pub fn not_yet_within(&self, members: Option<&[String]>) -> Option<NotYetHeard> {
        self.short_of_quorum(members, |m| {
            self.since_start.contains(m) && self.heard.get(m).is_none_or(|o| !is_far(o.offset_ms))
        })
    }

    /// [`NotYetHeard`] when fewer than a quorum of the members, this node
    /// counted, are `counts`.
    fn short_of_quorum(
        &self,
        members: Option<&[String]>,
        counts: impl Fn(&String) -> bool,
    ) -> Option<NotYetHeard> {
        let members = members?;
        let n = members.len() + 1;
        let quorum = n / 2 + 1;
        let (heard, missing): (Vec<&String>, Vec<&String>) =
            members.iter().partition(|m| counts(m));
        (1 + heard.len() < quorum).then(|| NotYetHeard {
            heard: 1 + heard.len(),
            members: n,
            quorum,
            missing: missing.into_iter().cloned().collect(),
        })
    }

    /// The offsets a change is decided on (review-clock34b M1): each
    /// member's last measured one, however old (a member not heard since,
    /// down or partitioned, keeps the offset it last had: clocks do not
    /// fix themselves; the next sync with it replaces it). `members`: the
    /// other members' ids (`None`: not known, a node without a cluster
    /// view, such as a tool or a test: every peer heard). A member never
    /// measured (an older build sends no clock; none after a restart until
    /// its first sync) does not count, nor does a peer heard that is not,
    /// or no longer, a member. Kept in memory only.
    pub fn counted(&self, members: Option<&[String]>) -> Vec<(String, i64)> {
        let member = |p: &String| members.is_none_or(|m| m.contains(p));
        (self.heard.iter())
            .filter(|(p, _)| member(p))
            .map(|(p, o)| (p.clone(), o.offset_ms))
            .collect()
    }

    /// Why a change made at `now_ms` (monotonic ms) must be refused, if it
    /// must ([`far_from_most`] of the offsets [`counted`](Self::counted)), with
    /// how long ago each was measured (review-clock35 L3: display only).
    pub fn refusal(&self, members: Option<&[String]>, now_ms: u64) -> Option<FarFromPeers> {
        let counted = self.counted(members);
        if !far_from_most(&counted) {
            return None;
        }
        let offsets = (counted.into_iter())
            .map(|(peer, offset_ms)| {
                let at_ms = self.heard.get(&peer).map_or(now_ms, |m| m.at_ms);
                let age_ms = now_ms.saturating_sub(at_ms);
                Offset {
                    peer,
                    offset_ms,
                    age_ms,
                }
            })
            .collect();
        Some(FarFromPeers { offsets })
    }
}

/// The wait of a change while fewer than a quorum were heard since start:
/// told as the within check counts and names (`within`, which holds too
/// while within ⊆ heard), and still a wait should that ever break (fails
/// closed: review-clock36 L1).
fn not_heard(heard: NotYetHeard, within: Option<NotYetHeard>) -> Hold {
    Hold::NotHeard(within.unwrap_or(heard))
}

/// `/metrics` text without the [`OFFSET_METRIC`] series of peers that are
/// not in `members` (a peer removed from the layout: review-clock34 L3;
/// the exporter cannot drop a series, so it is left out where rendered).
pub fn members_only(text: &str, members: &[String]) -> String {
    let head = format!("{OFFSET_METRIC}{{");
    let gone = |line: &str| {
        let Some(labels) = line.strip_prefix(head.as_str()) else {
            return false;
        };
        let peer = (labels.split("peer=\"").nth(1)).and_then(|p| p.split('"').next());
        peer.is_some_and(|p| !members.iter().any(|m| m == p))
    };
    let mut out: String = (text.lines())
        .filter(|l| !gone(l))
        .collect::<Vec<_>>()
        .join("\n");
    if text.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// Whether this node's clock is more than [`MAX_OFFSET_MS`] off a peer's
/// whose offset (theirs minus ours) is `offset_ms`, either way.
pub fn is_far(offset_ms: i64) -> bool {
    offset_ms.unsigned_abs() > MAX_OFFSET_MS
}

/// Whether this node's clock is more than [`MAX_OFFSET_MS`] off (ahead or
/// behind) more of the peers in `offsets` than it is not. Given every
/// other member's offset ([`PeerClocks::counted`]: each member's last one,
/// however old), that is exactly "fewer than a quorum of the members, this
/// node counted, are within the bound": with w within and f far of n = w +
/// f + 1 members, 1 + w < n / 2 + 1 iff w < f. So a minority of wrong
/// clocks, either way, never makes a node of a healthy majority refuse,
/// whichever members are down or partitioned once it has measured them
/// since it started (they count at their last offsets); when no quorum
/// agrees, every node refuses until a clock is fixed. A member never
/// measured (an older build, or none since this node started) is left
/// out, and decides neither way here: after a restart, with a wrong
/// minority up and members down since, a change waits instead
/// ([`PeerClocks::not_yet_within`]) until a quorum is known within.
pub fn far_from_most(offsets: &[(String, i64)]) -> bool {
    let far = offsets.iter().filter(|(_, o)| is_far(*o)).count();
    far > offsets.len() - far
}

/// How the answer to a change refused by [`NotYetHeard`] opens (503;
/// the CLI looks for it: nothing was made).
pub const NOT_MEASURED: &str = "clock not yet measured";

/// A change not made because fewer than a quorum of the members (this
/// node counted) are known within the bound since this node started:
/// heard by an auth sync since then with an offset within
/// [`MAX_OFFSET_MS`] or with no clock ([`PeerClocks::not_yet_within`]),
/// whether fewer than a quorum were heard at all ([`Hold::NotHeard`]) or a
/// member heard is far ([`Hold::NotWithin`]); `missing` names the members
/// not heard since start, or far. Nothing was stamped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{NOT_MEASURED}: {heard} of {members} members heard since this node started with a clock \
     within the bound or with none (this node counted), short of a quorum of {quorum}, so its \
     clock cannot be checked against theirs; nothing was stamped or saved; not heard yet, or \
     far: {list}; retry in a few seconds (each node syncs with a random member every second); \
     if this lasts, this node cannot reach a quorum of the members, or its clock or theirs is \
     wrong",
    list = self.missing.join(", ")
)]
pub struct NotYetHeard {
    pub heard: usize,
    pub members: usize,
    pub quorum: usize,
    pub missing: Vec<String>,
}

/// The reason label (`geokv_auth_changes_refused_total`) of a change not
/// made because fewer than a quorum of the members were heard since this
/// node started ([`Hold::NotHeard`]).
pub const NOT_HEARD: &str = "not_heard";

/// The reason label of a change not made because, with a quorum heard,
/// fewer than a quorum are known within the bound ([`Hold::NotWithin`]).
pub const NOT_WITHIN: &str = "not_within";

/// A change refused because this node's clock is far from most of its
/// peers': the offsets it was decided on ([`PeerClocks::counted`]) and
/// their ages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{reason}: this node's clock is more than {bound} s ahead of or behind most of its peers' \
     (each member's last measured offset, peer's clock minus this node's, and when it was \
     measured: {list}); nothing was \
     stamped or saved: a change stamped ahead would be refused by those peers until their \
     clocks reached its stamp, and would then override changes made elsewhere meanwhile; one \
     stamped behind would lose to changes they already hold; fix this node's clock (NTP, \
     chrony) and retry",
    reason = CLOCK_SKEW,
    bound = MAX_OFFSET_MS / 1000,
    list = self.list()
)]
pub struct FarFromPeers {
    pub offsets: Vec<Offset>,
}

/// One member's offset a refusal was decided on, and how long before the
/// change it was measured (a member down keeps its last one, which may
/// predate a clock fix, or have been measured while this node's was wrong).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offset {
    pub peer: String,
    pub offset_ms: i64,
    pub age_ms: u64,
}

/// The reason of a change refused by [`FarFromPeers`] (409 text prefix
/// `clock_skew: `, and the `reason` of `geokv_auth_changes_refused_total`).
pub const CLOCK_SKEW: &str = "clock_skew";

impl FarFromPeers {
    /// `n2 -7200.000 s (this node ahead) measured 41 s ago; n3 +0.012 s
    /// (within) measured 3 d ago`.
    fn list(&self) -> String {
        let each = (self.offsets.iter()).map(|o| {
            let side = match o.offset_ms {
                ms if !is_far(ms) => "within",
                ms if ms < 0 => "this node ahead",
                _ => "this node behind",
            };
            let (p, s) = (&o.peer, o.offset_ms as f64 / 1000.0);
            format!("{p} {s:+.3} s ({side}) measured {} ago", ago(o.age_ms))
        });
        each.collect::<Vec<_>>().join("; ")
    }
}

/// An age in ms as people read it: `41 s`, `12 min`, `5 h`, `3 d` (each
/// unit up to twice the next).
fn ago(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        s if s < 120 => format!("{s} s"),
        s if s < 2 * 3600 => format!("{} min", s / 60),
        s if s < 2 * 86_400 => format!("{} h", s / 3600),
        s => format!("{} d", s / 86_400),
    }
}

#[cfg(test)]
#[path = "peer_clocks_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "peer_clocks_hold_tests.rs"]
mod hold_tests;
