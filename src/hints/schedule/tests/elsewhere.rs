//! Node hints refused as "elsewhere" (the receiver does not replicate the
//! key in its view, `EntryAck.elsewhere_layout`): only those entries are
//! skipped, the rest of the queue goes on (review Medium of stop 20).

use super::*;

/// Acknowledges batch `b`: `durable` seqs durable, `elsewhere` seqs
/// placed elsewhere in the receiver's layout `v` (`None`: a receiver from
/// before the field, which only says "not applied").
pub(super) fn answer(b: u64, durable: &[u64], elsewhere: &[u64], v: Option<u64>) -> StreamAck {
    let mut a = ack(
        b,
        &durable
            .iter()
            .map(|&q| (q, true, false))
            .collect::<Vec<_>>(),
    );
    a.entries.extend(elsewhere.iter().map(|&seq| EntryAck {
        seq,
        replicas: 0,
        durable: false,
        refused: false,
        elsewhere_layout: v,
    }));
    a
}

pub(super) fn p(seqs: &[u64]) -> Page {
    page(&node(), Lane::Backlog, seqs, 10 * HOUR.as_millis() as u64)
}

/// One entry answered "elsewhere": the others of its batch are deleted,
/// the queue neither stalls nor backs off, and the next fill sends the
/// entries after it without it.
#[test]
fn an_entry_placed_elsewhere_does_not_stall_the_rest_of_the_queue() {
    let mut s = Scheduler::new(node(), 4096, HOUR, 0);
    let t0 = Instant::now();
    let mut pages = vec![p(&[]), p(&[1, 2, 3])];
    let (out, _) = fill(&mut s, t0, None, |_| pages.pop().unwrap_or_default());
    let b = sends(&out)[0].0;
    let actions = s.on(Event::Acked {
        ack: answer(b, &[1, 3], &[2], Some(7)),
        now: t0,
    });
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::Reset | Action::Backoff(_))),
        "{actions:?}"
    );
    let removed: Vec<u64> = (actions.iter())
        .flat_map(|a| match a {
            Action::Remove { done, refused, .. } => {
                assert!(refused.is_empty());
                done.iter().map(|l| l.entry.seq).collect()
            }
            _ => Vec::new(),
        })
        .collect();
    assert_eq!(removed, vec![1, 3], "entry 2 stays queued");
    let mut pages = vec![p(&[]), p(&[2, 4, 5])];
    let (out, _) = fill(&mut s, t0, None, |_| pages.pop().unwrap_or_default());
    let sent = sends(&out);
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].2,
        vec![4, 5],
        "sent on, without the entry placed elsewhere"
    );
}

/// Sends entry 2 in a fresh scheduler on layout `view`, answered as placed
/// elsewhere in layout `v`; the actions of that acknowledgement.
pub(super) fn placed_elsewhere(s: &mut Scheduler, view: u64, v: u64, now: Instant) -> Vec<Action> {
    s.on(Event::View(view));
    let mut pages = vec![p(&[]), p(&[2])];
    let (out, _) = fill(s, now, None, |_| pages.pop().unwrap_or_default());
    let b = sends(&out)[0].0;
    s.on(Event::Acked {
        ack: answer(b, &[], &[2], Some(v)),
        now,
    })
}

/// Whether a fill at `now` on whose loads entry 2 (and 9) are found sends
/// entry 2.
pub(super) fn sends_2(s: &mut Scheduler, now: Instant) -> bool {
    let mut pages = vec![p(&[]), p(&[2, 9])];
    let (out, _) = fill(s, now, None, |_| pages.pop().unwrap_or_default());
    let sent = sends(&out);
    assert_eq!(sent.len(), 1, "9 goes in any case");
    sent[0].2.contains(&2)
}

