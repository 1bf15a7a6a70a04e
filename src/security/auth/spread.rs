//! Whether a change made here is acknowledged (issue 12 §2, audit12-32 M1):
//! the peers' verdicts on the push of the new state, and the decision —
//! in force on a quorum of the cluster's members (this node counted), as
//! Cassandra 4.1's `auth_write_consistency_level`, or not, naming the peers
//! that do not hold it yet and why; or superseded, when a peer holds a
//! later change undoing it (review-clock34b M2). Sans I/O: the push itself is
//! `node::auth_sync`, the HTTP answer `admin::auth_routes`.
//!
//! Must not: talk to peers, or roll a change back (a change short of a
//! quorum stays durable here and keeps spreading by anti-entropy while
//! this node is up).

use super::cells::{Kept, Stamp};
use super::model::AuthState;
use crate::clock::rfc3339;

/// The reason a peer gives when it refuses a state whose clock is more than
/// [`super::MAX_OFFSET_MS`] ahead of its own (`SyncAuth`'s message holds
/// `clock_ahead: `; the metric `geokv_auth_states_refused_total` uses it as
/// label).
pub const CLOCK_AHEAD: &str = "clock_ahead";

/// How the answer to a change short of a quorum opens (the CLI looks for
/// it: the change was made, and a generated token must still be shown).
pub const MADE_HERE: &str = "made on this node";

/// How the answer to a change that a later change superseded opens (409;
/// the CLI looks for it).
pub const SUPERSEDED: &str = "superseded";

/// Counted per change made on this node and answered, by `outcome`:
/// `acknowledged` (200: a quorum of the members holds it),
/// `short_of_quorum` (503 "made on this node": in force on fewer),
/// `superseded` (409: applied, then undone by a later change a peer or
/// this node holds), `failed` (500: the save failed or its task was lost,
/// so it may have been made; counted in `admin::auth_routes`). Changes
/// refused before they were stamped are `geokv_auth_changes_refused_total`.
pub const CHANGES_ANSWERED: &str = "geokv_auth_changes_total";

/// The name this node's own verdict is listed under ([`Spread::with_self`]).
pub const THIS_NODE: &str = "this node";

/// What one peer's answer to the push says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Its state in force holds the change: every cell the change wrote
    /// carries its stamp (or a later one asking the same).
    Holds,
    /// Its state holds a later change, stamped `stamp` by the process
    /// `writer` (the stamp's tie-break), that undoes a cell the change
    /// wrote (review-clock34b M2): the change does not take effect as
    /// asked, on any node once the later one spreads.
    Superseded { stamp: Stamp, writer: u64 },
    /// It answered and refused the state: `reason` ([`CLOCK_AHEAD`], or
    /// `refused` for another refusal), `detail` its message.
    Refused {
        reason: &'static str,
        detail: String,
    },
    /// No verdict: unreachable, no answer in time, or an answer that does
    /// not hold the change yet.
    Missed(String),
}

impl Verdict {
    /// The verdict of a peer that answered `theirs` to our offer of `ours`,
    /// the state of a change made here (stamped `ours.clock()`, the newest
    /// stamp it has): per cell the change wrote, theirs holds it, a later
    /// change undoes it, or neither yet
    /// ([`RoleCells::kept`](super::cells::RoleCells::kept)); any undone
    /// makes it [`Verdict::Superseded`] by the latest such change. A state
    /// with no cell of its newest stamp (an empty or upgraded one, offered
    /// by anti-entropy) is held when merging it into theirs changes nothing.
    pub fn of_answer(ours: &AuthState, theirs: &AuthState) -> Verdict {
        let at = ours.clock();
        let (mut written, mut held, mut later) = (0, 0, None);
        for (name, cells) in &ours.cells {
            for slot in cells.written_at(at) {
                written += 1;
                match theirs.cells.get(name).map(|t| t.kept(&slot, at)) {
                    Some(Kept::Ours) => held += 1,
                    Some(Kept::Later(stamp)) => later = later.max(Some(stamp)),
                    Some(Kept::NotYet) | None => {}
                }
            }
        }
        if let Some(stamp) = later {
            let writer = stamp.node;
            return Verdict::Superseded { stamp, writer };
        }
        let holds = match written {
            0 => theirs.clone().merge(ours.clone()) == *theirs,
            _ => held == written,
        };
        if holds {
            Verdict::Holds
        } else {
            Verdict::Missed("its answer does not hold the change yet".into())
        }
    }

