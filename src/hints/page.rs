//! Loading one page of a hinted queue's lane from disk (part of the
//! store), in key order, skipping the key ranges of batches in flight
//! ([`gaps`]) and holding back intents whose direct write is in flight.
//! Entries that cannot be decoded are moved aside (counted in
//! `geokv_hint_corrupt_total`), so they never stall their lane.
//!
//! Must not: send, acknowledge or decide what is enqueued.

use super::queue::{decode_entry, Dest, Lane, DEAD_PREFIX};
use super::store::{Loaded, Store};
use crate::engine::{Cf, EngineError, WriteBatch};
use crate::proto::v1::internode::StreamEntry;
use prost::Message;

/// One page of a lane.
#[derive(Debug, Default, PartialEq)]
pub struct Page {
    /// First and last key scanned, held-back intents included.
    pub range: Option<(Vec<u8>, Vec<u8>)>,
    /// The entries to send, in key order.
    pub entries: Vec<Loaded>,
    /// Intents held back: their direct write is in flight.
    pub held: usize,
    /// Set when the scan found nothing: the key of the sequence number
    /// the store would give next, read before the scan. Every entry of the
    /// range scanned below it had its number by then: it was committed
    /// before the scan (so it is gone, or in a batch in flight the scan
    /// skipped) or its commit was still under way. The scheduler moves the lane's floor up to it once
    /// a load `CLEAR_AFTER` later finds nothing either (`schedule::fill`),
    /// so idle polls seek past the deleted entries instead of stepping over
    /// their tombstones (issue 14).
    pub clear_to: Option<Vec<u8>>,
}

impl Store {
    /// Reads up to `limit` entries (and at most the byte bound) of one lane
    /// from key `from` on, in key order, skipping the key ranges in `skip`
    /// (batches in flight).
    pub(crate) fn load_page(
        &self,
        dest: &Dest,
        lane: Lane,
        from: Vec<u8>,
        skip: Vec<(Vec<u8>, Vec<u8>)>,
        limit: usize,
    ) -> Result<Page, EngineError> {
        let ranges = gaps(from, dest.prefix_end(lane), skip);
        let max_bytes = self.config.max_batch_bytes;
        let gate = self.load_gate();
        let next = self.next_seq();
        let mut rows = Vec::new();
        for (from, to) in ranges {
            rows.extend(
                self.engine()
                    .scan_raw(Cf::Hints, &from, &to, limit - rows.len())?,
            );
            if rows.len() >= limit {
                break;
            }
        }
        let mut page = Page::default();
        let mut corrupt = Vec::new();
        let mut bytes = 0usize;
        for (key, v) in rows {
            bytes += v.len();
            if bytes > max_bytes && page.range.is_some() {
                break;
            }
            let first = page.range.get_or_insert_with(|| (key.clone(), key.clone()));
            first.1 = key.clone();
            match decode_entry(&v) {
                Some((_, entry)) if self.inflight.contains(entry.seq) => page.held += 1,
                Some((created_ms, entry)) => page.entries.push(Loaded {
                    key,
                    created_ms,
                    entry,
                    bytes: v.len() as u64,
                }),
                None => corrupt.push((key, v)),
            }
        }
        drop(gate);
        if page.range.is_none() {
            page.clear_to = Some(dest.key(lane, next));
        }
        if !corrupt.is_empty() {
            self.set_aside(dest, lane, corrupt)?;
        }
        Ok(page)
    }

    /// Moves undecodable entries out of the queue (under [`DEAD_PREFIX`],
    /// kept for inspection), so the lane moves on; counts them, and records
    /// the key for anti-entropy when its envelope still names it (otherwise
    /// only the periodic sweep can find what the entry carried).
    fn set_aside(
        &self,
        dest: &Dest,
        lane: Lane,
        corrupt: Vec<(Vec<u8>, Vec<u8>)>,
    ) -> Result<(), EngineError> {
        let mut batch = WriteBatch::new();
        let mut bytes = 0u64;
        for (key, v) in &corrupt {
            bytes += v.len() as u64;
            let named = v
                .get(9..)
                .and_then(|b| StreamEntry::decode(b).ok())
                .filter(|e| !e.key.is_empty() && !e.keyspace.is_empty());
            match named {
                Some(e) => {
                    tracing::error!(?key, keyspace = %e.keyspace, "corrupt hint entry set aside; key recorded for anti-entropy");
                    self.needs_repair(&e.keyspace, &e.key, dest, &mut batch);
                }
                None => tracing::error!(?key, "corrupt hint entry set aside; its key is unknown (the periodic sweep covers it)"),
            }
            let mut aside = DEAD_PREFIX.to_vec();
            aside.extend_from_slice(key);
            batch.put_raw(Cf::Hints, &aside, v);
            batch.delete_raw(Cf::Hints, key);
        }
        self.write(batch)?;
        let n = corrupt.len() as u64;
        metrics::counter!("geokv_hint_corrupt_total", "dest" => dest.label()).increment(n);
        self.counts.sub(dest, lane, n, bytes);
        Ok(())
    }
}

