//! The in-memory mirror of every queue's size (entries and bytes per
//! destination and lane), rebuilt from disk at start, and the
//! `geokv_hint_backlog_entries` / `geokv_hint_backlog_bytes` gauges it feeds.
//!
//! Must not: touch storage. Whoever adds or removes an entry on disk counts
//! it here exactly once (see `store`).

use super::queue::{Dest, Lane};
use parking_lot::Mutex;
use std::collections::BTreeMap;

/// One queue lane's size.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Backlog {
    pub entries: u64,
    pub bytes: u64,
}

/// Sizes of every queue lane.
#[derive(Default)]
pub(crate) struct Counts(Mutex<BTreeMap<(Dest, Lane), Backlog>>);

impl Counts {
    /// Counts as found on disk; publishes them.
    pub(crate) fn new(found: BTreeMap<(Dest, Lane), Backlog>) -> Self {
        let counts = Counts(Mutex::new(found));
        let queues: Vec<(Dest, Lane)> = counts.0.lock().keys().cloned().collect();
        for (d, l) in queues {
            counts.publish(&d, l);
        }
        counts
    }

    /// Counts one entry of `bytes` in `lane` of `dest`, unless the queue
    /// (both lanes) would then exceed `bound` bytes; whether it was counted.
    pub(crate) fn add(&self, dest: &Dest, lane: Lane, bytes: u64, bound: u64) -> bool {
        {
            let mut b = self.0.lock();
            let queued: u64 = dest
                .lanes()
                .iter()
                .filter_map(|&l| b.get(&(dest.clone(), l)))
                .map(|q| q.bytes)
                .sum();
            if queued + bytes > bound {
                return false;
            }
            let q = b.entry((dest.clone(), lane)).or_default();
            q.entries += 1;
            q.bytes += bytes;
        }
        self.publish(dest, lane);
        true
    }

    /// Takes `entries` of `bytes` in total out of `lane` of `dest`. Taking
    /// out more than is counted is a double count (a debug assertion; in
    /// release the count floors at zero).
    pub(crate) fn sub(&self, dest: &Dest, lane: Lane, entries: u64, bytes: u64) {
        {
            let mut b = self.0.lock();
            let q = b.entry((dest.clone(), lane)).or_default();
            debug_assert!(
                q.entries >= entries && q.bytes >= bytes,
                "{dest:?} {lane:?}: counting out {entries} entries / {bytes} bytes of {q:?}"
            );
            q.entries = q.entries.saturating_sub(entries);
            q.bytes = q.bytes.saturating_sub(bytes);
        }
        self.publish(dest, lane);
    }

    /// Entries waiting for `dest` (both lanes).
    pub(crate) fn entries(&self, dest: &Dest) -> u64 {
        let b = self.0.lock();
        dest.lanes()
            .iter()
            .filter_map(|&l| b.get(&(dest.clone(), l)))
            .map(|q| q.entries)
            .sum()
    }

    /// The queues with entries waiting.
    pub(crate) fn queues(&self) -> Vec<Dest> {
        let b = self.0.lock();
        let mut out: Vec<Dest> = b
            .iter()
            .filter(|(_, q)| q.entries > 0)
            .map(|((d, _), _)| d.clone())
            .collect();
        out.dedup();
        out
    }

    /// Entries waiting in every queue.
    pub(crate) fn total(&self) -> u64 {
        self.0.lock().values().map(|b| b.entries).sum()
    }

    fn publish(&self, dest: &Dest, lane: Lane) {
        let b = self
            .0
            .lock()
            .get(&(dest.clone(), lane))
            .copied()
            .unwrap_or_default();
        let (d, l) = (dest.label(), lane.label());
        metrics::gauge!("geokv_hint_backlog_entries", "dest" => d.clone(), "lane" => l)
            .set(b.entries as f64);
        metrics::gauge!("geokv_hint_backlog_bytes", "dest" => d, "lane" => l).set(b.bytes as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_covers_both_lanes() {
        let (c, d) = (Counts::default(), Dest::Dc("dc2".into()));
        assert!(c.add(&d, Lane::Urgent, 60, 100));
        assert!(!c.add(&d, Lane::Backlog, 50, 100), "60 + 50 is over 100");
        assert!(c.add(&d, Lane::Backlog, 40, 100));
        assert_eq!((c.entries(&d), c.total()), (2, 2));
        c.sub(&d, Lane::Urgent, 1, 60);
        assert_eq!(c.entries(&d), 1);
    }

    #[test]
    #[should_panic(expected = "counting out")]
    fn counting_out_more_than_is_counted_is_caught() {
        let (c, d) = (Counts::default(), Dest::Dc("dc2".into()));
        assert!(c.add(&d, Lane::Urgent, 60, 100));
        c.sub(&d, Lane::Urgent, 2, 120);
    }
}
