//! The delivery decisions of one queue, as a pure state machine (like
//! openraft's engine): [`Scheduler::on`] takes an [`Event`] (a wake-up, a
//! page read, an acknowledgement, a stall) and returns the [`Action`]s the
//! driver (`deliver`) performs, feeding their results back as events.
//!
//! ```text
//!  Fill ──► Load ─► (driver reads) ─► Loaded ──► Expire? Send? next Load…
//!  Acked ─► Resolve* Remove [Reset FailWaits? Backoff if not durable]
//!  Stalled ─► Reset FailWaits? Backoff      Lost ─► (forget what is in flight)
//! ```
//!
//! It owns: the windows (urgent and backlog batches in flight), the backlog
//! batch size (AIMD on the acknowledgement time), each lane's floor and its
//! periodic rescan from the start, the hint window's expiry, back-off, the
//! choice of target node, and what an acknowledgement means per entry
//! (`fate`: only a durable acknowledgement deletes or settles a wait).
//!
//! Must not: do I/O, read clocks (the driver passes `now`), or touch
//! metrics.

use super::fate::{fate, Fate};
use super::page::Page;
use super::queue::{Dest, Lane};
use super::store::Loaded;
use crate::proto::v1::internode::{EntryAck, StreamAck};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use tokio::time::Instant;

mod event;
mod park;
#[cfg(test)]
mod tests;

pub use event::{Action, Event, Load, Stall};
#[cfg(test)]
use park::PARK_RETRY;

/// Target latency of one backlog batch; batches shrink when slower.
pub const SLOW_BATCH: Duration = Duration::from_secs(2);
/// Smallest backlog batch, and the first one's size (times four).
pub const MIN_BATCH: usize = 16;
/// Backlog batches in flight per stream.
pub const BACKLOG_WINDOW: usize = 4;
/// Urgent batches in flight per stream, and their size bound.
pub const URGENT_WINDOW: usize = 16;
pub const URGENT_BATCH: usize = 256;
/// A batch not acknowledged within this is given up (the stream reopens).
pub const BATCH_TIMEOUT: Duration = Duration::from_secs(10);
/// A lane is scanned from its very start at least this often, so an entry
/// whose batch committed after a later sequence number's (and so sorts below
/// the lane's floor) is still found.
pub const RESCAN: Duration = Duration::from_secs(1);
/// First and longest back-off after a stall.
pub const BACKOFF_MIN: Duration = Duration::from_millis(50);
pub const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// A batch sent and not yet acknowledged.
#[derive(Debug)]
struct Flight {
    lane: Lane,
    /// First and last key of the lane range the batch was loaded from.
    range: (Vec<u8>, Vec<u8>),
    page: Vec<Loaded>,
    sent: Instant,
}

/// Per lane, a key no live entry sorts below (acknowledged entries leave
/// tombstones, and a queue scanned from its start would step over every one
/// of them), and when the lane was last scanned from its start.
#[derive(Debug, Clone)]
struct Floor {
    key: Vec<u8>,
    full_scan: Instant,
}

/// A fill in progress.
#[derive(Debug, Default)]
struct Pass {
    /// Lanes with nothing more to load in this fill.
    done: Vec<Lane>,
    oldest: Option<u64>,
    /// Where to read a lane on from, past a page of parked entries.
    resume: HashMap<Lane, Vec<u8>>,
}

/// The delivery state of one queue.
#[derive(Debug)]
pub struct Scheduler {
    dest: Dest,
    flight: BTreeMap<u64, Flight>,
    next_batch: u64,
    /// Backlog batch size (AIMD), at most `max_batch`.
    limit: usize,
    max_batch: usize,
    backoff: Duration,
    floors: HashMap<Lane, Floor>,
    /// Node hints older than this (ms) are expired.
    hint_window_ms: u64,
    /// Round-robin position over the destination's live nodes.
    rr: usize,
    pass: Option<Pass>,
    /// The lowest urgent sequence number committed since the last urgent
    /// load (see [`Event::Fill`]): kept across fills until one reads the
    /// urgent lane, so a fill with the urgent window full does not lose it.
    rewind: Option<u64>,
    /// The layout version of this node's view ([`Event::View`]).
    view: u64,
    /// Entries the receiver placed elsewhere, skipped for now (`park`).
    parked: park::Parked,
}

