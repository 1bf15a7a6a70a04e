//! The decisions of one peer's replica batching, sans I/O (issue 14):
//! events in (an entry submitted, a batch call finished, time passed),
//! actions out (send these entries as one call, complete this entry).
//! **Batch while busy:** an entry submitted while no call is in flight is
//! sent at once, alone (no added latency at concurrency 1, nothing like
//! Nagle's wait); entries submitted while a call is in flight queue, and go
//! out together when a call finishes, or as soon as they fill a batch. So
//! no entry waits behind more than one call, and a batch is bounded in
//! entries and bytes (an entry larger than the byte bound goes alone).
//! A queued entry whose deadline passes is expired, never sent.
//!
//! [`super::lane`] runs this against the network. Must not: do I/O, read
//! the clock (`now` is passed in), or interpret outcomes (an outcome is
//! handed from the finished call to its entry unchanged).

use std::collections::{HashMap, VecDeque};
use tokio::time::Instant;

/// An entry's id, chosen by the caller (unique among live entries).
pub type EntryId = u64;
/// A batch call's id, chosen here.
pub type BatchId = u64;

/// Bounds on one batch.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_entries: usize,
    pub max_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_entries: 64,
            max_bytes: 1 << 20,
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
}

struct Queued {
    id: EntryId,
    bytes: usize,
    deadline: Instant,
}

/// One peer's batching state.
pub struct Batcher {
    limits: Limits,
    queue: VecDeque<Queued>,
    queued_bytes: usize,
    /// The entries of each call in flight.
    in_flight: HashMap<BatchId, Vec<EntryId>>,
    next_batch: BatchId,
}

impl Batcher {
    pub fn new(limits: Limits) -> Self {
        Batcher {
            limits: Limits {
                max_entries: limits.max_entries.max(1),
                max_bytes: limits.max_bytes.max(1),
            },
            queue: VecDeque::new(),
            queued_bytes: 0,
            in_flight: HashMap::new(),
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

    /// An entry of `bytes` to send before `deadline`.
    pub fn submit<O>(
        &mut self,
        id: EntryId,
        bytes: usize,
        deadline: Instant,
        now: Instant,
    ) -> Vec<Action<O>> {
        self.queue.push_back(Queued {
            id,
            bytes,
            deadline,
        });
        self.queued_bytes += bytes;
        let mut out = self.expire(now);
        if self.in_flight.is_empty() {
            self.flush(&mut out);
        } else {
            self.send_full(&mut out);
        }
        out
    }

    /// Batch `batch` finished: `outcome(i)` is the outcome of its `i`th
    /// entry. The queue goes out now.
    pub fn finished<O>(
        &mut self,
        batch: BatchId,
        mut outcome: impl FnMut(usize) -> O,
        now: Instant,
    ) -> Vec<Action<O>> {
        let mut out: Vec<Action<O>> = (self.in_flight.remove(&batch).unwrap_or_default())
            .into_iter()
            .enumerate()
            .map(|(i, id)| Action::Complete {
                id,
                outcome: outcome(i),
            })
            .collect();
        out.extend(self.expire(now));
        self.flush(&mut out);
        out
    }

    /// Time passed: queued entries past their deadline expire.
    pub fn tick<O>(&mut self, now: Instant) -> Vec<Action<O>> {
        self.expire(now)
    }

    /// The earliest deadline of a queued entry (when to [`Self::tick`]).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.queue.iter().map(|q| q.deadline).min()
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
        self.in_flight.insert(batch, entries.clone());
        out.push(Action::Send { batch, entries });
    }
}

#[cfg(test)]
mod tests;
