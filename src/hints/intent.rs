//! **Intents**: node hints written *before* a replica is known to need one.
//!
//! When a record is sent directly to a replica (the coordinator's fan-out to
//! the other local replicas, or a stream receiver's apply to the replicas of
//! its datacenter), a hint for that replica is committed first, in the same
//! RocksDB batch as the update it replicates (or before the stream entry is
//! acknowledged). So a crash while the direct write is in flight loses
//! nothing: the hint is delivered after the restart.
//!
//! While the direct write is in flight its hint is in an in-memory set, and
//! the hint deliverer skips it (no doubled traffic in normal operation). The
//! direct write's outcome settles the intent: acknowledged → the hint is
//! deleted ([`Intent::done`]); failed, or the intent dropped unsettled (a
//! cancelled request) → it becomes an ordinary hint, delivered by the
//! deliverer. After a restart the set is empty, so every intent left on
//! disk is delivered.
//!
//! Cost per replica and write: one more put in the update's batch and one
//! delete when the replica acknowledges.
//!
//! Must not: send anything or choose replicas.

use super::queue::{Dest, Lane};
use super::Hints;
use crate::engine::{Cf, WriteBatch};
use crate::error::GeokvError;
use crate::topology::NodeIdx;
use crate::version::SiblingSet;
use parking_lot::Mutex;
use std::collections::HashSet;
use std::sync::Arc;

/// Sequence numbers of node hints whose direct write is in flight.
#[derive(Default)]
pub(crate) struct InFlight(Mutex<HashSet<u64>>);

impl InFlight {
    pub(crate) fn contains(&self, seq: u64) -> bool {
        self.0.lock().contains(&seq)
    }

    fn insert(&self, seq: u64) {
        self.0.lock().insert(seq);
    }

    fn remove(&self, seq: u64) {
        self.0.lock().remove(&seq);
    }
}

/// A committed (or about to be committed) node hint for `target`, whose
/// direct write is in flight. Settle it with [`Intent::done`] or
/// [`Intent::failed`]; dropping it counts as failed.
pub struct Intent {
    /// The replica the record is sent to.
    pub target: NodeIdx,
    hints: Arc<Hints>,
    dest: Dest,
    seq: u64,
    bytes: u64,
    settled: bool,
}

impl std::fmt::Debug for Intent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Intent({} #{})", self.dest.label(), self.seq)
    }
}

impl Intent {
    /// The replica acknowledged the direct write: the hint is not needed.
    pub fn done(mut self) {
        self.settled = true;
        let mut batch = WriteBatch::new();
        batch.delete_raw(Cf::Hints, &self.dest.key(Lane::Backlog, self.seq));
        // Should the delete fail, the hint is delivered again: harmless.
        if self.hints.engine().write(batch).is_ok() {
            self.hints
                .dequeued(&self.dest, Lane::Backlog, 1, self.bytes);
        }
        self.hints.inflight.remove(self.seq);
    }

    /// The direct write failed: the hint stays and is delivered.
    pub fn failed(mut self) {
        self.release();
    }

    /// The batch holding the hint did not commit: it does not exist.
    fn rolled_back(mut self) {
        self.settled = true;
        self.hints.inflight.remove(self.seq);
        self.hints
            .dequeued(&self.dest, Lane::Backlog, 1, self.bytes);
    }

    fn release(&mut self) {
        if std::mem::replace(&mut self.settled, true) {
            return;
        }
        self.hints.inflight.remove(self.seq);
        metrics::counter!("geokv_hints_stored_total").increment(1);
        self.hints.notify_queue(&self.dest, Lane::Backlog);
    }
}

impl Drop for Intent {
    fn drop(&mut self) {
        self.release();
    }
}

/// Adds a node hint for each of `targets` to `batch` and marks it in
/// flight. A target whose queue is over its byte bound gets none (the key
/// is recorded for anti-entropy instead). Should `batch` not commit, hand
/// the intents to [`rollback`].
pub fn intend(
    hints: &Arc<Hints>,
    targets: &[NodeIdx],
    keyspace: &str,
    key: &[u8],
    set: &SiblingSet,
    batch: &mut WriteBatch,
) -> Result<Vec<Intent>, GeokvError> {
    let mut out = Vec::with_capacity(targets.len());
    if targets.is_empty() {
        return Ok(out);
    }
    let mut record = Vec::with_capacity(set.encoded_len());
    set.encode(&mut record);
    for &target in targets {
        let node = hints.ring.node(target).id.clone();
        let dest = Dest::Node(node.clone());
        let queued = hints.enqueue(&dest, Lane::Backlog, keyspace, key, &record, node, 0, batch)?;
        if let Some((seq, bytes)) = queued {
            hints.inflight.insert(seq);
            out.push(Intent {
                target,
                hints: hints.clone(),
                dest,
                seq,
                bytes,
                settled: false,
            });
        }
    }
    Ok(out)
}

/// Takes back intents whose batch did not commit.
pub fn rollback(intents: Vec<Intent>) {
    for i in intents {
        i.rolled_back();
    }
}

/// Intents written at once (not inside another batch).
pub fn intend_now(
    hints: &Arc<Hints>,
    targets: &[NodeIdx],
    keyspace: &str,
    key: &[u8],
    set: &SiblingSet,
) -> Result<Vec<Intent>, GeokvError> {
    let mut batch = WriteBatch::new();
    let intents = intend(hints, targets, keyspace, key, set, &mut batch)?;
    if let Err(e) = hints.engine().write(batch) {
        rollback(intents);
        return Err(e.into());
    }
    Ok(intents)
}
