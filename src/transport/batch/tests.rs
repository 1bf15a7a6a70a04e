//! Properties of the batcher over random event sequences: every entry
//! completes exactly once, with its own outcome; an entry submitted while
//! idle goes at once; no entry waits behind more than one call; batches
//! stay within their bounds.

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
                let entries = log.batches[&batch].clone();
                for q in &log.queued {
                    *log.waited.get_mut(q).expect("waited") += 1;
                }
                log.take(b.finished(batch, |i| entries[i], now), limits);
            }
            Ev::Advance(ms) => {
                now += Duration::from_millis(ms);
                log.take(b.tick(now), limits);
            }
        }
        // Nothing waits behind a finished call: the queue went out with it.
        for q in &log.queued {
            assert_eq!(log.waited[q], 0, "entry {q} waited behind a finished call");
        }
        assert_eq!(b.queued(), log.queued.len());
    }
    // Drain: every call finishes.
    while let Some(&batch) = b.in_flight.keys().next() {
        let entries = log.batches[&batch].clone();
        log.take(b.finished(batch, |i| entries[i], now), limits);
    }
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
    ) {
        run(events, Limits { max_entries, max_bytes });
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
    assert_eq!(b.next_deadline(), Some(now + Duration::from_millis(5)));
    let a: Vec<Action<()>> = b.tick(now + Duration::from_millis(5));
    assert_eq!(a, vec![Action::Expire { id: 2 }]);
    assert_eq!(b.queued(), 0);
}