    /// The verdict of a peer that answered with an error saying `message`.
    pub fn of_refusal(message: &str) -> Verdict {
        let reason = if message.contains(&format!("{CLOCK_AHEAD}: ")) {
            CLOCK_AHEAD
        } else {
            "refused"
        };
        Verdict::Refused {
            reason,
            detail: message.to_string(),
        }
    }
}

/// One peer's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    pub peer: String,
    pub verdict: Verdict,
}

/// How far a change made here has spread when its answer is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spread {
    /// The cluster's members, this node counted.
    pub members: usize,
    /// The members holding the change, this node counted.
    pub holding: usize,
    /// The peers that do not hold it (yet), with why.
    pub missing: Vec<Ack>,
}

impl Spread {
    /// The decision over the verdicts of this node's `peers` (every other
    /// member): a peer without a verdict in `acks` is missing ("no answer
    /// within `waited_ms` ms").
    pub fn decide(peers: &[String], acks: Vec<Ack>, waited_ms: u64) -> Spread {
        let mut missing = Vec::new();
        let mut holding = 1;
        for peer in peers {
            match acks.iter().find(|a| &a.peer == peer) {
                Some(a) if a.verdict == Verdict::Holds => holding += 1,
                Some(a) => missing.push(a.clone()),
                None => missing.push(Ack {
                    peer: peer.clone(),
                    verdict: Verdict::Missed(format!("no answer within {waited_ms} ms")),
                }),
            }
        }
        Spread {
            members: peers.len() + 1,
            holding,
            missing,
        }
    }

    /// A majority of the members.
    pub fn quorum(&self) -> usize {
        self.members / 2 + 1
    }

    /// Whether the change is in force on a quorum: it is acknowledged.
    pub fn acknowledged(&self) -> bool {
        self.holding >= self.quorum()
    }

    /// The latest change that supersedes this one, and the peers holding
    /// it (review-clock34b M2), if any peer answered one: the change then
    /// did not take effect as asked, whatever the count of holders (the
    /// later change wins on every node once it spreads).
    pub fn superseded(&self) -> Option<(Stamp, Vec<&str>)> {
        let stamp_of = |a: &Ack| match a.verdict {
            Verdict::Superseded { stamp, .. } => Some(stamp),
            _ => None,
        };
        let latest = self.missing.iter().filter_map(stamp_of).max()?;
        let holders = (self.missing.iter())
            .filter(|a| stamp_of(a) == Some(latest))
            .map(|a| a.peer.as_str());
        Some((latest, holders.collect()))
    }

    /// This node's own verdict on the change (review-clock35 L4): if it
    /// holds a later change undoing it by now (installed from another
    /// node's push or an answer), it no longer counts as holding it and is
    /// listed as [`THIS_NODE`].
    pub fn with_self(mut self, verdict: Verdict) -> Spread {
        if matches!(verdict, Verdict::Superseded { .. }) {
            self.holding = self.holding.saturating_sub(1);
            let peer = THIS_NODE.to_string();
            self.missing.push(Ack { peer, verdict });
        }
        self
    }

