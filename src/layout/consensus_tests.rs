//! Tests of the layout CAS core (`consensus.rs`): a simulated network with
//! random delivery, loss, duplication, reordering, proposers restarting at
//! higher ballots and acceptors installing the chosen value; the module's
//! invariants I1–I5 are checked after every step (every acceptor on the
//! proposers' base unless a test sets otherwise).

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::consensus::*;

pub(super) const SLOT: u64 = 7;

pub(super) fn ids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

/// The acceptor on the base of digest 0 (every proposer's base unless set),
/// `decided` the slot's installed value if any.
pub(super) fn respond(
    state: &mut AcceptorSlot<u32>,
    decided: Option<&u32>,
    msg: &Msg<u32>,
) -> (Reply<u32>, bool) {
    let known = decided.map_or(
        Known::Base {
            value: &0,
            digest: 0,
        },
        Known::Decided,
    );
    respond_on(state, known, msg)
}

pub(super) fn ballot(round: u64, node: &str) -> Ballot {
    Ballot {
        round,
        node: node.into(),
    }
}

/// Acceptors a0, a1, a2.
pub(super) fn three() -> BTreeSet<String> {
    ids("a", 3).into_iter().collect()
}

/// An acceptor's promise at `b` with nothing accepted.
pub(super) fn promise(b: &Ballot) -> Reply<u32> {
    Reply::Promise {
        ballot: b.clone(),
        accepted: None,
    }
}

/// The accept of 42 (the proposers' own value in these tests) at `b`.
pub(super) fn accept_own(b: &Ballot) -> Msg<u32> {
    Msg::Accept {
        slot: SLOT,
        ballot: b.clone(),
        base: 0,
        value: 42,
    }
}

enum Envelope {
    ToAcceptor {
        from: usize,
        to: usize,
        msg: Msg<u32>,
    },
    ToProposer {
        to: usize,
        from: usize,
        reply: Reply<u32>,
    },
}

pub(super) struct Sim {
    acceptors: Vec<String>,
    proposers: Vec<String>,
    state: Vec<AcceptorSlot<u32>>,
    /// The chosen value an acceptor installed (I5), if any.
    installed: Vec<Option<u32>>,
    /// The digest of the value of the version before the slot each
    /// acceptor installed (I6; `None`: behind), and each proposer's base.
    pub(super) bases: Vec<Option<u128>>,
    pub(super) proposer_bases: Vec<u128>,
    attempts: Vec<Option<Proposer<u32>>>,
    rounds: Vec<u64>,
    net: Vec<Envelope>,
    /// Who accepted what at which ballot: the ground truth of "chosen".
    accepts: BTreeMap<(Ballot, u32), BTreeSet<usize>>,
    /// Every outcome a proposer reported, with the proposer.
    outcomes: Vec<(usize, Outcome<u32>)>,
    /// Each proposer's quorum rule (a plain majority unless set).
    pub(super) quorums: Vec<Quorum>,
}

impl Sim {
    pub(super) fn new(n_acceptors: usize, n_proposers: usize) -> Sim {
        Sim {
            acceptors: ids("a", n_acceptors),
            proposers: ids("p", n_proposers),
            state: vec![AcceptorSlot::default(); n_acceptors],
            installed: vec![None; n_acceptors],
            bases: vec![Some(0); n_acceptors],
            proposer_bases: vec![0; n_proposers],
            attempts: (0..n_proposers).map(|_| None).collect(),
            rounds: vec![0; n_proposers],
            net: Vec::new(),
            accepts: BTreeMap::new(),
            outcomes: Vec::new(),
            quorums: vec![
                Quorum::majority(ids("a", n_acceptors).into_iter().collect());
                n_proposers
            ],
        }
    }

    pub(super) fn own(p: usize) -> u32 {
        100 + p as u32
    }

