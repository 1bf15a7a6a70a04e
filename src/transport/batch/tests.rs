//! Properties of the batcher over random event sequences: every entry
//! completes exactly once, with its own outcome; an entry submitted while
//! idle goes at once; no entry waits behind more than one call, nor past
//! its hold; batches stay within their bounds; what a lane holds stays
//! within its cap (bounded memory).

use super::*;
use proptest::prelude::*;
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

#[derive(Clone, Debug)]
enum Ev {
    /// An entry of this many bytes with this many ms to live.
    Submit(usize, u64),
    /// The in-flight call at this index (modulo) finishes.
    Finish(usize),
    /// Time passes (ms).
    Advance(u64),
}

fn ev() -> impl Strategy<Value = Ev> {
    prop_oneof![
        4 => (1usize..600, 1u64..50).prop_map(|(b, d)| Ev::Submit(b, d)),
        3 => (0usize..8).prop_map(Ev::Finish),
        1 => (0u64..20).prop_map(Ev::Advance),
    ]
}

#[derive(Default)]
struct Log {
    /// Entry -> finishes processed since it was submitted, before it left
    /// the queue.
    waited: BTreeMap<EntryId, u32>,
    queued: HashSet<EntryId>,
    done: BTreeMap<EntryId, u32>,
    batches: BTreeMap<BatchId, Vec<EntryId>>,
    bytes: BTreeMap<EntryId, usize>,
    /// Entry -> when it must have left the queue.
    send_by: BTreeMap<EntryId, Instant>,
}

impl Log {
    fn take(&mut self, actions: Vec<Action<EntryId>>, limits: Limits) {
        for a in actions {
            match a {
                Action::Send { batch, entries } => {
                    assert!(!entries.is_empty());
                    assert!(entries.len() <= limits.max_entries, "{entries:?}");
                    let bytes: usize = entries.iter().map(|e| self.bytes[e]).sum();
                    assert!(
                        entries.len() == 1 || bytes <= limits.max_bytes,
                        "{bytes} bytes in {entries:?}"
                    );
                    for e in &entries {
                        assert!(self.queued.remove(e), "{e} sent twice or never queued");
                    }
                    self.batches.insert(batch, entries);
                }
                Action::Complete { id, outcome } => {
                    assert_eq!(id, outcome, "an entry got another entry's outcome");
                    *self.done.entry(id).or_default() += 1;
                }
                Action::Expire { id } => {
                    assert!(self.queued.remove(&id), "{id} expired but not queued");
                    *self.done.entry(id).or_default() += 1;
                }
                Action::Shed { id } => {
                    assert!(self.queued.remove(&id), "{id} shed but not submitted");
                    *self.done.entry(id).or_default() += 1;
                }
            }
        }
    }
}

fn run(events: Vec<Ev>, limits: Limits) {
    let start = Instant::now();
    let mut now = start;
    let mut b = Batcher::new(limits);
    let mut log = Log::default();
    let mut next: EntryId = 0;
    for e in events {
        match e {
            Ev::Submit(bytes, ttl) => {
                let (id, idle) = (next, b.in_flight() == 0 && b.queued() == 0);
                next += 1;
                log.bytes.insert(id, bytes);
                log.queued.insert(id);
                log.waited.insert(id, 0);
                let deadline = now + Duration::from_millis(ttl);
                let hold = (deadline - now) / 2;
                log.send_by.insert(id, now + hold.min(limits.max_hold));
                log.take(b.submit(id, bytes, deadline, now), limits);
                if idle {
                    assert!(!log.queued.contains(&id), "an idle submit waited");
                }
            }
            Ev::Finish(i) => {
                let mut open: Vec<BatchId> = b.in_flight.keys().copied().collect();
                open.sort_unstable();
                let Some(&batch) = open.get(i % 8) else {
                    continue;
                };
                for q in &log.queued {
                    *log.waited.get_mut(q).expect("waited") += 1;
                }
                log.take(b.finished(batch, |id| id, now), limits);
            }
            Ev::Advance(ms) => {
                // As the lane does: a tick at every wake-up on the way.
                let to = now + Duration::from_millis(ms);
                while let Some(wake) = b.next_wake().filter(|w| *w <= to) {
                    now = wake.max(now);
                    log.take(b.tick(now), limits);
                }
                now = to;
                log.take(b.tick(now), limits);
            }
        }
        // Nothing waits behind a finished call: the queue went out with it;
        // nothing waits past its hold (ticks come at `next_wake`).
        for q in &log.queued {
            assert_eq!(log.waited[q], 0, "entry {q} waited behind a finished call");
            assert!(log.send_by[q] > now, "entry {q} queued past its hold");
        }
        assert_eq!(b.queued(), log.queued.len());
        // Bounded memory: held entries and bytes within the cap (bytes
        // beyond it only for one entry taken into an empty lane).
        let (entries, bytes) = b.held();
        assert!(entries <= limits.max_held_entries, "{entries} held");
        assert!(
            bytes <= limits.max_held_bytes || entries == 1,
            "{bytes} bytes held in {entries}"
        );
    }
    // Drain: every call finishes.
    while let Some(&batch) = b.in_flight.keys().next() {
        log.take(b.finished(batch, |id| id, now), limits);
    }
    assert_eq!(b.held(), (0, 0), "nothing held once every call finished");
    assert!(log.queued.is_empty());
    assert_eq!(log.done.len() as u64, next, "an entry never completed");
    assert!(log.done.values().all(|&n| n == 1), "{:?}", log.done);
}