/// The receiver is on a newer layout: this node is asked to fetch it, and
/// the entry waits until its view is that new (or the retry is due: a
/// fetch that failed is asked for again then).
#[test]
fn a_receiver_on_a_newer_view_has_the_sender_catch_up_before_resending() {
    let t0 = Instant::now();
    let mut s = Scheduler::new(node(), 4096, HOUR, 0);
    let actions = placed_elsewhere(&mut s, 5, 7, t0);
    let catch_up = Action::CatchUp {
        from: "dc1-n2".into(),
        version: 7,
    };
    assert_eq!(actions, vec![catch_up]);
    assert!(!sends_2(&mut s, t0 + PARK_RETRY / 2), "on v5 still");
    s.on(Event::View(7));
    assert!(sends_2(&mut s, t0 + PARK_RETRY / 2), "on v7");
    // A fetch that never lands: tried again after the retry.
    let mut s = Scheduler::new(node(), 4096, HOUR, 0);
    placed_elsewhere(&mut s, 5, 7, t0);
    assert!(!sends_2(&mut s, t0 + PARK_RETRY - Duration::from_millis(1)));
    assert!(sends_2(&mut s, t0 + PARK_RETRY));
}

/// The receiver is behind (or new to the keyspace): nothing to fetch; the
/// entry (which the load before sifted in this node's view and found the
/// receiver's) is left alone until the retry, while gossip catches the
/// receiver up.
#[test]
fn a_receiver_behind_the_sender_gets_the_entry_again_after_the_retry() {
    let t0 = Instant::now();
    for receiver in [3, 7] {
        let mut s = Scheduler::new(node(), 4096, HOUR, 0);
        let actions = placed_elsewhere(&mut s, 7, receiver, t0);
        assert_eq!(actions, vec![], "nothing to fetch");
        s.on(Event::View(9));
        assert!(!sends_2(&mut s, t0 + PARK_RETRY / 2));
        assert!(sends_2(&mut s, t0 + PARK_RETRY));
    }
}

/// A whole page of parked entries does not hide what follows it: the
/// fill reads on past it, and the lane's floor stays below it.
#[test]
fn a_page_of_parked_entries_is_read_past() {
    let t0 = Instant::now();
    let mut s = Scheduler::new(node(), 4096, HOUR, 0);
    s.on(Event::View(5));
    let mut pages = vec![p(&[]), p(&[1, 2, 3])];
    let (out, _) = fill(&mut s, t0, None, |_| pages.pop().unwrap_or_default());
    let b = sends(&out)[0].0;
    s.on(Event::Acked {
        ack: answer(b, &[], &[1, 2, 3], Some(7)),
        now: t0,
    });
    let mut pages = vec![p(&[]), p(&[4, 5]), p(&[1, 2, 3])];
    let (out, loads) = fill(&mut s, t0, None, |_| pages.pop().unwrap_or_default());
    let sent: Vec<Vec<u64>> = sends(&out).into_iter().map(|b| b.2).collect();
    assert_eq!(sent, vec![vec![4, 5]]);
    assert!(loads[1].resumed && !loads[1].full);
    assert!(
        loads[1].from > node().key(Lane::Backlog, 3),
        "{:?}",
        loads[1]
    );
    assert!(loads[1].from < node().key(Lane::Backlog, 4));
    // The next fill starts at the floor again, below the parked entries.
    let (_, loads) = fill(&mut s, t0, None, |_| Page::default());
    assert_eq!(loads[0].from, node().key(Lane::Backlog, 1));
    assert!(!loads[0].resumed);
}

/// A receiver from before `elsewhere_layout` answers "not applied": the
/// queue keeps the entry and backs off, as it did.
#[test]
fn an_old_receiver_s_not_applied_still_backs_off() {
    let t0 = Instant::now();
    let mut s = Scheduler::new(node(), 4096, HOUR, 0);
    s.on(Event::View(5));
    let mut pages = vec![p(&[]), p(&[1, 2])];
    let (out, _) = fill(&mut s, t0, None, |_| pages.pop().unwrap_or_default());
    let b = sends(&out)[0].0;
    let actions = s.on(Event::Acked {
        ack: answer(b, &[1], &[2], None),
        now: t0,
    });
    assert!(actions.contains(&Action::Reset));
    assert!(actions.contains(&Action::Backoff(BACKOFF_MIN)));
    assert!(sends_2(&mut s, t0), "not parked");
}
