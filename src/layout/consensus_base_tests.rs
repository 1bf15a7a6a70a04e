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
    let known = [on_base(FORK), on_base(CHOSEN), Known::Behind];
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
    /// (I1, `check`), and while a majority holds the chosen value no
    /// change built on the fork is chosen (loss, duplication, reordering,
    /// restarts, as the other properties).
    #[test]
    fn no_change_built_on_a_fork_is_chosen_while_a_majority_holds_the_chosen_base(
        n_acceptors in 1usize..=6,
        held in prop::collection::vec(0u8..3, 6),
        forked in prop::collection::vec(prop::bool::ANY, 3),
        ops in prop::collection::vec((0u8..8, any::<usize>()), 0..250),
    ) {
        let mut sim = Sim::new(n_acceptors, 3);
        for a in 0..n_acceptors {
            sim.bases[a] = [None, Some(CHOSEN), Some(FORK)][held[a] as usize];
        }
        let holding = (0..n_acceptors).filter(|a| held[*a] == 1).count();
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
                prop_assert!(
                    !forked[p] || holding <= n_acceptors / 2,
                    "p{p}'s change, built on the fork, was chosen past a majority holding the chosen value"
                );
            }
        }
    }
}
