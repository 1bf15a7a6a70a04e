//! One fill of a queue's windows: which lane to read next and from where
//! (the lane's floor, its start on a rescan or a rewind, past a page of
//! parked entries), and what a page read means (expire, send, read on,
//! the lane done); at the fill's end, the oldest entry's age and, when
//! only parked entries were found, how long the queue may idle.
//!
//! Pure, like the rest of the scheduler. Must not: do I/O or read clocks.

use super::{Action, Flight, Floor, Load, Scheduler, CLEAR_AFTER, RESCAN, URGENT_BATCH};
use crate::hints::page::Page;
use crate::hints::queue::{Dest, Lane};
use crate::hints::store::Loaded;
use crate::proto::v1::internode::StreamEntry;
use tokio::time::Instant;

/// A page's entries by what becomes of them.
struct Sorted {
    /// Past the hint window: deleted.
    expired: Vec<Loaded>,
    /// To send.
    fresh: Vec<Loaded>,
    /// Parked: not before their release.
    parked: Vec<Loaded>,
}

impl Scheduler {
    /// The next page to read in this fill, most urgent lane first; the end
    /// of the fill when every lane is full or empty.
    pub(super) fn next_load(&mut self, now: Instant) -> Vec<Action> {
        let Some(pass) = self.pass.as_ref() else {
            return Vec::new();
        };
        let lane = self
            .dest
            .lanes()
            .iter()
            .copied()
            .find(|&l| !pass.done.contains(&l) && self.has_room(l));
        let Some(lane) = lane else {
            let pass = self.pass.take().expect("checked above");
            let in_flight = self.flight.values().filter_map(|f| f.page.first());
            let oldest = in_flight.map(|l| l.created_ms).chain(pass.oldest).min();
            let mut end = vec![Action::Oldest(oldest)];
            // Only parked entries: reading them again before one is
            // released would find the same (a new append wakes it sooner).
            if self.flight.is_empty() && pass.parked && !pass.busy {
                let next = self.parked.next_release(self.view, now);
                end.extend(next.map(|(until, view)| Action::Idle { until, view }));
            }
            return end;
        };
        vec![Action::Load(self.plan(lane, now))]
    }

    /// Where to read `lane` from: its floor, or its start when a rescan is
    /// due (or an urgent entry committed below the floor: the rewind).
    fn plan(&mut self, lane: Lane, now: Instant) -> Load {
        let skip: Vec<_> = (self.flight.values())
            .filter(|f| f.lane == lane)
            .map(|f| f.range.clone())
            .collect();
        let floor = self.floors.get(&lane);
        let resume = self.pass.as_ref().and_then(|p| p.resume.get(&lane));
        let full = resume.is_none()
            && floor.is_none_or(|f| now.saturating_duration_since(f.full_scan) > RESCAN);
        let mut from = match (resume, floor) {
            (Some(r), _) => r.clone(),
            (None, Some(f)) if !full => f.key.clone(),
            _ => self.dest.prefix(lane),
        };
        if let (Lane::Urgent, Dest::Dc(_)) = (lane, &self.dest) {
            if let Some(seq) = self.rewind.take() {
                from = from.min(self.dest.key(lane, seq));
            }
        }
        let limit = match lane {
            Lane::Urgent => URGENT_BATCH,
            Lane::Backlog => self.limit,
        };
        Load {
            lane,
            from,
            skip,
            limit,
            full,
            resumed: resume.is_some(),
        }
    }

    /// A page of `load` was read: the lane's floor moves up to it; entries
    /// past the hint window are expired, the rest but parked ones sent as
    /// one batch, and the fill reads on.
    pub(super) fn loaded(
        &mut self,
        load: Load,
        page: Page,
        now: Instant,
        now_ms: u64,
    ) -> Vec<Action> {
        let lane = load.lane;
        self.move_floor(load, &page, now);
        let Some(range) = page.range else {
            return self.lane_done(lane, now);
        };
        if let Some(p) = self.pass.as_mut() {
            p.busy |= page.held > 0;
        }
        let mut actions = Vec::new();
        let Sorted {
            expired,
            fresh,
            parked,
        } = self.sort(page.entries, now, now_ms);
        if !expired.is_empty() {
            actions.push(Action::Expire(expired));
        }
        if !fresh.is_empty() {
            actions.push(self.send(lane, range, fresh, now));
        } else if !parked.is_empty() {
            // Only parked entries (and maybe intents): read on past them.
            let mut after = range.1;
            after.push(0);
            if let Some(p) = self.pass.as_mut() {
                p.resume.insert(lane, after);
            }
        } else if page.held > 0 {
            // Only intents in flight: the same page would load again.
            actions.extend(self.lane_done(lane, now));
            return actions;
        } // else all expired: read on
        actions.extend(self.next_load(now));
        actions
    }