    /// The answer (409) to a change superseded by a later one, stamped
    /// `stamp` (this node's clock; its `node` is this process's writer),
    /// if it was ([`Spread::superseded`]), said at `now_ms` (this node's
    /// clock): where the change is in force, and, when the later stamp is
    /// more than [`super::MAX_OFFSET_MS`] ahead of this node's clock, that
    /// the later writer's clock is wrong and a retry here will not help
    /// (review-clock35 M2).
    pub fn superseded_answer(&self, stamp: Stamp, now_ms: u64) -> Option<String> {
        let (later, on) = self.superseded()?;
        let me = if later.node == stamp.node {
            " (this node)"
        } else {
            ""
        };
        let head = format!(
            "{SUPERSEDED}: a later change, stamped {} ms since the epoch ({}) by writer \
             {:016x}{me} and held by {}, undoes this one (stamped {} ms, {}, by this node's clock; \
             per role and grant the later stamp wins, and a re-created role counts as later): \
             this change was applied (saved here, nothing is rolled back) and is in force on the \
             {} of {} members that held it when they answered",
            later.ms,
            rfc3339(later.ms),
            later.node,
            on.join(", "),
            stamp.ms,
            rfc3339(stamp.ms),
            self.holding,
            self.members
        );
        let ahead_ms = later.ms.saturating_sub(now_ms);
        if ahead_ms > super::MAX_OFFSET_MS {
            return Some(format!(
                "{head}; the later change is stamped {} s ahead of this node's clock (writer \
                 {:016x}'s clock is wrong): this node and every node whose clock is right refuse \
                 it (clock_ahead), so this change stays in force where it is until their clocks \
                 reach that stamp, and is then overridden; retrying here will not help (a retry \
                 is stamped below it too); fix that writer's clock (its node logs `auth: this \
                 process stamps its changes as writer W` at start)",
                ahead_ms / 1000,
                later.node
            ));
        }
        Some(format!(
            "{head}, only until the later change reaches them; check with `geokv auth list` and \
             make the change again if it is still wanted (it is then stamped after the later one)"
        ))
    }

    /// What the answer says when the change is not acknowledged; the
    /// change is stamped `stamp_ms` (ms since the epoch, this node's clock).
    pub fn short_of_quorum(&self, version: u64, stamp_ms: u64) -> String {
        let missing: Vec<String> = (self.missing.iter())
            .map(|a| match &a.verdict {
                Verdict::Holds => format!("{} (holds it)", a.peer),
                Verdict::Superseded { stamp, writer } => format!(
                    "{} holds a later change at {} ms ({}) from writer {writer:016x}",
                    a.peer,
                    stamp.ms,
                    rfc3339(stamp.ms)
                ),
                Verdict::Refused { reason, detail } => {
                    format!("{} refused it ({reason}): {detail}", a.peer)
                }
                Verdict::Missed(why) => format!("{}: {why}", a.peer),
            })
            .collect();
        let mut text = format!(
            "{MADE_HERE} (version {version}, saved and synced here), in force on {} of {} \
             members, short of a quorum of {}; it is not rolled back and keeps spreading by \
             anti-entropy while this node is up (repeat it on another node if this one is \
             going away); not yet in force on: {}",
            self.holding,
            self.members,
            self.quorum(),
            missing.join("; ")
        );
        if self.missing.iter().any(|a| a.verdict.is_clock_ahead()) {
            text += &clock_ahead_warning(stamp_ms);
        }
        text
    }
}

impl Verdict {
    fn is_clock_ahead(&self) -> bool {
        matches!(self, Verdict::Refused { reason, .. } if *reason == CLOCK_AHEAD)
    }
}

/// What a change stamped ahead of its peers' clocks will do
/// (review-authq33 H1): it is deferred, not dropped, and once their clocks
/// reach it, it wins over every change of the same role or grant made
/// elsewhere before then, acknowledged ones included.
fn clock_ahead_warning(stamp_ms: u64) -> String {
    let window_s = super::MAX_OFFSET_MS / 1000;
    format!(
        "; WARNING: this node's clock is ahead of theirs; the change is stamped {stamp_ms} ms \
         since the epoch by this node's clock, and when their clocks come within {window_s} s \
         of it they take it, and it then overrides every change of the same role or grant \
         made elsewhere before then, even one answered 200; correct this node's clock (NTP) \
         and check its changes once they spread"
    )
}

#[cfg(test)]
#[path = "spread_tests.rs"]
mod tests;
