//! The claims of up to four entries, the lane filling and sealing their
//! batch, and the batch body's first read, in every order (the claims and
//! the gate are locks and atomics: any concurrent run is one of these
//! orders).

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// The lane puts entry `i` in the batch.
    Join(usize),
    /// The lane has filled the batch (and calls, unless it was abandoned).
    Seal,
    /// The call's request body is read for the first time.
    Read,
    /// Entry `i`'s caller gives up.
    GiveUp(usize),
}

/// Every interleaving of the lane's steps (in their order) with the give-ups
/// of `k` entries (in any order).
fn orders(lane: &[Step], k: usize) -> Vec<Vec<Step>> {
    fn go(lane: &[Step], left: &mut Vec<usize>, now: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
        if lane.is_empty() && left.is_empty() {
            out.push(now.clone());
            return;
        }
        if let Some((first, rest)) = lane.split_first() {
            now.push(*first);
            go(rest, left, now, out);
            now.pop();
        }
        for at in 0..left.len() {
            let i = left.remove(at);
            now.push(Step::GiveUp(i));
            go(lane, left, now, out);
            now.pop();
            left.insert(at, i);
        }
    }
    let mut out = Vec::new();
    go(lane, &mut (0..k).collect(), &mut Vec::new(), &mut out);
    out
}

/// What one order did.
#[derive(Debug, Default)]
struct Run {
    joined: Vec<bool>,
    /// What each entry's caller was told: `true` "not sent".
    told: Vec<Option<bool>>,
    /// The lane made the call (the batch was not abandoned when sealed).
    called: bool,
    /// The body yielded the message.
    data: bool,
}

fn run(steps: &[Step], k: usize) -> Run {
    let claims: Vec<Claim> = (0..k).map(|_| Claim::default()).collect();
    let batch = Batch::new();
    let mut r = Run {
        joined: vec![false; k],
        told: vec![None; k],
        ..Run::default()
    };
    for step in steps {
        match *step {
            Step::Join(i) => r.joined[i] = claims[i].join(&batch),
            Step::Seal => r.called = !batch.seal(),
            // The body exists only once the call is made.
            Step::Read => r.data = r.called && batch.gate().send(),
            Step::GiveUp(i) => r.told[i] = Some(claims[i].give_up()),
        }
    }
    r
}

fn check(steps: &[Step], k: usize) {
    let r = run(steps, k);
    let at = |s: Step| steps.iter().position(|x| *x == s);
    let seal = at(Step::Seal).expect("sealed");
    let read = at(Step::Read).unwrap_or(usize::MAX);
    for i in 0..k {
        let gave_up = at(Step::GiveUp(i)).expect("every caller gives up");
        let not_sent = r.told[i] == Some(true);
        // Safety: "not sent" only if no byte of it ever goes out.
        assert!(!(not_sent && r.joined[i] && r.data), "{steps:?}: {r:?}");
        // Taken back while queued: never in the batch, and told so.
        if gave_up < at(Step::Join(i)).expect("joined") {
            assert!(not_sent && !r.joined[i], "{steps:?}: {r:?}");
        }
        // Given up once the body was read: may have been applied.
        if gave_up > read {
            assert!(!not_sent, "{steps:?}: {r:?}");
        }
    }
    let joined_give_ups = (0..k).filter(|i| r.joined[*i]);
    let last = joined_give_ups.max_by_key(|i| at(Step::GiveUp(*i)));
    match last.map(|i| (i, at(Step::GiveUp(i)).unwrap_or_default())) {
        // Every caller gone before the lane sealed: no call at all.
        None => assert!(!r.called && !r.data, "{steps:?}: {r:?}"),
        Some((_, t)) if t < seal => assert!(!r.called && !r.data, "{steps:?}: {r:?}"),
        // The last one to give up before the body was read: "not sent",
        // and the body never yields it.
        Some((i, t)) if t < read => {
            assert!(r.told[i] == Some(true) && !r.data, "{steps:?}: {r:?}")
        }
        Some(_) => assert!(r.data, "{steps:?}: read before the last give-up"),
    }
}

#[test]
fn not_sent_only_if_no_byte_of_the_batch_goes_out_in_every_order() {
    let mut seen = 0;
    for k in 1..=4 {
        let joins = (0..k).map(Step::Join);
        for read in [true, false] {
            let lane: Vec<Step> = (joins.clone().chain([Step::Seal]))
                .chain(read.then_some(Step::Read))
                .collect();
            for steps in orders(&lane, k) {
                check(&steps, k);
                seen += 1;
            }
        }
    }
    // 4 entries: 10!/6! orders with the read, 9!/5! without.
    assert!(seen > 5040 + 3024, "{seen} orders");
}

/// An entry put in a second batch (submitted twice) may have gone out in
/// the first: its caller is never told "not sent".
#[test]
fn an_entry_in_two_batches_is_never_not_sent() {
    let claim = Claim::default();
    let (first, second) = (Batch::new(), Batch::new());
    assert!(claim.join(&first));
    assert!(claim.join(&second));
    assert!(!first.seal() && !second.seal());
    assert!(!claim.give_up(), "may have been sent");
}

/// A batch whose entries go anew as single writes: a caller giving up
/// after that may have been applied; a batch every caller gave up is not
/// resent.
#[test]
fn a_resent_batch_is_maybe_sent_and_an_abandoned_one_not_resent() {
    let (claim, batch) = (Claim::default(), Batch::new());
    assert!(claim.join(&batch) && !batch.seal());
    assert!(batch.resend());
    assert!(!claim.give_up(), "the single write may be out");

    let (claim, batch) = (Claim::default(), Batch::new());
    assert!(claim.join(&batch) && !batch.seal());
    assert!(claim.give_up(), "last to give up, before any read");
    assert!(!batch.resend(), "must not go out as a single write");
}
