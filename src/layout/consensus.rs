//! Layout changes as a compare-and-set on the cluster: single-decree Paxos
//! per layout version, sans I/O (events in, replies and outcomes out).
//!
//! Owns the [`Ballot`], the acceptor's per-slot state ([`AcceptorSlot`],
//! [`respond`]) and the proposer's state machine ([`Proposer`]). The slot
//! of a change is the version it creates: the change from layout v is
//! decided in slot v+1, among the acceptors named by layout v; a [`Quorum`]
//! of them must promise, then accept (which sets are quorums, and why any
//! two meet: `layout::acceptors`).
//! Must not: do I/O, persist, time out or retry; the caller (the view's
//! layout CAS) sends messages, persists an acceptor's state *before* its
//! reply leaves, installs chosen layouts and decides when to give up.
//!
//! Invariants (checked by the property tests in `consensus_tests.rs`):
//! - I1, at most one value is chosen per slot (accepted by a majority at
//!   one ballot), under loss, duplication, reordering and any number of
//!   competing proposers.
//! - I2, a chosen value is never replaced: every ballot above the one that
//!   chose it carries the same value (a proposer with a majority of
//!   promises that reports an accepted value proposes the one with the
//!   highest ballot, never its own).
//! - I3, a proposer reports [`Outcome::Chosen`] only for the value chosen
//!   in its slot, and `ours` only when that value is its own.
//! - I4, a proposer that gets a majority of promises none of which reports
//!   an accepted value gets its own value chosen once a majority of its
//!   accepts arrive with no higher ballot in between.
//! - I5, an acceptor that already installed the slot's layout answers
//!   [`Reply::Decided`] with it (only chosen layouts are installed), so its
//!   Paxos state for installed slots may be dropped.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// A proposal number: ordered by round, then by proposer id. The id must
/// be unique per proposer (the driver draws one per proposal), so two
/// proposers never share a ballot.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Ballot {
    pub round: u64,
    pub node: String,
}

/// What a proposer sends to every acceptor of its slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Msg<V> {
    /// Phase 1: promise to ignore ballots below `ballot`, and report what
    /// you accepted.
    Prepare { slot: u64, ballot: Ballot },
    /// Phase 2: accept `value` at `ballot` unless you promised higher.
    Accept { slot: u64, ballot: Ballot, value: V },
}

/// An acceptor's answer to a [`Msg`], naming the ballot it answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply<V> {
    Promise {
        ballot: Ballot,
        accepted: Option<(Ballot, V)>,
    },
    Accepted {
        ballot: Ballot,
    },
    /// The acceptor promised `promised` > `ballot`.
    Rejected {
        ballot: Ballot,
        promised: Ballot,
    },
    /// The slot is decided and installed there: this is its value.
    Decided {
        value: V,
    },
}

/// An acceptor's durable state for one slot. Persisted (synced) by the
/// caller whenever [`respond`] says it changed, before the reply is sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptorSlot<V> {
    pub promised: Option<Ballot>,
    pub accepted: Option<(Ballot, V)>,
}

impl<V> Default for AcceptorSlot<V> {
    fn default() -> Self {
        AcceptorSlot {
            promised: None,
            accepted: None,
        }
    }
}

/// The acceptor: answers `msg` for its slot given its state there and,
/// when the slot's layout is already installed, that layout (`decided`).
/// Returns the reply and whether `state` changed (persist it first).
pub fn respond<V: Clone>(
    state: &mut AcceptorSlot<V>,
    decided: Option<&V>,
    msg: &Msg<V>,
) -> (Reply<V>, bool) {
    if let Some(value) = decided {
        return (
            Reply::Decided {
                value: value.clone(),
            },
            false,
        );
    }
    let ballot = match msg {
        Msg::Prepare { ballot, .. } | Msg::Accept { ballot, .. } => ballot,
    };
    if let Some(p) = &state.promised {
        if p > ballot {
            let promised = p.clone();
            return (
                Reply::Rejected {
                    ballot: ballot.clone(),
                    promised,
                },
                false,
            );
        }
    }
    let changed = state.promised.as_ref() != Some(ballot);
    state.promised = Some(ballot.clone());
    match msg {
        Msg::Prepare { ballot, .. } => (
            Reply::Promise {
                ballot: ballot.clone(),
                accepted: state.accepted.clone(),
            },
            changed,
        ),
        Msg::Accept { ballot, value, .. } => {
            let again = matches!(&state.accepted, Some((b, _)) if b == ballot);
            state.accepted = Some((ballot.clone(), value.clone()));
            (
                Reply::Accepted {
                    ballot: ballot.clone(),
                },
                changed || !again,
            )
        }
    }
}

/// How a proposer's attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome<V> {
    /// `value` is chosen in the slot (install and spread it); `ours` when
    /// it is the proposer's own value, else its own change was refused.
    Chosen { value: V, ours: bool },
    /// An acceptor promised a higher ballot: try again above `by`'s round
    /// (the caller decides whether, and when).
    Preempted { by: Ballot },
}

