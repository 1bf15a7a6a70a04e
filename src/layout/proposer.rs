//! The proposer of the layout compare-and-set ([`super::consensus`]): one
//! attempt to choose a value in one slot at one ballot, sans I/O (replies
//! in, messages to broadcast and the outcome out). The invariants it keeps
//! (I1–I8) are stated in `consensus.rs`.
//! Must not: do I/O, time out or retry (the caller decides), or act on a
//! single acceptor's word that the slot is decided (I8).

use std::collections::{BTreeMap, BTreeSet};

use super::consensus::{Ballot, Msg, Quorum, Reply};

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
    /// So many acceptors are behind the version before the slot (they
    /// cannot check the base, so they refuse: I7), or hold another value
    /// of it, that no quorum can be met now: `behind` lists the first,
    /// `held` the second. Nothing changed at any acceptor; a later attempt,
    /// once they caught up, may succeed.
    Behind {
        behind: Vec<String>,
        held: Vec<(String, V)>,
    },
    /// So many acceptors answered that the slot is decided (they installed
    /// its value, or a later one) that no quorum can promise, or the calls
    /// ran out with some so answering ([`Proposer::on_exhausted`]), but no
    /// quorum of them answered one value (I8): `held`, each of them and
    /// its value, is a hint from which the caller learns the slot.
    /// `blocking`: the holders alone leave no quorum (every quorum meets
    /// one of them); else acceptors behind or on another base make up the
    /// rest, and one holder's word is all there is (review-layout28 M1).
    Decided {
        held: Vec<(String, V)>,
        blocking: bool,
    },
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
    held: BTreeMap<String, V>,
    /// Acceptors behind the base (I7).
    behind: BTreeSet<String>,
    /// Acceptors that answered the slot is decided, with their value (I8).
    decided: BTreeMap<String, V>,
    /// Set when a quorum accepted at this ballot: the proof of choice.
    chosen_here: bool,
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
            held: BTreeMap::new(),
            behind: BTreeSet::new(),
            decided: BTreeMap::new(),
            chosen_here: false,
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
        listed(&self.held)
    }

    /// How many acceptors make a quorum.
    pub fn majority(&self) -> usize {
        self.quorum.needed
    }

    pub fn ballot(&self) -> &Ballot {
        &self.ballot
    }

    /// This attempt's ballot when a quorum accepted at it (the value it
    /// ended [`Outcome::Chosen`] with was chosen there: a proof others can
    /// check against what they accepted, `view::guard`); `None` otherwise
    /// (also when chosen from `Decided` answers).
    pub fn chosen_at(&self) -> Option<&Ballot> {
        self.chosen_here.then_some(&self.ballot)
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
        match reply {
            Reply::WrongBase { ballot, installed } if ballot == self.ballot => {
                self.held.insert(from.to_string(), installed);
                self.after_refusal()
            }
            Reply::Behind { ballot } if ballot == self.ballot => {
                self.behind.insert(from.to_string());
                self.after_refusal()
            }
            Reply::Decided { value } => self.on_decided(from, value),
            _ if matches!(self.phase, Phase::Done) => Step::Wait,
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

    /// A hint that the slot is decided (I8): chosen once a quorum answered
    /// it with one value.
    fn on_decided(&mut self, from: &str, value: V) -> Step<V> {
        self.decided.insert(from.to_string(), value.clone());
        if matches!(self.phase, Phase::Done) {
            return Step::Wait;
        }
        let agreeing: BTreeSet<String> = (self.decided.iter())
            .filter(|(_, v)| **v == value)
            .map(|(id, _)| id.clone())
            .collect();
        if self.quorum.is_met(&agreeing) {
            let ours = value == self.own;
            return self.finish(Outcome::Chosen { value, ours });
        }
        self.after_refusal()
    }

    /// After a refusal (I6, I7) or a hint (I8): ends the attempt once the
    /// acceptors that answered so leave no quorum to promise or accept.
    fn after_refusal(&mut self) -> Step<V> {
        if matches!(self.phase, Phase::Done) {
            return Step::Wait;
        }
        let mut out: BTreeSet<String> = self.held.keys().cloned().collect();
        if !self.quorum.is_possible_without(&out) {
            let held = self.held_elsewhere();
            return self.finish(Outcome::WrongBase { held });
        }
        out.extend(self.behind.iter().cloned());
        out.extend(self.decided.keys().cloned());
        if self.quorum.is_possible_without(&out) {
            return Step::Wait;
        }
        if !self.decided.is_empty() {
            let outcome = self.decided_hint();
            return self.finish(outcome);
        }
        let outcome = self.behind_now();
        self.finish(outcome)
    }

    /// The calls ran out (silence, errors, the deadline) before the attempt
    /// ended: what the answers seen say (review-layout28 M2). Acceptors
    /// behind the base while preparing: [`Outcome::Behind`] (a later
    /// attempt may succeed once they caught up); else acceptors that
    /// answered the slot is decided: [`Outcome::Decided`]; else `None`
    /// (no majority answered). `None` too once the attempt ended.
    pub fn on_exhausted(&mut self) -> Option<Outcome<V>> {
        let outcome = match &self.phase {
            Phase::Done => return None,
            Phase::Preparing { .. } if !self.behind.is_empty() => self.behind_now(),
            _ if !self.decided.is_empty() => self.decided_hint(),
            _ => return None,
        };
        self.phase = Phase::Done;
        Some(outcome)
    }

    /// The acceptors that refused (behind, on another base) or answered
    /// the slot is decided: they answered, but not for this attempt.
    pub fn refusing(&self) -> BTreeSet<String> {
        let held = self.held.keys().chain(self.decided.keys());
        held.chain(self.behind.iter()).cloned().collect()
    }

    fn decided_hint(&self) -> Outcome<V> {
        let holders: BTreeSet<String> = self.decided.keys().cloned().collect();
        Outcome::Decided {
            held: listed(&self.decided),
            blocking: !self.quorum.is_possible_without(&holders),
        }
    }

    fn behind_now(&self) -> Outcome<V> {
        Outcome::Behind {
            behind: self.behind.iter().cloned().collect(),
            held: self.held_elsewhere(),
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
        self.chosen_here = true;
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

/// Each acceptor of `m` with its value.
fn listed<V: Clone>(m: &BTreeMap<String, V>) -> Vec<(String, V)> {
    m.iter().map(|(id, v)| (id.clone(), v.clone())).collect()
}
