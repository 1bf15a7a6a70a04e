//! Tests of the base check (I6 of `consensus.rs`, review-layout26 M2): a
//! proposer that builds on a value of the previous version other than the
//! one its acceptors installed (a fork) gets no change chosen, learns
//! what they hold, and does not block proposers on the chosen value.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::consensus::*;
use super::consensus_tests::{ballot, ids, Sim, SLOT};

/// The chosen value of the previous version, and a fork of it.
const CHOSEN: u128 = 1;
const FORK: u128 = 2;

fn on_base(base: u128) -> Known<'static, u32> {
    static VALUES: [u32; 3] = [0, 1, 2];
    Known::Base {
        value: &VALUES[base as usize],
        digest: base,
    }
}

#[test]
fn a_proposer_on_a_fork_is_refused_and_learns_what_the_acceptors_hold() {
    let acceptors: BTreeSet<String> = ids("a", 3).into_iter().collect();
    let b = ballot(1, "p0");
    let mut prop = Proposer::new(SLOT, b.clone(), acceptors, 42u32).with_base(FORK);
    let Step::Broadcast(prepare) = prop.start() else {
        panic!("a prepare first");
    };
    let known = [on_base(FORK), on_base(CHOSEN), on_base(CHOSEN)];
    let mut states = vec![AcceptorSlot::default(); 3];
    let mut steps = Vec::new();
    for (i, k) in known.into_iter().enumerate() {
        let (reply, changed) = respond_on(&mut states[i], k, &prepare);
        if i > 0 {
            assert!(!changed, "a refusal changes no state");
            assert_eq!(
                reply,
                Reply::WrongBase {
                    ballot: b.clone(),
                    installed: CHOSEN as u32
                }
            );
        }
        steps.push(prop.on_reply(&format!("a{i}"), reply));
    }
    assert_eq!(steps[..2], [Step::Wait, Step::Wait]);
    let held = vec![("a1".to_string(), 1), ("a2".to_string(), 1)];
    assert_eq!(steps[2], Step::Done(Outcome::WrongBase { held }));
}

#[test]
fn a_proposer_on_the_chosen_value_gets_its_change_past_one_forked_acceptor() {
    let acceptors: BTreeSet<String> = ids("a", 3).into_iter().collect();
    let b = ballot(1, "p0");
    let mut prop = Proposer::new(SLOT, b.clone(), acceptors, 42u32).with_base(CHOSEN);
    let known = [on_base(FORK), on_base(CHOSEN), on_base(CHOSEN)];
    let mut states = vec![AcceptorSlot::default(); 3];
    let mut step = prop.start();
    for phase in 0..2 {
        let Step::Broadcast(msg) = step else {
            panic!("phase {phase} broadcasts, got {step:?}");
        };
        step = Step::Wait;
        for (i, k) in known.into_iter().enumerate() {
            let (reply, _) = respond_on(&mut states[i], k, &msg);
            if let s @ (Step::Broadcast(_) | Step::Done(_)) = prop.on_reply(&format!("a{i}"), reply)
            {
                step = s;
            }
        }
    }
    let chosen = Outcome::Chosen {
        value: 42,
        ours: true,
    };
    assert_eq!(step, Step::Done(chosen));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    /// Acceptors behind, on the chosen value of the previous version or on
    /// a fork of it; proposers on either. At most one value is chosen
    /// (I1, `check`), and a change is chosen only by a majority on its
    /// base (I6, I7): none built on the fork while the fork holders are a
    /// minority, whoever else is behind (review-layout27 M2: before, the
    /// acceptors behind made up the majority) (loss, duplication,
    /// reordering, restarts, as the other properties).
    #[test]
    fn a_change_is_chosen_only_by_a_majority_holding_its_base(
        n_acceptors in 1usize..=6,
        held in prop::collection::vec(0u8..3, 6),
        forked in prop::collection::vec(prop::bool::ANY, 3),
        ops in prop::collection::vec((0u8..8, any::<usize>()), 0..250),
    ) {
        let mut sim = Sim::new(n_acceptors, 3);
        for a in 0..n_acceptors {
            sim.bases[a] = [None, Some(CHOSEN), Some(FORK)][held[a] as usize];
        }
        let holding = |base: u128| (0..n_acceptors).filter(|a| sim.bases[*a] == Some(base)).count();
        let (on_chosen, on_fork) = (holding(CHOSEN), holding(FORK));
        for (p, f) in forked.iter().enumerate() {
            sim.proposer_bases[p] = if *f { FORK } else { CHOSEN };
        }
        for p in 0..3 {
            sim.restart(p);
        }
        for (kind, i) in ops {
            sim.op(kind, i);
            sim.check()?;
            for (_, value) in sim.chosen_at() {
                let p = (value - Sim::own(0)) as usize;
                let on_its_base = if forked[p] { on_fork } else { on_chosen };
                prop_assert!(
                    on_its_base > n_acceptors / 2,
                    "p{p}'s change was chosen with {on_its_base} of {n_acceptors} acceptors on its base"
                );
            }
        }
    }
}

/// Runs `prop`'s phases against acceptors answering from `known`, every
/// message delivered in order; the last step.
fn run(prop: &mut Proposer<u32>, known: &[Known<'static, u32>]) -> Step<u32> {
    let mut states = vec![AcceptorSlot::default(); known.len()];
    let mut step = prop.start();
    while let Step::Broadcast(msg) = step {
        step = Step::Wait;
        for (i, k) in known.iter().enumerate() {
            let (reply, _) = respond_on(&mut states[i], *k, &msg);
            if let s @ (Step::Broadcast(_) | Step::Done(_)) = prop.on_reply(&format!("a{i}"), reply)
            {
                step = s;
            }
        }
    }
    step
}

/// review-layout27 M2: L (v) chosen by the accepts of a0 and a1; a0
/// installed it, a1 has not yet (behind: still at v-1). a2 holds a fork
/// L' of v and proposes X' on it in slot v+1. a0 refuses the base; a1,
/// behind, cannot check it and must refuse too (BEHIND), or a1 and a2
/// choose X' and everything L had that L' lacks is lost under a newer
/// version (failed before: X' was chosen).
#[test]
fn acceptors_behind_the_base_refuse_so_a_fork_based_change_is_not_chosen() {
    let acceptors: BTreeSet<String> = ids("a", 3).into_iter().collect();
    let mut prop = Proposer::new(SLOT, ballot(1, "p0"), acceptors, 42u32).with_base(FORK);
    let known = [on_base(CHOSEN), Known::Behind, on_base(FORK)];
    let step = run(&mut prop, &known);
    assert!(
        !matches!(step, Step::Done(Outcome::Chosen { .. })),
        "a change built on the fork was chosen: {step:?}"
    );
    let behind = vec!["a1".to_string()];
    let held = vec![("a0".to_string(), CHOSEN as u32)];
    assert_eq!(step, Step::Done(Outcome::Behind { behind, held }));
}