impl Scheduler {
    /// A queue with nothing in flight. `me` spreads senders over the
    /// destination's nodes (each starts at a different one).
    pub fn new(dest: Dest, max_batch: usize, hint_window: Duration, me: usize) -> Self {
        Scheduler {
            dest,
            flight: BTreeMap::new(),
            next_batch: 1,
            limit: (MIN_BATCH * 4).min(max_batch.max(MIN_BATCH)),
            max_batch: max_batch.max(MIN_BATCH),
            backoff: BACKOFF_MIN,
            floors: HashMap::new(),
            hint_window_ms: hint_window.as_millis() as u64,
            rr: me,
            pass: None,
            rewind: None,
            view: 0,
            parked: Default::default(),
        }
    }

    /// Handles one event.
    pub fn on(&mut self, event: Event) -> Vec<Action> {
        match event {
            Event::Fill { now, rewind } => {
                self.rewind = self.rewind.into_iter().chain(rewind).min();
                self.parked.prune(self.view, now);
                self.pass = Some(Pass::default());
                self.next_load(now)
            }
            Event::Loaded {
                load,
                page,
                now,
                now_ms,
            } => self.loaded(load, page, now, now_ms),
            Event::Acked { ack, now } => self.acked(ack, now),
            Event::Stalled(stall) => self.stalled(stall),
            Event::Lost => {
                self.flight.clear();
                self.pass = None;
                Vec::new()
            }
            Event::View(version) => {
                self.view = version;
                Vec::new()
            }
        }
    }

    /// Batches in flight.
    pub fn in_flight(&self) -> usize {
        self.flight.len()
    }

    /// Whether `lane` may take another batch.
    pub fn has_room(&self, lane: Lane) -> bool {
        let window = match lane {
            Lane::Urgent if !matches!(self.dest, Dest::Dc(_)) => 0,
            Lane::Urgent => URGENT_WINDOW,
            Lane::Backlog => BACKLOG_WINDOW,
        };
        self.lane_flight(lane) < window
    }

    /// When the oldest batch in flight is given up, if any is.
    pub fn give_up_at(&self) -> Option<Instant> {
        let oldest = self.flight.values().map(|f| f.sent).min()?;
        Some(oldest + BATCH_TIMEOUT)
    }

    /// The node to open the next stream to, among the destination's `live`
    /// nodes (a node queue: its one node, if live); round-robin, so streams
    /// reopened after a failure move on.
    pub fn pick_target<N: Clone>(&mut self, live: &[N]) -> Option<N> {
        match (&self.dest, live) {
            (_, []) => None,
            (Dest::Node(_), [n, ..]) => Some(n.clone()),
            (Dest::Dc(_), _) => {
                self.rr = self.rr.wrapping_add(1);
                Some(live[self.rr % live.len()].clone())
            }
        }
    }

    fn lane_flight(&self, lane: Lane) -> usize {
        self.flight.values().filter(|f| f.lane == lane).count()
    }