/// What the proposer wants done after an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step<V> {
    /// Send this to every acceptor.
    Broadcast(Msg<V>),
    /// Nothing until more replies arrive.
    Wait,
    /// The attempt is over.
    Done(Outcome<V>),
}

enum Phase<V> {
    Preparing {
        promised: BTreeSet<String>,
        highest: Option<(Ballot, V)>,
    },
    Accepting {
        value: V,
        accepted: BTreeSet<String>,
    },
    Done,
}

/// Which sets of acceptors decide a slot: at least `needed` of `members`,
/// with `required` among them when set. Every two quorums that proposers
/// of one slot may use must meet (`layout::acceptors` proves it for the
/// layout's rule).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quorum {
    pub members: BTreeSet<String>,
    pub needed: usize,
    pub required: Option<String>,
}

impl Quorum {
    /// A plain majority of `members`.
    pub fn majority(members: BTreeSet<String>) -> Quorum {
        let needed = members.len() / 2 + 1;
        Quorum {
            members,
            needed,
            required: None,
        }
    }

    /// Whether `by` (acceptors of `members`) is a quorum.
    pub fn is_met(&self, by: &BTreeSet<String>) -> bool {
        by.len() >= self.needed && self.required.as_ref().is_none_or(|r| by.contains(r))
    }
}

/// One attempt to choose `value` in `slot` at one ballot.
pub struct Proposer<V> {
    slot: u64,
    ballot: Ballot,
    quorum: Quorum,
    own: V,
    phase: Phase<V>,
}

impl<V: Clone + PartialEq> Proposer<V> {
    /// An attempt at `ballot`; `acceptors` are the members of the layout
    /// the slot follows (at least one).
    pub fn new(slot: u64, ballot: Ballot, acceptors: BTreeSet<String>, own: V) -> Proposer<V> {
        Proposer::with_quorum(slot, ballot, Quorum::majority(acceptors), own)
    }

    /// An attempt at `ballot` decided by `quorum`.
    pub fn with_quorum(slot: u64, ballot: Ballot, quorum: Quorum, own: V) -> Proposer<V> {
        Proposer {
            slot,
            ballot,
            quorum,
            own,
            phase: Phase::Preparing {
                promised: BTreeSet::new(),
                highest: None,
            },
        }
    }

    /// How many acceptors make a quorum.
    pub fn majority(&self) -> usize {
        self.quorum.needed
    }

    pub fn ballot(&self) -> &Ballot {
        &self.ballot
    }

    /// The first message: prepare at this attempt's ballot.
    pub fn start(&self) -> Step<V> {
        Step::Broadcast(Msg::Prepare {
            slot: self.slot,
            ballot: self.ballot.clone(),
        })
    }

    /// Takes `reply` from acceptor `from`. Replies from non-acceptors, for
    /// other ballots, or repeated, change nothing.
    pub fn on_reply(&mut self, from: &str, reply: Reply<V>) -> Step<V> {
        if matches!(self.phase, Phase::Done) || !self.quorum.members.contains(from) {
            return Step::Wait;
        }
        match reply {
            Reply::Decided { value } => self.finish(Outcome::Chosen {
                ours: value == self.own,
                value,
            }),
            Reply::Rejected { ballot, promised } if ballot == self.ballot => {
                self.finish(Outcome::Preempted { by: promised })
            }
            Reply::Promise { ballot, accepted } if ballot == self.ballot => {
                self.on_promise(from, accepted)
            }
            Reply::Accepted { ballot } if ballot == self.ballot => self.on_accepted(from),
            _ => Step::Wait,
        }
    }

    fn on_promise(&mut self, from: &str, accepted: Option<(Ballot, V)>) -> Step<V> {
        let Phase::Preparing { promised, highest } = &mut self.phase else {
            return Step::Wait;
        };
        promised.insert(from.to_string());
        if let Some((b, v)) = accepted {
            if highest.as_ref().is_none_or(|(h, _)| b > *h) {
                *highest = Some((b, v));
            }
        }
        if !self.quorum.is_met(promised) {
            return Step::Wait;
        }
        let value = match highest.take() {
            Some((_, v)) => v,
            None => self.own.clone(),
        };
        self.phase = Phase::Accepting {
            value: value.clone(),
            accepted: BTreeSet::new(),
        };
        Step::Broadcast(Msg::Accept {
            slot: self.slot,
            ballot: self.ballot.clone(),
            value,
        })
    }

    fn on_accepted(&mut self, from: &str) -> Step<V> {
        let Phase::Accepting { value, accepted } = &mut self.phase else {
            return Step::Wait;
        };
        accepted.insert(from.to_string());
        if !self.quorum.is_met(accepted) {
            return Step::Wait;
        }
        let value = value.clone();
        self.finish(Outcome::Chosen {
            ours: value == self.own,
            value,
        })
    }

    fn finish(&mut self, outcome: Outcome<V>) -> Step<V> {
        self.phase = Phase::Done;
        Step::Done(outcome)
    }
}