    /// The values accepted at one ballot by a quorum of that ballot's
    /// proposer (I1: at most one).
    pub(super) fn chosen(&self) -> BTreeSet<u32> {
        self.chosen_at().into_iter().map(|(_, v)| v).collect()
    }

    /// Each value chosen, with the proposer whose ballot chose it.
    pub(super) fn chosen_at(&self) -> Vec<(usize, u32)> {
        (self.accepts.iter())
            .filter_map(|((b, v), who)| {
                let p = self.proposers.iter().position(|p| *p == b.node);
                let p = p.expect("a proposer's ballot");
                let names = who.iter().map(|a| self.acceptors[*a].clone()).collect();
                self.quorums[p].is_met(&names).then_some((p, *v))
            })
            .collect()
    }

    /// Proposer `p` abandons its attempt (a timeout) and starts another
    /// above every round it saw.
    pub(super) fn restart(&mut self, p: usize) {
        self.rounds[p] += 1;
        let b = ballot(self.rounds[p], &self.proposers[p]);
        let quorum = self.quorums[p].clone();
        let prop =
            Proposer::with_quorum(SLOT, b, quorum, Sim::own(p)).with_base(self.proposer_bases[p]);
        let step = prop.start();
        self.attempts[p] = Some(prop);
        self.apply(p, step);
    }

    fn apply(&mut self, p: usize, step: Step<u32>) {
        match step {
            Step::Broadcast(msg) => {
                for to in 0..self.acceptors.len() {
                    self.net.push(Envelope::ToAcceptor {
                        from: p,
                        to,
                        msg: msg.clone(),
                    });
                }
            }
            Step::Wait => {}
            Step::Done(outcome) => {
                if let Outcome::Preempted { by } = &outcome {
                    self.rounds[p] = self.rounds[p].max(by.round);
                }
                self.outcomes.push((p, outcome));
            }
        }
    }

    fn deliver(&mut self, env: &Envelope) {
        match env {
            Envelope::ToAcceptor { from, to, msg } => {
                let held = self.bases[*to].map(|d| d as u32);
                let known = match (&self.installed[*to], self.bases[*to], &held) {
                    (Some(v), _, _) => Known::Decided(v),
                    (None, Some(digest), Some(value)) => Known::Base { value, digest },
                    _ => Known::Behind,
                };
                let (reply, _) = respond_on(&mut self.state[*to], known, msg);
                if let (Msg::Accept { ballot, value, .. }, Reply::Accepted { .. }) = (msg, &reply) {
                    let key = (ballot.clone(), *value);
                    self.accepts.entry(key).or_default().insert(*to);
                }
                self.net.push(Envelope::ToProposer {
                    to: *from,
                    from: *to,
                    reply,
                });
            }
            Envelope::ToProposer { to, from, reply } => {
                let name = self.acceptors[*from].clone();
                let step = match &mut self.attempts[*to] {
                    Some(prop) => prop.on_reply(&name, reply.clone()),
                    None => Step::Wait,
                };
                self.apply(*to, step);
            }
        }
    }

    pub(super) fn op(&mut self, kind: u8, i: usize) {
        let n = self.net.len();
        match kind {
            0..=3 if n > 0 => {
                let env = self.net.remove(i % n);
                self.deliver(&env);
            }
            4 if n > 0 => {
                let env = self.net.remove(i % n);
                self.deliver(&env);
                self.net.push(env);
            }
            5 if n > 0 => {
                self.net.remove(i % n);
            }
            6 => self.restart(i % self.proposers.len()),
            7 => {
                if let Some(v) = self.chosen().into_iter().next() {
                    self.installed[i % self.acceptors.len()] = Some(v);
                }
            }
            _ => {}
        }
    }

    /// I1–I3 over everything so far.
    pub(super) fn check(&self) -> Result<(), TestCaseError> {
        let chosen = self.chosen();
        prop_assert!(chosen.len() <= 1, "two values chosen: {chosen:?}");
        for (p, outcome) in &self.outcomes {
            if let Outcome::Chosen { value, ours } = outcome {
                prop_assert!(
                    chosen.contains(value),
                    "p{p} reported {value}, chosen {chosen:?}"
                );
                prop_assert_eq!(*ours, *value == Sim::own(*p));
            }
        }
        Ok(())
    }