    /// Sets `load`'s lane floor to the lowest key it found live (the page
    /// read; the batches in flight it skipped): every live entry is in a
    /// batch in flight or at or above it (late commits aside: see RESCAN).
    /// A page that found nothing, with nothing in flight, moves it up to an
    /// earlier such page's `clear_to` once that is [`CLEAR_AFTER`] old
    /// (issue 14: past the entries deleted since, whose tombstones every
    /// idle poll stepped over), else notes its own. A page read past
    /// parked entries leaves the floor alone.
    fn move_floor(&mut self, load: Load, page: &Page, now: Instant) {
        if load.resumed {
            return;
        }
        let low = (page.range.iter().map(|r| r.0.clone()))
            .chain(load.skip.iter().map(|r| r.0.clone()))
            .min();
        let was = self.floors.get(&load.lane);
        let full_scan = match was {
            Some(f) if !load.full => f.full_scan,
            _ => now,
        };
        let noted = || page.clear_to.clone().map(|c| (c, now));
        let (key, clear) = match (low, was.and_then(|f| f.clear.clone())) {
            (Some(low), _) => (low, None),
            (None, Some((c, at))) if now.saturating_duration_since(at) < CLEAR_AFTER => {
                (load.from, Some((c, at)))
            }
            // Only a page that scanned (a failed load is an empty page
            // without `clear_to`) counts as the later one (review-write36 L1).
            (None, Some((c, _))) if c > load.from && page.clear_to.is_some() => (c, noted()),
            (None, _) => (load.from, noted()),
        };
        let floor = Floor {
            key,
            full_scan,
            clear,
        };
        self.floors.insert(load.lane, floor);
    }

    /// A page's entries sorted by what becomes of them, noting in the fill
    /// what it found.
    fn sort(&mut self, entries: Vec<Loaded>, now: Instant, now_ms: u64) -> Sorted {
        let (old, fresh) = self.expired(entries, now_ms);
        let (view, parked) = (self.view, &self.parked);
        let (fresh, skipped): (Vec<Loaded>, Vec<Loaded>) =
            (fresh.into_iter()).partition(|l| !parked.holds(l.entry.seq, view, now));
        if let Some(pass) = self.pass.as_mut() {
            // Parked entries are not acknowledged yet either: a queue stuck
            // on them must not report an age of zero.
            let created = fresh.iter().chain(&skipped).map(|l| l.created_ms);
            pass.oldest = created.chain(pass.oldest).min();
            pass.parked |= !skipped.is_empty();
            pass.busy |= !old.is_empty() || !fresh.is_empty();
        }
        Sorted {
            expired: old,
            fresh,
            parked: skipped,
        }
    }

    /// Sends `page`, read from `range` of `lane`, as one batch in flight.
    fn send(
        &mut self,
        lane: Lane,
        range: (Vec<u8>, Vec<u8>),
        page: Vec<Loaded>,
        now: Instant,
    ) -> Action {
        let batch_id = self.next_batch;
        self.next_batch += 1;
        // Each with its creation time, which an adopter keeps (`adopt`).
        let entries = (page.iter())
            .map(|l| StreamEntry {
                created_ms: Some(l.created_ms),
                ..l.entry.clone()
            })
            .collect();
        let flight = Flight {
            lane,
            range,
            page,
            sent: now,
        };
        self.flight.insert(batch_id, flight);
        Action::Send {
            batch_id,
            lane,
            entries,
        }
    }

    fn lane_done(&mut self, lane: Lane, now: Instant) -> Vec<Action> {
        if let Some(p) = self.pass.as_mut() {
            p.done.push(lane);
        }
        self.next_load(now)
    }

    /// Node hints older than the hint window, and the rest.
    fn expired(&self, page: Vec<Loaded>, now_ms: u64) -> (Vec<Loaded>, Vec<Loaded>) {
        if !matches!(self.dest, Dest::Node(_)) {
            return (Vec::new(), page);
        }
        let window = self.hint_window_ms;
        page.into_iter()
            .partition(|l| now_ms.saturating_sub(l.created_ms) > window)
    }
}
