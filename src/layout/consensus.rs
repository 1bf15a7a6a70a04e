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
//! - I6, a proposal builds on one value of the version before its slot
//!   (its `base`, a digest): an acceptor that installed another value of
//!   that version refuses it ([`Reply::WrongBase`], no state change), so a
//!   proposer holding a value that was not chosen (a fork) cannot get a
//!   change built on it chosen by acceptors that hold the chosen one
//!   (review-layout26 M2). An acceptor still behind that version cannot
//!   check and answers as before, so the guarantee is: no change built on
//!   another base is chosen while a majority of the slot's acceptors holds
//!   the chosen one. Promises still report every accepted value (a
//!   proposer on the chosen base finishes one built on a fork that
//!   acceptors behind took): ignoring it could choose two values in one
//!   slot, when a quorum of acceptors behind or on the fork chose it.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

pub use super::acceptors::Quorum;

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
    /// you accepted. `base` is the digest of the value of version
    /// `slot - 1` the proposal builds on (I6).
    Prepare {
        slot: u64,
        ballot: Ballot,
        base: u128,
    },
    /// Phase 2: accept `value` at `ballot` unless you promised higher.
    Accept {
        slot: u64,
        ballot: Ballot,
        base: u128,
        value: V,
    },
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
    /// The acceptor installed `installed` as the version before the slot,
    /// not the proposal's base (I6): one of the two is a fork.
    WrongBase {
        ballot: Ballot,
        installed: V,
    },
}

/// What an acceptor knows of a slot from the value it installed.
#[derive(Clone, Copy, Debug)]
pub enum Known<'a, V> {
    /// The slot's value (or a later one) is installed: this one.
    Decided(&'a V),
    /// The version before the slot is installed: `value`, of `digest`.
    Base { value: &'a V, digest: u128 },
    /// An older one: nothing to check a proposal's base against.
    Behind,
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

/// [`respond_on`] for an acceptor that knows no base: `decided` is the
/// slot's installed value, if any.
pub fn respond<V: Clone>(
    state: &mut AcceptorSlot<V>,
    decided: Option<&V>,
    msg: &Msg<V>,
) -> (Reply<V>, bool) {
    let known = decided.map_or(Known::Behind, Known::Decided);
    respond_on(state, known, msg)
}

/// The acceptor: answers `msg` for its slot given its state there and
/// what it installed (`known`). Returns the reply and whether `state`
/// changed (persist it first).
pub fn respond_on<V: Clone>(
    state: &mut AcceptorSlot<V>,
    known: Known<'_, V>,
    msg: &Msg<V>,
) -> (Reply<V>, bool) {
    let (ballot, base) = match msg {
        Msg::Prepare { ballot, base, .. } | Msg::Accept { ballot, base, .. } => (ballot, *base),
    };
    match known {
        Known::Decided(value) => {
            let value = value.clone();
            return (Reply::Decided { value }, false);
        }
        Known::Base { value, digest } if digest != base => {
            let (ballot, installed) = (ballot.clone(), value.clone());
            return (Reply::WrongBase { ballot, installed }, false);
        }
        Known::Base { .. } | Known::Behind => {}
    }
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
    /// So many acceptors hold another value of the version before the slot
    /// than the base (I6) that no quorum can be met: this proposer is on a
    /// fork, or they are. `held`: each refusing acceptor and its value
    /// (more may arrive: [`Proposer::held_elsewhere`]).
    WrongBase { held: Vec<(String, V)> },
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

/// One attempt to choose `value` in `slot` at one ballot.
pub struct Proposer<V> {
    slot: u64,
    ballot: Ballot,
    quorum: Quorum,
    /// The digest of the value of version `slot - 1` it builds on (I6).
    base: u128,
    own: V,
    phase: Phase<V>,
    /// Acceptors that refused the base, with the value they hold there.
    held: std::collections::BTreeMap<String, V>,
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
            base: 0,
            own,
            phase: Phase::Preparing {
                promised: BTreeSet::new(),
                highest: None,
            },
            held: std::collections::BTreeMap::new(),
        }
    }

    /// This attempt builds on the value of digest `base` (I6; 0 unless
    /// set).
    pub fn with_base(mut self, base: u128) -> Proposer<V> {
        self.base = base;
        self
    }

    /// Every acceptor that refused the base so far, with its value there
    /// (also those arriving after the attempt ended).
    pub fn held_elsewhere(&self) -> Vec<(String, V)> {
        let held = self.held.iter();
        held.map(|(id, v)| (id.clone(), v.clone())).collect()
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
            base: self.base,
        })
    }

    /// Takes `reply` from acceptor `from`. Replies from non-acceptors, for
    /// other ballots, or repeated, change nothing.
    pub fn on_reply(&mut self, from: &str, reply: Reply<V>) -> Step<V> {
        if !self.quorum.members.contains(from) {
            return Step::Wait;
        }
        if let Reply::WrongBase { ballot, installed } = reply {
            return self.on_wrong_base(from, ballot, installed);
        }
        if matches!(self.phase, Phase::Done) {
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

    fn on_wrong_base(&mut self, from: &str, ballot: Ballot, installed: V) -> Step<V> {
        if ballot != self.ballot {
            return Step::Wait;
        }
        self.held.insert(from.to_string(), installed);
        let out: BTreeSet<String> = self.held.keys().cloned().collect();
        if matches!(self.phase, Phase::Done) || self.quorum.is_possible_without(&out) {
            return Step::Wait;
        }
        let held = self.held_elsewhere();
        self.finish(Outcome::WrongBase { held })
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
            base: self.base,
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