    /// Everything in flight lost; proposer `p` tries once more above every
    /// round and every message of that attempt arrives.
    fn finish_alone(&mut self, p: usize) -> Outcome<u32> {
        self.net.clear();
        let top = (self.state.iter())
            .filter_map(|s| s.promised.as_ref().map(|b| b.round))
            .max()
            .unwrap_or(0);
        self.rounds[p] = self.rounds[p].max(top);
        let before = self.outcomes.len();
        self.restart(p);
        while !self.net.is_empty() {
            let env = self.net.remove(0);
            self.deliver(&env);
        }
        assert_eq!(self.outcomes.len(), before + 1, "the lone attempt ended");
        self.outcomes.last().unwrap().1.clone()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    /// The layout's acceptor rule (`layout::acceptors`): proposers of one
    /// slot that each leave out a different node declared dead (or none)
    /// still choose at most one value, and it stays chosen.
    #[test]
    fn proposers_leaving_out_different_dead_nodes_choose_at_most_one_value(
        n_acceptors in 1usize..=6,
        excluded in prop::collection::vec(prop::option::of(0usize..6), 3),
        ops in prop::collection::vec((0u8..8, any::<usize>()), 0..250),
    ) {
        let mut sim = Sim::new(n_acceptors, 3);
        let voters: BTreeSet<String> = sim.acceptors.iter().cloned().collect();
        for (p, x) in excluded.iter().enumerate() {
            let x = x.map(|x| sim.acceptors[x % n_acceptors].clone());
            sim.quorums[p] = crate::layout::acceptors::rule(voters.clone(), x.as_deref());
        }
        for p in 0..3 {
            sim.restart(p);
        }
        let mut first: Option<u32> = None;
        for (kind, i) in ops {
            sim.op(kind, i);
            sim.check()?;
            let now = sim.chosen().into_iter().next();
            if let Some(f) = first {
                prop_assert_eq!(now, Some(f));
            }
            first = first.or(now);
        }
    }

    #[test]
    fn at_most_one_value_is_chosen_and_it_stays_chosen(
        n_acceptors in 1usize..=5,
        n_proposers in 1usize..=3,
        ops in prop::collection::vec((0u8..8, any::<usize>()), 0..250),
    ) {
        let mut sim = Sim::new(n_acceptors, n_proposers);
        for p in 0..n_proposers {
            sim.restart(p);
        }
        let mut first: Option<u32> = None;
        for (kind, i) in ops {
            sim.op(kind, i);
            sim.check()?;
            // I2: once chosen, the chosen value never changes.
            let now = sim.chosen().into_iter().next();
            if let Some(f) = first {
                prop_assert_eq!(now, Some(f));
            }
            first = first.or(now);
        }
        let nothing_accepted = sim.state.iter().all(|s| s.accepted.is_none())
            && sim.installed.iter().all(Option::is_none);
        let last = sim.finish_alone(0);
        sim.check()?;
        let (value, ours) = match last {
            Outcome::Chosen { value, ours } => (value, ours),
            // Too few installed for a quorum of `Decided` and too many for
            // one of promises: the chosen value is what they hold (I8).
            Outcome::Decided { held, .. } if !held.is_empty() => {
                let value = held[0].1;
                prop_assert!(held.iter().all(|(_, v)| *v == value), "{held:?}");
                (value, false)
            }
            last => return Err(TestCaseError::fail(format!("the lone attempt ended {last:?}"))),
        };
        if let Some(f) = first {
            prop_assert_eq!(value, f, "a chosen value was replaced");
        }
        // I4: no acceptor reports an accepted value, so ours is chosen.
        if nothing_accepted {
            prop_assert!(ours);
        }
    }
}
