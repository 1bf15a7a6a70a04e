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

/// One lane's size and its two gauges, registered once when the lane is
/// first counted: a labelled gauge looked up per write allocates its key
/// and labels every time (issue 14: ~5 % of a put's mallocs).
struct Slot {
    size: Backlog,
    entries: metrics::Gauge,
    bytes: metrics::Gauge,
}

impl Slot {
    fn new(dest: &Dest, lane: Lane) -> Self {
        let (d, l) = (dest.label(), lane.label());
        Slot {
            size: Backlog::default(),
            entries: metrics::gauge!("geokv_hint_backlog_entries", "dest" => d.clone(), "lane" => l),
            bytes: metrics::gauge!("geokv_hint_backlog_bytes", "dest" => d, "lane" => l),
        }
    }

    fn publish(&self) {
        self.entries.set(self.size.entries as f64);
        self.bytes.set(self.size.bytes as f64);
    }
}

/// Sizes of every queue lane, by queue (looked up by reference: no copy
/// of the queue's name per count).
#[derive(Default)]
pub(crate) struct Counts(Mutex<BTreeMap<Dest, BTreeMap<Lane, Slot>>>);

/// `lane` of `dest`, made (and its gauges registered) on first use.
// `entry` would take the key by value: a copy of the queue's name on every
// count, the allocation this map avoids.
#[allow(clippy::map_entry)]
fn slot<'a>(
    m: &'a mut BTreeMap<Dest, BTreeMap<Lane, Slot>>,
    dest: &Dest,
    lane: Lane,
) -> &'a mut Slot {
    if !m.contains_key(dest) {
        m.insert(dest.clone(), BTreeMap::new());
    }
    let lanes = m.get_mut(dest).expect("inserted above");
    lanes.entry(lane).or_insert_with(|| Slot::new(dest, lane))
}

impl Counts {
    /// Counts as found on disk; publishes them.
    pub(crate) fn new(found: BTreeMap<(Dest, Lane), Backlog>) -> Self {
        let mut m = BTreeMap::new();
        for ((d, l), b) in found {
            let s = slot(&mut m, &d, l);
            s.size = b;
            s.publish();
        }
        Counts(Mutex::new(m))
    }

    /// Counts one entry of `bytes` in `lane` of `dest`, unless the queue
    /// (both lanes) would then exceed `bound` bytes; whether it was counted.
    pub(crate) fn add(&self, dest: &Dest, lane: Lane, bytes: u64, bound: u64) -> bool {
        let mut m = self.0.lock();
        let queued: u64 = (m.get(dest).into_iter())
            .flat_map(|lanes| dest.lanes().iter().filter_map(|l| lanes.get(l)))
            .map(|s| s.size.bytes)
            .sum();
        if queued + bytes > bound {
            return false;
        }
        let s = slot(&mut m, dest, lane);
        s.size.entries += 1;
        s.size.bytes += bytes;
        s.publish();
        true
    }

    /// Takes `entries` of `bytes` in total out of `lane` of `dest`. Taking
    /// out more than is counted is a double count (a debug assertion; in
    /// release the count floors at zero).
    pub(crate) fn sub(&self, dest: &Dest, lane: Lane, entries: u64, bytes: u64) {
        let mut m = self.0.lock();
        let s = slot(&mut m, dest, lane);
        let q = &mut s.size;
        debug_assert!(
            q.entries >= entries && q.bytes >= bytes,
            "{dest:?} {lane:?}: counting out {entries} entries / {bytes} bytes of {q:?}"
        );
        q.entries = q.entries.saturating_sub(entries);
        q.bytes = q.bytes.saturating_sub(bytes);
        s.publish();
    }

    /// Entries waiting for `dest` (both lanes).
    pub(crate) fn entries(&self, dest: &Dest) -> u64 {
        let m = self.0.lock();
        (m.get(dest).into_iter())
            .flat_map(|lanes| dest.lanes().iter().filter_map(|l| lanes.get(l)))
            .map(|s| s.size.entries)
            .sum()
    }

    /// The queues with entries waiting.
    pub(crate) fn queues(&self) -> Vec<Dest> {
        let m = self.0.lock();
        (m.iter())
            .filter(|(_, lanes)| lanes.values().any(|s| s.size.entries > 0))
            .map(|(d, _)| d.clone())
            .collect()
    }

    /// Entries waiting in every queue.
    pub(crate) fn total(&self) -> u64 {
        let m = self.0.lock();
        m.values()
            .flat_map(|l| l.values())
            .map(|s| s.size.entries)
            .sum()
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
