//! Examples of the layout CAS proposer (`consensus.rs`): a majority of
//! empty promises gets its own value chosen; a value an acceptor already
//! accepted is finished, and the proposer's own reported refused.

use super::consensus::*;
use super::consensus_tests::{accept_own, ballot, promise, respond, three, SLOT};

#[test]
fn a_majority_of_empty_promises_gets_the_own_value_chosen() {
    let b = ballot(1, "p0");
    let mut prop = Proposer::new(SLOT, b.clone(), three(), 42u32);
    assert_eq!(prop.on_reply("a0", promise(&b)), Step::Wait);
    assert_eq!(prop.on_reply("a0", promise(&b)), Step::Wait, "a duplicate");
    let accept = accept_own(&b);
    assert_eq!(prop.on_reply("a2", promise(&b)), Step::Broadcast(accept));
    let accepted = || Reply::Accepted { ballot: b.clone() };
    assert_eq!(prop.on_reply("a1", accepted()), Step::Wait);
    assert_eq!(
        prop.on_reply("zz", accepted()),
        Step::Wait,
        "not an acceptor"
    );
    let done = Step::Done(Outcome::Chosen {
        value: 42,
        ours: true,
    });
    assert_eq!(prop.on_reply("a2", accepted()), done);
}

#[test]
fn a_proposer_finishes_an_accepted_value_and_reports_its_own_refused() {
    let acceptors = three();
    let mut a0 = AcceptorSlot::default();
    let old = ballot(1, "p1");
    let accept = Msg::Accept {
        slot: SLOT,
        ballot: old.clone(),
        base: 0,
        value: 7u32,
    };
    let (reply, changed) = respond(&mut a0, None, &accept);
    assert_eq!(
        reply,
        Reply::Accepted {
            ballot: old.clone()
        }
    );
    assert!(changed, "an accept is persisted");
    let b = ballot(2, "p0");
    let mut prop = Proposer::new(SLOT, b.clone(), acceptors, 42u32);
    let prepare = Msg::Prepare {
        slot: SLOT,
        ballot: b.clone(),
        base: 0,
    };
    let (from_a0, _) = respond(&mut a0, None, &prepare);
    let (from_a1, _) = respond(&mut AcceptorSlot::default(), None, &prepare);
    assert_eq!(prop.on_reply("a1", from_a1), Step::Wait);
    let Step::Broadcast(Msg::Accept { value, .. }) = prop.on_reply("a0", from_a0) else {
        panic!("a majority of promises starts phase 2");
    };
    assert_eq!(value, 7, "the accepted value, not its own");
    // The acceptor promised b: the old ballot's accept is now rejected.
    let (late, changed) = respond(&mut a0, None, &accept);
    assert!(!changed);
    assert_eq!(
        late,
        Reply::Rejected {
            ballot: old,
            promised: b.clone()
        }
    );
    prop.on_reply("a0", Reply::Accepted { ballot: b.clone() });
    let done = prop.on_reply("a1", Reply::Accepted { ballot: b });
    let refused = Outcome::Chosen {
        value: 7,
        ours: false,
    };
    assert_eq!(done, Step::Done(refused));
}
