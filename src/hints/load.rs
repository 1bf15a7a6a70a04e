//! Loading one page of a hinted queue's lane from disk, in key order,
//! skipping the key ranges of batches in flight ([`gaps`]). Entries that
//! cannot be decoded are moved aside (counted in
//! `geokv_hint_corrupt_total`), so they never stall their lane.
//!
//! Must not: send, acknowledge or decide what is enqueued.

use super::queue::{decode_entry, Dest, Lane, DEAD_PREFIX};
use super::Hints;
use crate::engine::{Cf, EngineError, WriteBatch};
use crate::proto::v1::internode::StreamEntry;
use prost::Message;

/// One queued entry as loaded from disk.
pub(crate) struct Loaded {
    pub key: Vec<u8>,
    pub created_ms: u64,
    pub entry: StreamEntry,
    pub bytes: u64,
}

impl Hints {
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
    ) -> Result<Vec<Loaded>, EngineError> {
        let ranges = gaps(from, dest.prefix_end(lane), skip);
        let max_bytes = self.config().max_batch_bytes;
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
        let mut out = Vec::with_capacity(rows.len());
        let mut corrupt = Vec::new();
        let mut bytes = 0usize;
        for (key, v) in rows {
            bytes += v.len();
            if bytes > max_bytes && !out.is_empty() {
                break;
            }
            match decode_entry(&v) {
                Some((created_ms, entry)) => out.push(Loaded {
                    key,
                    created_ms,
                    entry,
                    bytes: v.len() as u64,
                }),
                None => corrupt.push((key, v)),
            }
        }
        if !corrupt.is_empty() {
            self.set_aside(dest, lane, corrupt)?;
        }
        Ok(out)
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
        self.engine().write(batch)?;
        let n = corrupt.len() as u64;
        metrics::counter!("geokv_hint_corrupt_total", "dest" => dest.label()).increment(n);
        self.dequeued(dest, lane, n, bytes);
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
    use crate::engine::memory::MemoryEngine;
    use crate::engine::{Engine, Limits};
    use crate::hints::HintsConfig;
    use crate::ring::Ring;
    use crate::topology::Topology;
    use crate::version::{ActorId, CausalContext, SiblingSet};
    use proptest::prelude::*;
    use std::sync::Arc;

    fn hints(engine: Arc<dyn Engine>) -> Hints {
        let ring = Arc::new(Ring::new(&Topology::dev()));
        let me = ring.node_by_id("dc1-n1").expect("dev topology").idx;
        Hints::open(engine, ring, me, HintsConfig::default()).expect("open")
    }

    /// A page made only of corrupt entries does not stall the lane: loading
    /// it again from the same start (as the pump does, its floor unmoved)
    /// reaches the good entry behind it; the corrupt ones leave the queue
    /// (counted out of its backlog) and are kept aside.
    #[test]
    fn corrupt_entries_are_moved_aside_and_the_lane_moves_on() {
        let engine: Arc<dyn Engine> = Arc::new(MemoryEngine::new(Limits::default()));
        let dest = Dest::Node("dc1-n2".into());
        let mut b = WriteBatch::new();
        for seq in 1..=3u64 {
            b.put_raw(Cf::Hints, &dest.key(Lane::Backlog, seq), b"\x01garbage!!");
        }
        engine.write(b).expect("write");
        let h = hints(engine.clone());
        let mut set = SiblingSet::new();
        set.update(ActorId(1), &CausalContext::new(), Some("v".into()), 1, 8)
            .expect("one sibling");
        h.hint_node(
            h.ring.node_by_id("dc1-n2").expect("node").idx,
            "default",
            b"k",
            &set,
        )
        .expect("hint");
        assert_eq!(h.backlog_entries(&dest), 4);
        let start = dest.prefix(Lane::Backlog);
        let mut found = Vec::new();
        for _ in 0..3 {
            let page = h
                .load_page(&dest, Lane::Backlog, start.clone(), vec![], 2)
                .expect("load");
            found.extend(page.into_iter().map(|l| l.entry.key));
            if !found.is_empty() {
                break;
            }
        }
        assert_eq!(
            found,
            vec![b"k".to_vec()],
            "the good entry behind the corrupt page"
        );
        assert_eq!(
            h.backlog_entries(&dest),
            1,
            "corrupt entries left the queue"
        );
        let end = dest.prefix_end(Lane::Backlog);
        let queued = engine.scan_raw(Cf::Hints, &start, &end, 100).expect("scan");
        assert_eq!(queued.len(), 1);
        let aside = engine.scan_raw(Cf::Hints, DEAD_PREFIX, &[DEAD_PREFIX[0] + 1], 100);
        assert_eq!(aside.expect("scan").len(), 3, "kept aside for inspection");
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
