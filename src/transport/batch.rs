//! The decisions of one peer's replica batching, sans I/O (issue 14):
//! events in (an entry submitted, a batch call finished, time passed),
//! actions out (send these entries as one call, complete this entry).
//! **Batch while busy:** an entry submitted while no call is in flight is
//! sent at once, alone (no added latency at concurrency 1, nothing like
//! Nagle's wait); entries submitted while a call is in flight queue, and go
//! out together when a call finishes, as soon as they fill a batch, or
//! when one of them has waited its **hold** (half its time left, at most
//! [`Limits::max_hold`]): a slow call in flight (a long deadline at the
//! head of a batch, a stalled peer) never keeps a queued entry past its
//! deadline. A batch is bounded in entries and bytes (an entry larger than
//! the byte bound goes alone). A queued entry whose deadline passes is
//! expired, never sent.
//!
//! **Memory bound:** what the lane holds (queued and in flight) is capped
//! in entries and bytes; an entry over the cap is shed at once, never sent
//! (the caller sees a replica that failed, nothing applied).
//!
//! [`super::lane`] runs this against the network. Must not: do I/O, read
//! the clock (`now` is passed in), or interpret outcomes (an outcome is
//! handed from the finished call to its entry unchanged).

use std::collections::{HashMap, VecDeque};
use std::time::Duration;
use tokio::time::Instant;

/// An entry's id, chosen by the caller (unique among live entries).
pub type EntryId = u64;
/// A batch call's id, chosen here.
pub type BatchId = u64;

/// Bounds on one batch and on what one lane holds.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Entries in one call.
    pub max_entries: usize,
    /// Bytes in one call (an entry larger than this goes alone).
    pub max_bytes: usize,
    /// Entries held (queued or in flight); past it, submits are shed.
    pub max_held_entries: usize,
    /// Bytes held (queued or in flight); past it, submits are shed (an
    /// entry larger than this is taken only into an empty lane).
    pub max_held_bytes: usize,
    /// The longest a queued entry waits for the call in flight.
    pub max_hold: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_entries: 64,
            max_bytes: 1 << 20,
            max_held_entries: 4096,
            max_held_bytes: 64 << 20,
            max_hold: Duration::from_millis(50),
        }
    }
}

/// What the driver must do.
#[derive(Debug, PartialEq, Eq)]
pub enum Action<O> {
    /// Send these entries, in this order, as one call.
    Send {
        batch: BatchId,
        entries: Vec<EntryId>,
    },
    /// The entry's outcome, from its batch's reply.
    Complete { id: EntryId, outcome: O },
    /// The entry's deadline passed while queued: it was never sent.
    Expire { id: EntryId },
    /// The lane holds too much: the entry was never queued nor sent.
    Shed { id: EntryId },
}

struct Queued {
    id: EntryId,
    bytes: usize,
    deadline: Instant,
    /// Sent by then, whatever is in flight.
    send_by: Instant,
}

/// One peer's batching state.
pub struct Batcher {
    limits: Limits,
    queue: VecDeque<Queued>,
    queued_bytes: usize,
    /// The entries (and their bytes) of each call in flight.
    in_flight: HashMap<BatchId, (Vec<EntryId>, usize)>,
    in_flight_entries: usize,
    in_flight_bytes: usize,
    next_batch: BatchId,
}

impl Batcher {
    pub fn new(limits: Limits) -> Self {
        Batcher {
            limits: Limits {
                max_entries: limits.max_entries.max(1),
                max_bytes: limits.max_bytes.max(1),
                max_held_entries: limits.max_held_entries.max(1),
                ..limits
            },
            queue: VecDeque::new(),
            queued_bytes: 0,
            in_flight: HashMap::new(),
            in_flight_entries: 0,
            in_flight_bytes: 0,
            next_batch: 0,
        }
    }

    /// Calls in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Entries waiting to be sent.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Entries and bytes held: queued and in flight.
    pub fn held(&self) -> (usize, usize) {
        (
            self.queue.len() + self.in_flight_entries,
            self.queued_bytes + self.in_flight_bytes,
        )
    }

