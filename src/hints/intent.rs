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
use crate::engine::{CallSite, WriteBatch};
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

    pub(crate) fn insert(&self, seq: u64) {
        self.0.lock().insert(seq);
    }

    pub(crate) fn remove(&self, seq: u64) {
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
    /// The replica acknowledged the direct write: the hint is deleted (where
    /// the store's [`CallSite`] says), unless a load holds it back meanwhile.
    pub async fn done(mut self) {
        self.settled = true;
        let (dest, seq, bytes) = (self.dest.clone(), self.seq, self.bytes);
        let store = &self.hints.store;
        let settled = if store.writes == CallSite::Inline {
            // The delete is a short write; only a load holding the gate
            // (scanning a page) sends the release to the blocking pool.
            store.delete_settled(&dest, seq, bytes);
            if store.try_release_settled(seq) {
                return;
            }
            store.blocking(move |s| s.release_settled(seq)).await
        } else {
            store.blocking(move |s| s.settle(&dest, seq, bytes)).await
        };
        if settled.is_err() {
            // Not deleted: an ordinary hint now, delivered (harmless).
            self.hints.store.inflight.remove(self.seq);
        }
    }

    /// The direct write failed: the hint stays and is delivered.
    pub fn failed(mut self) {
        self.release();
    }

    /// The batch holding the hint did not commit: it does not exist.
    fn rolled_back(mut self) {
        self.settled = true;
        self.hints.store.inflight.remove(self.seq);
        self.hints
            .store
            .counts
            .sub(&self.dest, Lane::Backlog, 1, self.bytes);
    }

    fn release(&mut self) {
        if std::mem::replace(&mut self.settled, true) {
            return;
        }
        self.hints.store.inflight.remove(self.seq);
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
    targets: &[(NodeIdx, String)],
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
    for (target, node) in targets {
        let (target, node) = (*target, node.clone());
        let dest = Dest::Node(node.clone());
        let entry = super::new_entry(keyspace, key, record.clone(), node, 0);
        let queued = hints.store.enqueue(&dest, Lane::Backlog, entry, batch);
        if let Some((seq, bytes)) = queued {
            hints.store.inflight.insert(seq);
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

/// Intents written at once (not inside another batch), where the store's
/// [`CallSite`] says. Refused once this node's queues are sealed
/// ([`Hints::queue_pass`], held by the write: the seal waits for it and
/// counts the intents): they would turn into hints in a store nobody
/// drains.
pub async fn intend_now(
    hints: &Arc<Hints>,
    targets: &[(NodeIdx, String)],
    keyspace: &str,
    key: &[u8],
    set: &SiblingSet,
) -> Result<Vec<Intent>, GeokvError> {
    let pass = hints.queue_pass().await?;
    let mut batch = WriteBatch::new();
    let intents = intend(hints, targets, keyspace, key, set, &mut batch)?;
    let written = hints.store.call(move |s| {
        let _pass = pass;
        s.write(batch)
    });
    match written.await {
        Ok(Ok(())) => Ok(intents),
        Ok(Err(e)) => {
            rollback(intents);
            Err(e.into())
        }
        Err(e) => {
            rollback(intents);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::testing::Hooked;
    use crate::engine::Engine;
    use crate::hints::testing::{on_disk, Threads};
    use crate::hints::HintsConfig;
    use crate::topology::Topology;
    use crate::version::{ActorId, CausalContext};

    fn setup(engine: Arc<dyn Engine>) -> (Arc<Hints>, (NodeIdx, String), Dest) {
        let cluster = crate::view::Cluster::fixed(&Topology::dev(), "dc1-n1");
        let view = cluster.current();
        let me = view.me().expect("dev topology").clone();
        let peer = view.node("dc1-n2").expect("dev topology").idx;
        let h = Hints::open(engine, cluster.clone(), me, HintsConfig::default()).expect("open");
        let peer = (peer, "dc1-n2".to_string());
        (Arc::new(h), peer, Dest::Node("dc1-n2".into()))
    }

    fn set() -> SiblingSet {
        let mut s = SiblingSet::new();
        s.update(ActorId(1), &CausalContext::new(), Some("v".into()), 1, 8)
            .expect("one sibling");
        s
    }

    /// Committed with the update and in flight: on disk, skipped by the
    /// deliverer. Acknowledged: gone. Failed or dropped: an ordinary hint.
    /// Not committed: gone from the counts too.
    #[tokio::test]
    async fn an_intent_is_deleted_on_ack_and_becomes_a_hint_otherwise() {
        let engine: Arc<dyn Engine> = Arc::new(Hooked::new(Threads::new()));
        let (h, peer, dest) = setup(engine.clone());
        let mut b = WriteBatch::new();
        let mut i = intend(
            &h,
            std::slice::from_ref(&peer),
            "default",
            b"k",
            &set(),
            &mut b,
        )
        .expect("intend");
        engine.write(b).expect("commit");
        let a = i.pop().expect("one intent");
        let seq = on_disk(&h.store, &dest)[0];
        assert!(h.in_flight(seq) && h.backlog_entries(&dest) == 1);
        a.done().await;
        assert!(on_disk(&h.store, &dest).is_empty() && !h.in_flight(seq));
        assert_eq!(h.backlog_entries(&dest), 0);

        let failed = intend_now(&h, std::slice::from_ref(&peer), "default", b"k", &set()).await;
        let dropped = intend_now(&h, std::slice::from_ref(&peer), "default", b"k2", &set()).await;
        failed.expect("intend").into_iter().for_each(Intent::failed);
        drop(dropped);
        let left = on_disk(&h.store, &dest);
        assert_eq!(left.len(), 2, "both stay as hints");
        assert!(left.iter().all(|s| !h.in_flight(*s)), "and are delivered");
        assert_eq!(h.backlog_entries(&dest), 2);

        let mut lost = WriteBatch::new();
        let i = intend(
            &h,
            std::slice::from_ref(&peer),
            "default",
            b"k3",
            &set(),
            &mut lost,
        )
        .expect("intend");
        rollback(i);
        assert_eq!(
            h.backlog_entries(&dest),
            2,
            "a rolled-back intent is not counted"
        );
        assert_eq!(on_disk(&h.store, &dest).len(), 2);
    }

    /// Settling an intent writes to the engine off the async thread when
    /// writes wait for an fsync (issue 10 (a): `done` used to delete on the
    /// runtime's worker), and inline otherwise: a delete that does not wait
    /// for an fsync costs less than the hand-off (issue 14).
    #[tokio::test(flavor = "current_thread")]
    async fn done_writes_off_the_async_thread_only_when_writes_sync() {
        for (engine, off_thread) in [
            (Hooked::new(Threads::syncing()), true),
            (Hooked::new(Threads::new()), false),
        ] {
            let engine = Arc::new(engine);
            let (h, peer, _) = setup(engine.clone());
            let mut i = intend_now(&h, &[peer], "default", b"k", &set())
                .await
                .expect("intend");
            assert_eq!(engine.writers.lock().len(), 1, "the intent");
            let intended_on = engine.writers.lock()[0];
            engine.writers.lock().clear();
            i.pop().expect("one intent").done().await;
            let writers = engine.writers.lock().clone();
            assert_eq!(writers.len(), 1, "one delete");
            let here = std::thread::current().id();
            assert_eq!(writers[0] != here, off_thread, "the delete");
            assert_eq!(intended_on != here, off_thread, "the intent");
        }
    }
}
