//! The events a [`Scheduler`](super::Scheduler) takes and the actions it
//! returns. Plain data.
//!
//! Must not: hold behaviour.

use crate::hints::page::Page;
use crate::hints::queue::Lane;
use crate::hints::store::Loaded;
use crate::hints::waiters::StreamOutcome;
use crate::proto::v1::internode::{StreamAck, StreamEntry};
use std::time::Duration;
use tokio::time::Instant;

/// What happened.
#[derive(Debug)]
pub enum Event {
    /// Entries may be waiting or room may have opened: fill the windows.
    /// `rewind`: the lowest urgent sequence number committed since the last
    /// fill (see `Hints::notify_appended`); the scheduler keeps it until a
    /// fill reads the urgent lane.
    Fill { now: Instant, rewind: Option<u64> },
    /// The page an [`Action::Load`] asked for. `now_ms`: wall clock, for
    /// the hint window.
    Loaded {
        load: Load,
        page: Page,
        now: Instant,
        now_ms: u64,
    },
    /// A batch's acknowledgement.
    Acked { ack: StreamAck, now: Instant },
    /// Sending failed, a batch timed out, or there was nothing to send to.
    Stalled(Stall),
    /// The stream was dropped (its node went down): what was in flight is
    /// sent again on the next one.
    Lost,
    /// The layout version of this node's view in force (before each fill
    /// and acknowledgement): parked entries wait for it (see `park`).
    View(u64),
}

/// Why a queue stalled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stall {
    /// No live node to deliver to.
    NoTarget,
    Failed(String),
}

/// One page to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Load {
    pub lane: Lane,
    /// First key to read.
    pub from: Vec<u8>,
    /// Key ranges of batches in flight, not read again.
    pub skip: Vec<(Vec<u8>, Vec<u8>)>,
    pub limit: usize,
    /// Whether this load starts at the lane's start (a rescan).
    pub full: bool,
    /// Whether it reads on past a page of parked entries (see `park`),
    /// so the lane's floor stays where it is.
    pub resumed: bool,
}

/// What to do, in order.
#[derive(Debug, PartialEq)]
pub enum Action {
    /// Read a page; answer with [`Event::Loaded`].
    Load(Load),
    /// Record these node hints (older than the hint window) for
    /// anti-entropy and delete them.
    Expire(Vec<Loaded>),
    /// Send a batch (opening a stream first if none is open); on failure
    /// answer with [`Event::Stalled`].
    Send {
        batch_id: u64,
        lane: Lane,
        entries: Vec<StreamEntry>,
    },
    /// Resolve the wait on urgent entry `seq`.
    Resolve { seq: u64, outcome: StreamOutcome },
    /// Delete entries durable at the destination, and those it refused
    /// (recording their keys for anti-entropy); on failure answer with
    /// [`Event::Stalled`].
    Remove {
        lane: Lane,
        done: Vec<Loaded>,
        refused: Vec<Loaded>,
    },
    /// Drop the stream; what was in flight stays queued.
    Reset,
    /// Fail the coordinators waiting on this datacenter (nothing to stream
    /// to); the entries stay queued.
    FailWaits,
    /// Wait this long before filling again (an urgent entry cuts it short).
    Backoff(Duration),
    /// A fill ended: the creation time (ms) of the oldest entry not yet
    /// acknowledged, if any.
    Oldest(Option<u64>),
    /// The fill found only parked entries: fill again no sooner than
    /// `until` (the earliest parked entry's retry) or than this node's view
    /// reaching layout `view` (which releases one), unless a new entry is
    /// appended.
    Idle { until: Instant, view: Option<u64> },
    /// Fetch the layout of node `from`, whose view (`version`) is newer
    /// than this node's, in the background; the entries it placed
    /// elsewhere are parked until this node's view is that new.
    CatchUp { from: String, version: u64 },
}
