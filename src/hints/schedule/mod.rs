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
#[cfg(test)]
use super::page::Page;
use super::queue::{Dest, Lane};
use super::store::Loaded;
use crate::proto::v1::internode::{EntryAck, StreamAck};
use geokv_client::{Backoff, Streak};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use tokio::time::Instant;

mod event;
mod fill;
mod park;
#[cfg(test)]
mod tests;

pub use event::{Action, Event, Load, Stall};
#[cfg(test)]
pub(crate) use park::PARK_RETRY;

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
/// the lane's floor), or whose commit took longer than [`CLEAR_AFTER`] and
/// was stepped over by an empty page's `clear_to`, is still found.
pub const RESCAN: Duration = Duration::from_secs(1);
/// How old a page's `clear_to` must be before a later page that also finds
/// nothing moves the floor up to it: an entry whose sequence number came
/// before it and whose commit was still under way is found by the loads in
/// between, so only a commit slower than this is left to the rescan.
pub const CLEAR_AFTER: Duration = Duration::from_millis(200);
/// First and longest back-off after a stall.
pub const BACKOFF_MIN: Duration = Duration::from_millis(50);
pub const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// The back-off after stalls (the SDK's one policy): 50 ms doubling to 2 s.
pub const BACKOFF: Backoff = Backoff::new(BACKOFF_MIN, BACKOFF_MAX);

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
    /// Where a page that found nothing said the lane was clear up to
    /// (`Page::clear_to`), and when: the floor's next step once it is
    /// [`CLEAR_AFTER`] old and a later page still finds nothing.
    clear: Option<(Vec<u8>, Instant)>,
}

/// A fill in progress.
#[derive(Debug, Default)]
struct Pass {
    /// Lanes with nothing more to load in this fill.
    done: Vec<Lane>,
    oldest: Option<u64>,
    /// Where to read a lane on from, past a page of parked entries.
    resume: HashMap<Lane, Vec<u8>>,
    /// Whether it skipped parked entries, and whether it found anything
    /// else to do (entries sent or expired, intents held back).
    parked: bool,
    busy: bool,
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
    /// Stalls since the last acknowledgement that stalled nothing, and the
    /// back-off they have reached.
    backoff: Streak,
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
            backoff: Streak::new(BACKOFF),
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

    /// Stalls in a row: failed sends, batches given up, acknowledgements
    /// with entries not durable, no target (see `adopt::hand_over`).
    pub fn stalls_in_a_row(&self) -> u32 {
        self.backoff.failures()
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
        self.backoff.succeeded();
        actions
    }

    /// Forgets what was in flight, halves the batch size and backs off
    /// ([`BACKOFF`]: doubling, up to [`BACKOFF_MAX`]).
    fn stalled(&mut self, stall: Stall) -> Vec<Action> {
        // The age of what this fill found unacknowledged, reported before
        // it is forgotten: a fill that fails on its first send (destination
        // down) never reaches its end, and the gauge must not freeze at its
        // pre-outage value. Nothing found: the gauge keeps its last value.
        let in_flight = self.flight.values().filter_map(|f| f.page.first());
        let pass_oldest = self.pass.as_ref().and_then(|p| p.oldest);
        let oldest = in_flight.map(|l| l.created_ms).chain(pass_oldest).min();
        self.flight.clear();
        self.pass = None;
        self.limit = (self.limit / 2).max(MIN_BATCH);
        let mut actions: Vec<Action> = oldest
            .map(|o| Action::Oldest(Some(o)))
            .into_iter()
            .collect();
        actions.push(Action::Reset);
        if stall == Stall::NoTarget && matches!(self.dest, Dest::Dc(_)) {
            actions.push(Action::FailWaits);
        }
        // Nominal (unjittered): this machine is pure and has no randomness.
        actions.push(Action::Backoff(self.backoff.failed(1.0)));
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