/// The key ranges `[from, to)` a load scans, in order: `[start, end)` minus
/// the inclusive ranges `[first, last]` of the batches in flight, which may
/// overlap (a batch can span an older one) and come in any order.
fn gaps(
    start: Vec<u8>,
    end: Vec<u8>,
    mut skip: Vec<(Vec<u8>, Vec<u8>)>,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    skip.sort();
    let mut out = Vec::with_capacity(skip.len() + 1);
    let mut from = start;
    for (first, mut last) in skip {
        let to = first.min(end.clone());
        if from < to {
            out.push((from.clone(), to));
        }
        last.push(0); // the first key after `last`
        from = from.max(last);
    }
    if from < end {
        out.push((from, end));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::gaps;
    use super::*;
    use crate::engine::testing::Hooked;
    use crate::hints::testing::{on_disk, put, store, Threads};
    use proptest::prelude::*;
    use std::sync::Arc;

    /// A page made only of corrupt entries does not stall the lane: loading
    /// it again from the same start (as the deliverer does, its floor
    /// unmoved) reaches the good entry behind it; the corrupt ones leave the
    /// queue (counted out of its backlog) and are kept aside.
    #[test]
    fn corrupt_entries_are_moved_aside_and_the_lane_moves_on() {
        let s = store();
        let dest = Dest::Node("dc1-n2".into());
        let mut b = WriteBatch::new();
        for seq in 1..=3u64 {
            b.put_raw(Cf::Hints, &dest.key(Lane::Backlog, seq), b"\x01garbage!!");
        }
        s.engine().write(b).expect("write");
        let s = Arc::new(Store::open(s.engine().clone(), Default::default()).expect("reopen"));
        put(&s, &dest, b"k");
        assert_eq!(s.counts.entries(&dest), 4);
        let start = dest.prefix(Lane::Backlog);
        let mut found = Vec::new();
        for _ in 0..3 {
            let page = s
                .load_page(&dest, Lane::Backlog, start.clone(), vec![], 2)
                .expect("load");
            found.extend(page.entries.into_iter().map(|l| l.entry.key));
            if !found.is_empty() {
                break;
            }
        }
        assert_eq!(
            found,
            vec![b"k".to_vec()],
            "the good entry behind the corrupt page"
        );
        assert_eq!(s.counts.entries(&dest), 1, "corrupt entries left the queue");
        assert_eq!(on_disk(&s, &dest).len(), 1);
        let aside = s
            .engine()
            .scan_raw(Cf::Hints, DEAD_PREFIX, &[DEAD_PREFIX[0] + 1], 100);
        assert_eq!(aside.expect("scan").len(), 3, "kept aside for inspection");
    }

    /// A load that finds nothing says where the lane is clear up to: the
    /// next sequence number's key, past every entry deleted (issue 14: the
    /// deliverer's floor moves there, so its next load seeks past their
    /// tombstones); a load that finds an entry says nothing of it.
    #[test]
    fn an_empty_load_says_the_lane_is_clear_up_to_the_next_sequence_number() {
        let s = store();
        let dest = Dest::Node("dc1-n2".into());
        let a = put(&s, &dest, b"a");
        let start = dest.prefix(Lane::Backlog);
        let page = (s.load_page(&dest, Lane::Backlog, start.clone(), vec![], 10)).expect("load");
        assert_eq!(page.entries.len(), 1);
        assert_eq!(page.clear_to, None, "an entry found");
        s.settle(&dest, a, entry_size(&s, &dest, a));
        let page = (s.load_page(&dest, Lane::Backlog, start, vec![], 10)).expect("load");
        assert!(page.entries.is_empty() && page.range.is_none());
        let next = put(&s, &Dest::Node("dc1-n3".into()), b"b");
        assert_eq!(page.clear_to, Some(dest.key(Lane::Backlog, next)));
        assert!(page.clear_to > Some(dest.key(Lane::Backlog, a)));
    }

    /// An intent whose direct write is in flight is held back by a load
    /// (its key still bounds the page), and once settled it is gone; an
    /// entry is counted out once, whoever deletes it (issue 10 (b): the
    /// deliverer used to filter after loading, so an intent settled in
    /// between was sent, deleted and counted out a second time).
    #[test]
    fn a_settled_intent_is_counted_out_once() {
        let s = store();
        let dest = Dest::Node("dc1-n2".into());
        let a = put(&s, &dest, b"a");
        let i = put(&s, &dest, b"i");
        s.inflight.insert(i);
        put(&s, &dest, b"b");
        let start = dest.prefix(Lane::Backlog);
        let page = s
            .load_page(&dest, Lane::Backlog, start, vec![], 2)
            .expect("load");
        assert_eq!(page.held, 1);
        assert_eq!(
            page.entries.iter().map(|l| l.entry.seq).collect::<Vec<_>>(),
            vec![a]
        );
        assert_eq!(
            page.range.as_ref().map(|r| r.1.clone()),
            Some(dest.key(Lane::Backlog, i))
        );
        let bytes = entry_size(&s, &dest, i);
        s.settle(&dest, i, bytes);
        s.remove(&dest, Lane::Backlog, &page.entries, &[])
            .expect("delete");
        assert_eq!(on_disk(&s, &dest).len(), 1, "only b is left");
        assert_eq!(s.counts.entries(&dest), 1, "the gauge matches the disk");
    }

    /// Settling and loading race on threads: the count always ends equal to
    /// what is on disk. An intent that is never settled stays in the queue
    /// throughout, so a double count out shows (the count floors at zero).
    #[test]
    fn settle_and_load_race_without_double_counting() {
        let s = store();
        let dest = Dest::Node("dc1-n2".into());
        let permanent = put(&s, &dest, b"p");
        s.inflight.insert(permanent);
        for round in 0..50u8 {
            let i = put(&s, &dest, &[round]);
            s.inflight.insert(i);
            let (s2, d2) = (s.clone(), dest.clone());
            let loader = std::thread::spawn(move || {
                let start = d2.prefix(Lane::Backlog);
                let page = s2
                    .load_page(&d2, Lane::Backlog, start, vec![], 10)
                    .expect("load");
                s2.remove(&d2, Lane::Backlog, &page.entries, &[])
                    .expect("delete");
            });
            let size = entry_size(&s, &dest, i);
            s.settle(&dest, i, size);
            loader.join().expect("loader");
            assert_eq!(on_disk(&s, &dest), vec![permanent]);
            assert_eq!(s.counts.entries(&dest), 1, "round {round}");
        }
    }

    /// A settle's engine write does not hold loads back (the store's gate
    /// is taken only to release the intent): a page loads while the delete
    /// is still being written, and holds the intent back meanwhile.
    #[test]
    fn a_load_does_not_wait_behind_a_settles_write() {
        let engine = Arc::new(Hooked::new(Threads::new()));
        let dyn_engine: Arc<dyn crate::engine::Engine> = engine.clone();
        let s = Arc::new(Store::open(dyn_engine, Default::default()).expect("open"));
        let dest = Dest::Node("dc1-n2".into());
        let i = put(&s, &dest, b"i");
        s.inflight.insert(i);
        let size = entry_size(&s, &dest, i);
        let hold = engine.hold.lock();
        let writes = engine.writers.lock().len();
        let (s2, d2) = (s.clone(), dest.clone());
        let settler = std::thread::spawn(move || s2.settle(&d2, i, size));
        while engine.writers.lock().len() == writes {
            std::thread::yield_now(); // until the settle is in its write
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let (s3, d3) = (s.clone(), dest.clone());
        let loader = std::thread::spawn(move || {
            let start = d3.prefix(Lane::Backlog);
            let page = s3.load_page(&d3, Lane::Backlog, start, vec![], 10);
            let _ = tx.send(page.expect("load"));
        });
        let page = rx.recv_timeout(std::time::Duration::from_secs(5));
        drop(hold);
        let page = page.expect("the load waited behind the settle's write");
        assert_eq!((page.entries.len(), page.held), (0, 1), "held back");
        settler.join().expect("settle");
        loader.join().expect("loader");
        assert!(on_disk(&s, &dest).is_empty());
        assert_eq!(s.counts.entries(&dest), 0);
    }

    fn entry_size(s: &Store, dest: &Dest, seq: u64) -> u64 {
        let v = s.engine().get_raw(Cf::Hints, &dest.key(Lane::Backlog, seq));
        v.expect("read").map_or(0, |v| v.len() as u64)
    }

    fn key() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(0u8..4, 0..3)
    }

    proptest! {
        /// A key is scanned exactly when no batch in flight covers it, and
        /// the ranges are disjoint and in key order.
        #[test]
        fn gaps_cover_exactly_what_is_not_in_flight(
            keys in prop::collection::vec(key(), 0..40),
            skip in prop::collection::vec((key(), key()), 0..6),
        ) {
            let skip: Vec<_> = skip
                .into_iter()
                .map(|(a, b)| if a <= b { (a, b) } else { (b, a) })
                .collect();
            let (start, end) = (Vec::new(), vec![9u8]);
            let ranges = gaps(start, end.clone(), skip.clone());
            for w in ranges.windows(2) {
                prop_assert!(w[0].1 <= w[1].0, "{:?} overlaps {:?}", w[0], w[1]);
            }
            for k in keys.iter().filter(|k| **k < end) {
                let in_flight = skip.iter().any(|(a, b)| a <= k && k <= b);
                let scanned = ranges.iter().any(|(f, t)| f <= k && k < t);
                prop_assert_eq!(scanned, !in_flight, "{:?} (skip {:?}, ranges {:?})", k, skip, ranges);
            }
        }
    }

    #[test]
    fn a_batch_spanning_an_older_one_does_not_rewind_the_scan() {
        let k = |b: u8| vec![b];
        // In flight: [3, 5] and, loaded later around it, [1, 8].
        let r = gaps(k(0), k(20), vec![(k(3), k(5)), (k(1), k(8))]);
        assert_eq!(r, vec![(k(0), k(1)), (vec![8, 0], k(20))]);
    }
}