proptest! {
    #[test]
    fn every_entry_completes_once_within_bounds(
        events in proptest::collection::vec(ev(), 0..200),
        max_entries in 1usize..6,
        max_bytes in 1usize..2000,
        max_held_entries in 1usize..12,
        max_held_bytes in 1usize..4000,
        hold_ms in 1u64..30,
    ) {
        let max_hold = Duration::from_millis(hold_ms);
        run(events, Limits { max_entries, max_bytes, max_held_entries, max_held_bytes, max_hold });
    }
}

#[test]
fn idle_sends_at_once_and_busy_batches() {
    let now = Instant::now();
    let later = now + Duration::from_secs(1);
    let mut b = Batcher::new(Limits::default());
    let a: Vec<Action<()>> = b.submit(1, 10, later, now);
    assert_eq!(
        a,
        vec![Action::Send {
            batch: 0,
            entries: vec![1]
        }]
    );
    assert!(b.submit::<()>(2, 10, later, now).is_empty());
    assert!(b.submit::<()>(3, 10, later, now).is_empty());
    let a = b.finished(0, |_| "ok", now);
    assert_eq!(
        a,
        vec![
            Action::Complete {
                id: 1,
                outcome: "ok"
            },
            Action::Send {
                batch: 1,
                entries: vec![2, 3]
            }
        ]
    );
}

#[test]
fn a_full_batch_goes_without_waiting() {
    let now = Instant::now();
    let later = now + Duration::from_secs(1);
    let limits = Limits {
        max_entries: 2,
        max_bytes: 100,
        ..Limits::default()
    };
    let mut b = Batcher::new(limits);
    let _: Vec<Action<()>> = b.submit(1, 10, later, now);
    assert!(b.submit::<()>(2, 10, later, now).is_empty());
    let a: Vec<Action<()>> = b.submit(3, 10, later, now);
    assert_eq!(
        a,
        vec![Action::Send {
            batch: 1,
            entries: vec![2, 3]
        }]
    );
    // Bytes: one entry over the bound goes alone.
    let a: Vec<Action<()>> = b.submit(4, 500, later, now);
    assert_eq!(
        a,
        vec![Action::Send {
            batch: 2,
            entries: vec![4]
        }]
    );
}

#[test]
fn a_queued_entry_past_its_deadline_expires_unsent() {
    let now = Instant::now();
    let mut b = Batcher::new(Limits::default());
    let _: Vec<Action<()>> = b.submit(1, 10, now + Duration::from_secs(1), now);
    assert!(b
        .submit::<()>(2, 10, now + Duration::from_millis(5), now)
        .is_empty());
    assert_eq!(b.next_wake(), Some(now + Duration::from_micros(2500)));
    let a: Vec<Action<()>> = b.tick(now + Duration::from_millis(5));
    assert_eq!(a, vec![Action::Expire { id: 2 }]);
    assert_eq!(b.queued(), 0);
}

/// Head-of-line (review of stop 22): a call in flight with a long deadline
/// at its head does not keep a short-deadline entry queued until it
/// expires: the entry goes in a call of its own once it has waited half
/// its time.
#[test]
fn a_slow_call_in_flight_does_not_hold_a_short_entry_past_its_hold() {
    let now = Instant::now();
    let mut b = Batcher::new(Limits::default());
    let _: Vec<Action<()>> = b.submit(1, 10, now + Duration::from_secs(30), now);
    assert!(b
        .submit::<()>(2, 10, now + Duration::from_millis(20), now)
        .is_empty());
    let wake = b.next_wake().expect("a queued entry");
    assert_eq!(wake, now + Duration::from_millis(10));
    let a: Vec<Action<()>> = b.tick(wake);
    assert_eq!(
        a,
        vec![Action::Send {
            batch: 1,
            entries: vec![2]
        }]
    );
    assert_eq!(b.in_flight(), 2);
}

/// Bounded memory: past the lane's cap in entries or bytes, a submit is
/// shed at once (never queued or sent); a finished call makes room again.
#[test]
fn past_the_cap_a_submit_is_shed() {
    let now = Instant::now();
    let later = now + Duration::from_secs(1);
    let limits = Limits {
        max_held_entries: 2,
        max_held_bytes: 100,
        ..Limits::default()
    };
    let mut b = Batcher::new(limits);
    let _: Vec<Action<()>> = b.submit(1, 10, later, now);
    assert!(b.submit::<()>(2, 10, later, now).is_empty());
    let a: Vec<Action<()>> = b.submit(3, 10, later, now);
    assert_eq!(a, vec![Action::Shed { id: 3 }]);
    let _ = b.finished(0, |_| (), now);
    assert_eq!(b.held(), (1, 10));
    let a: Vec<Action<()>> = b.submit(4, 95, later, now);
    assert_eq!(a, vec![Action::Shed { id: 4 }], "bytes over the cap");
    // An entry larger than the cap still goes into an empty lane, alone.
    let _ = b.finished(1, |_| (), now);
    let a: Vec<Action<()>> = b.submit(5, 500, later, now);
    assert_eq!(
        a,
        vec![Action::Send {
            batch: 2,
            entries: vec![5]
        }]
    );
}