    /// An entry of `bytes` to send before `deadline`.
    pub fn submit<O>(
        &mut self,
        id: EntryId,
        bytes: usize,
        deadline: Instant,
        now: Instant,
    ) -> Vec<Action<O>> {
        let mut out = self.expire(now);
        let (entries, held) = self.held();
        let over = entries >= self.limits.max_held_entries
            || (held > 0 && held + bytes > self.limits.max_held_bytes);
        if over {
            out.push(Action::Shed { id });
            return out;
        }
        let left = deadline.saturating_duration_since(now);
        let send_by = now + (left / 2).min(self.limits.max_hold);
        self.queue.push_back(Queued {
            id,
            bytes,
            deadline,
            send_by,
        });
        self.queued_bytes += bytes;
        out.extend(self.expire(now));
        if self.in_flight.is_empty() {
            self.flush(&mut out);
        } else {
            self.send_full(&mut out);
        }
        out
    }

    /// Batch `batch` finished: `outcome(id)` is the outcome of its entry
    /// `id`. The queue goes out now.
    pub fn finished<O>(
        &mut self,
        batch: BatchId,
        mut outcome: impl FnMut(EntryId) -> O,
        now: Instant,
    ) -> Vec<Action<O>> {
        let (ids, bytes) = self.in_flight.remove(&batch).unwrap_or_default();
        self.in_flight_entries -= ids.len();
        self.in_flight_bytes -= bytes;
        let mut out: Vec<Action<O>> = (ids.into_iter())
            .map(|id| Action::Complete {
                id,
                outcome: outcome(id),
            })
            .collect();
        out.extend(self.expire(now));
        self.flush(&mut out);
        out
    }

    /// Time passed: queued entries past their deadline expire; the queue
    /// goes out once an entry in it has waited its hold.
    pub fn tick<O>(&mut self, now: Instant) -> Vec<Action<O>> {
        let mut out = self.expire(now);
        if self.queue.iter().any(|q| q.send_by <= now) {
            self.flush(&mut out);
        }
        out
    }

    /// When to [`Self::tick`] next: the earliest hold or deadline of a
    /// queued entry.
    pub fn next_wake(&self) -> Option<Instant> {
        (self.queue.iter()).map(|q| q.send_by.min(q.deadline)).min()
    }

    fn expire<O>(&mut self, now: Instant) -> Vec<Action<O>> {
        let mut out = Vec::new();
        let bytes = &mut self.queued_bytes;
        self.queue.retain(|q| {
            let live = q.deadline > now;
            if !live {
                *bytes -= q.bytes;
                out.push(Action::Expire { id: q.id });
            }
            live
        });
        out
    }

    /// Sends every queued entry, in as many bounded batches as it takes.
    fn flush<O>(&mut self, out: &mut Vec<Action<O>>) {
        while !self.queue.is_empty() {
            self.send_one(out);
        }
    }

    /// Sends the batches the queue fills while a call is in flight.
    fn send_full<O>(&mut self, out: &mut Vec<Action<O>>) {
        while self.queue.len() >= self.limits.max_entries
            || self.queued_bytes >= self.limits.max_bytes
        {
            self.send_one(out);
        }
    }

    /// Sends one batch from the head of the queue: at least one entry, at
    /// most the limits.
    fn send_one<O>(&mut self, out: &mut Vec<Action<O>>) {
        let (mut entries, mut bytes) = (Vec::new(), 0usize);
        while let Some(q) = self.queue.front() {
            let fits =
                entries.len() < self.limits.max_entries && bytes + q.bytes <= self.limits.max_bytes;
            if !entries.is_empty() && !fits {
                break;
            }
            let q = self.queue.pop_front().expect("front");
            self.queued_bytes -= q.bytes;
            bytes += q.bytes;
            entries.push(q.id);
        }
        let batch = self.next_batch;
        self.next_batch += 1;
        self.in_flight_entries += entries.len();
        self.in_flight_bytes += bytes;
        self.in_flight.insert(batch, (entries.clone(), bytes));
        out.push(Action::Send { batch, entries });
    }
}

#[cfg(test)]
mod tests;
