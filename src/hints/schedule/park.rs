//! Node hints a receiver would not take because, in its view, it does not
//! replicate their keys ([`Fate::Elsewhere`](crate::hints::fate::Fate)):
//! they stay queued but are *parked*, left out of the batches, while the
//! rest of the queue goes on (before, one such entry backed off the whole
//! queue until this node's view caught up).
//!
//! - the receiver's view is newer than this node's: parked until this
//!   node's view reaches that version ([`Action::CatchUp`] asks for it),
//!   then sent again; every loaded page is first sifted in the view in
//!   force (`hints::orphans::sift`), so an entry for a key the node lost
//!   is redirected to the key's replicas then;
//! - this node's view is as new (the load before the send sifted it in
//!   that view and found the node a replica of the key: the receiver is
//!   behind, or its keyspace is new to it): parked for [`PARK_RETRY`],
//!   while gossip brings the receiver up to date.
//!
//! Either way a parked entry is tried again after [`PARK_RETRY`] at the
//! latest (a fetch that failed is asked for again then).
//!
//! Pure. Must not: do I/O or read clocks.

use super::event::Action;
use crate::hints::queue::Dest;
use crate::hints::store::Loaded;
use std::collections::HashMap;
use std::time::Duration;
use tokio::time::Instant;

/// The longest an entry placed elsewhere is skipped before it is sent again.
pub const PARK_RETRY: Duration = Duration::from_secs(2);

/// Why and until when one entry is skipped.
#[derive(Debug, Clone, Copy)]
struct Park {
    /// Released once this node's view reaches this version.
    until_view: Option<u64>,
    /// Released then in any case.
    retry_at: Instant,
}

/// The parked entries of one queue, by sequence number.
#[derive(Debug, Default)]
pub(super) struct Parked {
    by_seq: HashMap<u64, Park>,
}

impl Parked {
    /// Parks `entries`, which the receiver (in its layout `version`) does
    /// not replicate, with this node on layout `view`; the actions: a
    /// catch-up with the receiver's layout when it is newer.
    pub(super) fn park(
        &mut self,
        dest: &Dest,
        entries: &[(Loaded, u64)],
        view: u64,
        now: Instant,
    ) -> Vec<Action> {
        let retry_at = now + PARK_RETRY;
        let mut newest = None;
        for (l, version) in entries {
            let until_view = (*version > view).then_some(*version);
            newest = newest.max(until_view);
            let park = Park {
                until_view,
                retry_at,
            };
            self.by_seq.insert(l.entry.seq, park);
        }
        newest
            .map(|version| Action::CatchUp {
                from: dest.name().to_string(),
                version,
            })
            .into_iter()
            .collect()
    }

    /// Whether entry `seq` is still skipped, this node being on `view`.
    pub(super) fn holds(&self, seq: u64, view: u64, now: Instant) -> bool {
        self.by_seq.get(&seq).is_some_and(|p| p.holds(view, now))
    }

    /// When the next parked entry is released, this node being on `view`:
    /// the earliest retry, and the lowest layout version one waits for
    /// (reaching it releases that entry sooner); `None` with none parked.
    pub(super) fn next_release(&self, view: u64, now: Instant) -> Option<(Instant, Option<u64>)> {
        let held = || self.by_seq.values().filter(|p| p.holds(view, now));
        let at = held().map(|p| p.retry_at).min()?;
        Some((at, held().filter_map(|p| p.until_view).min()))
    }

    /// Forgets the entries released by now (sent again, or gone from the
    /// queue: redirected, expired).
    pub(super) fn prune(&mut self, view: u64, now: Instant) {
        self.by_seq.retain(|_, p| p.holds(view, now));
    }
}

impl Park {
    fn holds(&self, view: u64, now: Instant) -> bool {
        now < self.retry_at && self.until_view.is_none_or(|u| view < u)
    }
}
