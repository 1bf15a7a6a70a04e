//! Tests of the layout CAS proposer on `Decided` answers (I8 of
//! `consensus.rs`) and on calls that run out (`Proposer::on_exhausted`):
//! a hint, not a decision, and whether its holders block a quorum.

use super::consensus::*;
use super::consensus_tests::{accept_own, ballot, promise, three, SLOT};

/// An acceptor that installed the slot's value answers it (I5), and a
/// quorum of such answers with one value ends the attempt (I8).
#[test]
fn a_quorum_of_decided_answers_ends_the_attempt() {
    let acceptors = three();
    let b = ballot(5, "p0");
    let mut prop = Proposer::new(SLOT, b.clone(), acceptors, 42u32);
    let prepare = Msg::Prepare {
        slot: SLOT,
        ballot: b,
        base: 0,
    };
    let mut state = AcceptorSlot::default();
    let (reply, changed) = respond_on(&mut state, Known::Decided(&9u32), &prepare);
    assert!(!changed);
    assert_eq!(state, AcceptorSlot::default());
    assert_eq!(prop.on_reply("a2", reply.clone()), Step::Wait, "a hint");
    let done = Step::Done(Outcome::Chosen {
        value: 9,
        ours: false,
    });
    assert_eq!(prop.on_reply("a0", reply), done);
}

/// review-layout27 M3: a node at v-1 proposing slot v must not take the
/// fork L' one acceptor answers `Decided` with (before: the first such
/// answer ended the attempt, and the proposer installed L' and then
/// refused the chosen L as a fork): the others promise, and Paxos goes on
/// (had L been chosen, their promises would report it).
#[test]
fn one_decided_answer_is_a_hint_and_paxos_goes_on() {
    const FORK: u32 = 2;
    let acceptors = three();
    let b = ballot(1, "p0");
    let mut prop = Proposer::new(SLOT, b.clone(), acceptors, 42u32);
    assert_eq!(
        prop.on_reply("a0", Reply::Decided { value: FORK }),
        Step::Wait
    );
    assert_eq!(prop.on_reply("a1", promise(&b)), Step::Wait);
    assert_eq!(
        prop.on_reply("a2", promise(&b)),
        Step::Broadcast(accept_own(&b))
    );
}

/// Decided answers that leave no quorum to promise and none with one
/// value end the attempt with what they hold, for the caller to learn
/// the slot from (I8).
#[test]
fn decided_answers_that_disagree_end_the_attempt_with_what_they_hold() {
    let acceptors = three();
    let mut prop = Proposer::new(SLOT, ballot(1, "p0"), acceptors, 42u32);
    assert_eq!(prop.on_reply("a0", Reply::Decided { value: 1 }), Step::Wait);
    let held = vec![("a0".to_string(), 1), ("a1".to_string(), 2)];
    let done = Step::Done(Outcome::Decided {
        held,
        blocking: true,
    });
    assert_eq!(prop.on_reply("a1", Reply::Decided { value: 2 }), done);
}

/// review-layout28 M1: a lone `Decided` holder beside a BEHIND answer
/// ends the attempt (no quorum can promise) but does not block a quorum
/// by itself, and the outcome says so, for the caller not to take it.
#[test]
fn a_lone_decided_answer_beside_a_behind_one_does_not_block() {
    const FORK: u32 = 2;
    let acceptors = three();
    let b = ballot(1, "p0");
    let mut prop = Proposer::new(SLOT, b.clone(), acceptors, 42u32);
    assert_eq!(prop.on_reply("a0", Reply::Behind { ballot: b }), Step::Wait);
    let held = vec![("a1".to_string(), FORK)];
    let done = Step::Done(Outcome::Decided {
        held,
        blocking: false,
    });
    assert_eq!(prop.on_reply("a1", Reply::Decided { value: FORK }), done);
}

/// review-layout28 M2: the calls ran out (a2 silent) after a promise and
/// a BEHIND answer: the attempt ends `Behind` (the caller retries), not
/// "no majority"; after a promise and a `Decided` answer it ends with
/// the hint (not blocking).
#[test]
fn calls_that_run_out_end_with_what_the_answers_say() {
    let acceptors = three();
    let b = ballot(1, "p0");
    let promise = promise(&b);
    let mut prop = Proposer::new(SLOT, b.clone(), acceptors.clone(), 42u32);
    assert_eq!(prop.on_reply("a0", promise.clone()), Step::Wait);
    assert_eq!(prop.on_exhausted(), None, "no answer says why");
    let mut prop = Proposer::new(SLOT, b.clone(), acceptors.clone(), 42u32);
    prop.on_reply("a0", promise.clone());
    prop.on_reply("a1", Reply::Behind { ballot: b.clone() });
    let behind = Outcome::Behind {
        behind: vec!["a1".to_string()],
        held: vec![],
    };
    assert_eq!(prop.on_exhausted(), Some(behind));
    assert_eq!(prop.on_exhausted(), None, "the attempt is over");
    let mut prop = Proposer::new(SLOT, b, acceptors, 42u32);
    prop.on_reply("a0", promise);
    prop.on_reply("a1", Reply::Decided { value: 9 });
    let hint = Outcome::Decided {
        held: vec![("a1".to_string(), 9)],
        blocking: false,
    };
    assert_eq!(prop.on_exhausted(), Some(hint));
}
