//! A queue stuck on parked entries (review Mediums of stop 21): it idles
//! until the earliest release instead of being read in full every poll,
//! and its oldest entry's age counts them.

use super::elsewhere::{p, placed_elsewhere};
use super::*;

/// A fill at `now` whose load finds `pages` (popped from the end): its
/// actions other than loads.
fn fill_with(s: &mut Scheduler, now: Instant, mut pages: Vec<Page>) -> Vec<Action> {
    fill(s, now, None, |_| pages.pop().unwrap_or_default()).0
}

fn idle(actions: &[Action]) -> Option<(Instant, Option<u64>)> {
    actions.iter().find_map(|a| match a {
        Action::Idle { until, view } => Some((*until, *view)),
        _ => None,
    })
}

#[test]
fn a_queue_of_only_parked_entries_idles_until_the_earliest_release() {
    let t0 = Instant::now();
    let mut s = Scheduler::new(node(), 4096, HOUR, 0);
    placed_elsewhere(&mut s, 5, 7, t0);
    let later = t0 + Duration::from_millis(300);
    let out = fill_with(&mut s, later, vec![p(&[]), p(&[2])]);
    assert!(sends(&out).is_empty());
    assert_eq!(
        idle(&out),
        Some((t0 + PARK_RETRY, Some(7))),
        "until the retry, or this node's view reaching v7: {out:?}"
    );
    // Anything else to send: no idling.
    let out = fill_with(&mut s, later, vec![p(&[]), p(&[2, 9])]);
    assert_eq!(sends(&out).len(), 1);
    assert_eq!(idle(&out), None);
    // An empty queue polls as before; so does one released.
    let mut s = Scheduler::new(node(), 4096, HOUR, 0);
    placed_elsewhere(&mut s, 5, 5, t0);
    let out = fill_with(&mut s, later, vec![p(&[]), p(&[2])]);
    assert_eq!(idle(&out), Some((t0 + PARK_RETRY, None)));
    assert_eq!(idle(&fill_with(&mut s, later, Vec::new())), None);
    let out = fill_with(&mut s, t0 + PARK_RETRY, vec![p(&[]), p(&[2])]);
    assert_eq!((sends(&out).len(), idle(&out)), (1, None));
}

#[test]
fn parked_entries_count_in_the_oldest_age() {
    let t0 = Instant::now();
    let mut s = Scheduler::new(node(), 4096, HOUR, 0);
    placed_elsewhere(&mut s, 5, 7, t0);
    // Created a minute before the fill's wall clock (10 h), within the
    // hint window.
    let created = 10 * HOUR.as_millis() as u64 - 60_000;
    let parked = page(&node(), Lane::Backlog, &[2], created);
    let out = fill_with(&mut s, t0, vec![p(&[]), parked]);
    assert!(out.contains(&Action::Oldest(Some(created))), "{out:?}");
    // With a fresh entry beside it, the older of the two.
    let both = page(&node(), Lane::Backlog, &[2, 9], created);
    let out = fill_with(&mut s, t0, vec![p(&[]), both]);
    assert!(out.contains(&Action::Oldest(Some(created))), "{out:?}");
}

/// Stalls in a row are counted (a leaver hands a queue over after a few,
/// see `adopt::hand_over`) and a clean acknowledgement starts again.
#[test]
fn stalls_in_a_row_count_until_a_clean_acknowledgement() {
    let mut s = Scheduler::new(dc(), 4096, HOUR, 0);
    let now = Instant::now();
    for n in 1..=3 {
        s.on(Event::Stalled(Stall::Failed("refused".into())));
        assert_eq!(s.stalls_in_a_row(), n);
    }
    let (out, _) = fill(&mut s, now, None, endless(dc()));
    let (b, _, seqs) = sends(&out)[0].clone();
    let not_durable: Vec<_> = seqs.iter().map(|&q| (q, false, false)).collect();
    s.on(Event::Acked {
        ack: ack(b, &not_durable),
        now,
    });
    assert_eq!(s.stalls_in_a_row(), 4, "entries not durable: a stall");
    let (out, _) = fill(&mut s, now, None, endless(dc()));
    for (b, _, seqs) in sends(&out) {
        let ok: Vec<_> = seqs.iter().map(|&q| (q, true, false)).collect();
        s.on(Event::Acked {
            ack: ack(b, &ok),
            now,
        });
    }
    assert_eq!(s.stalls_in_a_row(), 0);
}