    /// The next page to read in this fill, most urgent lane first; the end
    /// of the fill when every lane is full or empty.
    fn next_load(&mut self, now: Instant) -> Vec<Action> {
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
            return vec![Action::Oldest(oldest)];
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

    fn loaded(&mut self, load: Load, page: Page, now: Instant, now_ms: u64) -> Vec<Action> {
        let lane = load.lane;
        // Every live entry is in a batch in flight or at or above the first
        // one read (late commits aside: see RESCAN).
        let low = (page.range.iter().map(|r| r.0.clone()))
            .chain(load.skip.iter().map(|r| r.0.clone()))
            .min();
        let full_scan = match self.floors.get(&lane) {
            Some(f) if !load.full => f.full_scan,
            _ => now,
        };
        if !load.resumed {
            let key = low.unwrap_or(load.from);
            self.floors.insert(lane, Floor { key, full_scan });
        }
        let Some(range) = page.range else {
            return self.lane_done(lane, now);
        };
        let mut actions = Vec::new();
        let (old, fresh) = self.expired(page.entries, now_ms);
        let (view, parked) = (self.view, &self.parked);
        let (fresh, skipped): (Vec<Loaded>, Vec<Loaded>) =
            (fresh.into_iter()).partition(|l| !parked.holds(l.entry.seq, view, now));
        if !old.is_empty() {
            actions.push(Action::Expire(old));
        }
        if let (Some(first), Some(pass)) = (fresh.first(), self.pass.as_mut()) {
            pass.oldest = Some(
                pass.oldest
                    .map_or(first.created_ms, |o| o.min(first.created_ms)),
            );
        }
        if fresh.is_empty() && !skipped.is_empty() {
            // Only parked entries (and maybe intents): read on past them.
            let mut after = range.1;
            after.push(0);
            if let Some(p) = self.pass.as_mut() {
                p.resume.insert(lane, after);
            }
            actions.extend(self.next_load(now));
            return actions;
        }
        if fresh.is_empty() {
            // Only intents in flight: the same page would load again.
            if page.held > 0 {
                actions.extend(self.lane_done(lane, now));
                return actions;
            }
            actions.extend(self.next_load(now)); // all expired: read on
            return actions;
        }
        let batch_id = self.next_batch;
        self.next_batch += 1;
        let entries = fresh.iter().map(|l| l.entry.clone()).collect();
        let flight = Flight {
            lane,
            range,
            page: fresh,
            sent: now,
        };
        self.flight.insert(batch_id, flight);
        actions.push(Action::Send {
            batch_id,
            lane,
            entries,
        });
        actions.extend(self.next_load(now));
        actions
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

    /// Resolves the waits of urgent entries, removes what is durable at the
    /// destination (or refused by it), adapts the batch size; entries not
    /// durable yet stall the queue, so they are sent again.
    fn acked(&mut self, ack: StreamAck, now: Instant) -> Vec<Action> {
        let Some(f) = self.flight.remove(&ack.batch_id) else {
            return Vec::new(); // a batch given up on earlier
        };
        let by_seq: HashMap<u64, &EntryAck> = ack.entries.iter().map(|a| (a.seq, a)).collect();
        let mut actions = Vec::new();
        let (mut done, mut refused, mut kept) = (Vec::new(), Vec::new(), 0usize);
        let mut elsewhere = Vec::new();
        for l in f.page {
            let (outcome, fate) = fate(f.lane, by_seq.get(&l.entry.seq).copied());
            if let Some(outcome) = outcome {
                let seq = l.entry.seq;
                actions.push(Action::Resolve { seq, outcome });
            }
            match fate {
                Fate::Delete => done.push(l),
                // Resending cannot help: leave the key to anti-entropy and
                // move on, rather than stall the whole queue behind it.
                Fate::Refused => refused.push(l),
                Fate::Keep => kept += 1,
                // Skipped for now; the rest of the queue goes on (`park`).
                Fate::Elsewhere(version) => elsewhere.push((l, version)),
            }
        }
        let (view, dest) = (self.view, &self.dest);
        actions.extend(self.parked.park(dest, &elsewhere, view, now));
        if !done.is_empty() || !refused.is_empty() {
            let lane = f.lane;
            actions.push(Action::Remove {
                lane,
                done,
                refused,
            });
        }
        if f.lane == Lane::Backlog {
            self.limit = aimd(
                self.limit,
                now.saturating_duration_since(f.sent),
                self.max_batch,
            );
        }
        if kept > 0 {
            let why = format!("{kept} entries not durable at the destination");
            actions.extend(self.stalled(Stall::Failed(why)));
            return actions;
        }
        self.backoff = BACKOFF_MIN;
        actions
    }

    /// Forgets what was in flight, halves the batch size and backs off
    /// (doubling, up to [`BACKOFF_MAX`]).
    fn stalled(&mut self, stall: Stall) -> Vec<Action> {
        self.flight.clear();
        self.pass = None;
        self.limit = (self.limit / 2).max(MIN_BATCH);
        let mut actions = vec![Action::Reset];
        if stall == Stall::NoTarget && matches!(self.dest, Dest::Dc(_)) {
            actions.push(Action::FailWaits);
        }
        actions.push(Action::Backoff(self.backoff));
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        actions
    }
}

/// The next backlog batch size after one took `took`: doubled when fast,
/// halved when slow (additive-increase would be too slow to find the
/// destination's pace after an outage), within `[MIN_BATCH, max]`.
pub fn aimd(limit: usize, took: Duration, max: usize) -> usize {
    if took < SLOW_BATCH / 4 {
        (limit * 2).min(max)
    } else if took > SLOW_BATCH {
        (limit / 2).max(MIN_BATCH)
    } else {
        limit
    }
}
