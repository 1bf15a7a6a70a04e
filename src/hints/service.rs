//! [`Hints`], the hints service writers call (Cassandra's `HintsService`):
//! appends to the inter-DC streams inside a write's batch, node hints,
//! wake-ups of the deliverers, the coordinators' waits on urgent entries,
//! and the urgent lanes' rewind. Its engine I/O goes through the store on
//! blocking threads, except what it adds to a caller's batch.
//!
//! Must not: send anything or decide when entries are sent.

use super::intent;
use super::queue::{Dest, Lane};
use super::store::Store;
use super::waiters::{StreamWait, Waiters};
use super::{awaits, new_entry, Appended, Awaited, HintsConfig};
use crate::engine::{Engine, WriteBatch};
use crate::error::GeokvError;
use crate::topology::NodeInfo;
use crate::version::SiblingSet;
use crate::view::Cluster;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The node's hinted queues.
pub struct Hints {
    pub(crate) store: Arc<Store>,
    pub(crate) cluster: Cluster,
    me: NodeInfo,
    /// One wake-up per destination queue and lane (a stored permit, so a
    /// wake-up while the task is busy is not lost).
    wake: BTreeMap<(Dest, Lane), tokio::sync::Notify>,
    /// Coordinators waiting on urgent entries.
    waiters: Waiters,
    /// Per datacenter, the lowest urgent sequence number committed since its
    /// delivery task last loaded (see [`Hints::notify_appended`]).
    rewind: Mutex<BTreeMap<String, u64>>,
}

impl Hints {
    /// Opens the queues of `me`, rebuilding backlog counters from disk.
    pub fn open(
        engine: Arc<dyn Engine>,
        cluster: Cluster,
        me: NodeInfo,
        config: HintsConfig,
    ) -> Result<Self, GeokvError> {
        let mut hints = Hints {
            store: Arc::new(Store::open(engine, config)?),
            cluster,
            me,
            wake: BTreeMap::new(),
            waiters: Waiters::default(),
            rewind: Mutex::new(BTreeMap::new()),
        };
        hints.wake = hints
            .destinations()
            .into_iter()
            .flat_map(|d| d.lanes().iter().map(move |&l| (d.clone(), l)))
            .map(|q| (q, tokio::sync::Notify::new()))
            .collect();
        Ok(hints)
    }

    /// Settings.
    pub fn config(&self) -> &HintsConfig {
        &self.store.config
    }

    /// The engine the queues live in.
    pub fn engine(&self) -> &Arc<dyn Engine> {
        self.store.engine()
    }

    /// Appends `set` to the stream of every datacenter in `dcs`, inside
    /// `batch`. For the datacenters also in `wait_for` the entry goes to the
    /// urgent lane and a [`StreamWait`] is returned for it (none when the
    /// queue overflowed: the key was recorded for anti-entropy instead).
    /// Should `batch` not commit, hand the result to [`Hints::rollback`].
    pub fn stream_append(
        &self,
        dcs: &[String],
        wait_for: &[Awaited],
        keyspace: &str,
        key: &[u8],
        set: &SiblingSet,
        batch: &mut WriteBatch,
    ) -> Result<Appended, GeokvError> {
        let mut appended = Appended::default();
        if dcs.is_empty() {
            return Ok(appended);
        }
        let mut record = Vec::with_capacity(set.encoded_len());
        set.encode(&mut record);
        for dc in dcs {
            let dest = Dest::Dc(dc.clone());
            let awaited = wait_for.iter().find(|w| w.dc == *dc);
            let need = awaited.map(|w| w.need);
            let lane = if need.is_some() {
                Lane::Urgent
            } else {
                Lane::Backlog
            };
            // An urgent entry asks for at least one replica; 0 means all.
            let need_acks = need.map_or(0, |n| n.max(1));
            let mut entry = new_entry(keyspace, key, record.clone(), String::new(), need_acks);
            entry.coordinator_pending = awaited.and_then(|w| w.pending);
            if let Some((seq, bytes)) = self.store.enqueue(&dest, lane, entry, batch) {
                appended.counted.push((dest, lane, bytes));
                if need.is_some() {
                    appended.waits.push(self.waiters.register(dc, seq));
                }
            }
        }
        Ok(appended)
    }

    /// Takes back the backlog counts (and intents) of appends whose batch
    /// did not commit.
    pub fn rollback(&self, appended: Appended) {
        for (dest, lane, bytes) in appended.counted {
            self.store.counts.sub(&dest, lane, 1, bytes);
        }
        intent::rollback(appended.intents);
    }

    /// Like [`Hints::stream_append`], written at once on a blocking thread
    /// (when the coordinating replica was another node).
    pub async fn stream_append_now(
        &self,
        dcs: &[String],
        wait_for: &[Awaited],
        keyspace: &str,
        key: &[u8],
        set: &SiblingSet,
    ) -> Result<Vec<StreamWait>, GeokvError> {
        let mut batch = WriteBatch::new();
        let appended = self.stream_append(dcs, wait_for, keyspace, key, set, &mut batch)?;
        if !batch.is_empty() {
            let written = self.store.blocking(move |s| s.write(batch)).await;
            if let Err(e) = written.and_then(|r| r.map_err(GeokvError::from)) {
                self.rollback(appended);
                return Err(e);
            }
            self.notify_appended(dcs, wait_for, &appended.waits);
        }
        Ok(appended.waits)
    }

    /// The coordinators waiting on urgent entries.
    pub fn waiters(&self) -> &Waiters {
        &self.waiters
    }

    /// Whether node hint `seq`'s direct write is still in flight (the
    /// deliverer leaves it alone meanwhile).
    #[cfg(test)]
    pub(crate) fn in_flight(&self, seq: u64) -> bool {
        self.store.inflight.contains(seq)
    }

    /// Takes the lowest urgent sequence number committed for `dc` since the
    /// last call.
    pub(crate) fn take_rewind(&self, dc: &str) -> Option<u64> {
        self.rewind.lock().remove(dc)
    }

    /// Stores a hint for `target` (a replica that is down or failed), on a
    /// blocking thread.
    pub async fn hint_node(
        &self,
        node: &str,
        keyspace: &str,
        key: &[u8],
        set: &SiblingSet,
    ) -> Result<(), GeokvError> {
        let node = node.to_string();
        let mut record = Vec::with_capacity(set.encoded_len());
        set.encode(&mut record);
        let dest = Dest::Node(node.clone());
        let entry = new_entry(keyspace, key, record, node, 0);
        let (d, lane) = (dest.clone(), Lane::Backlog);
        let queued = self
            .store
            .blocking(move |s| {
                let mut batch = WriteBatch::new();
                let queued = s.enqueue(&d, lane, entry, &mut batch);
                match s.write(batch) {
                    Ok(()) => Ok(queued),
                    Err(e) => {
                        if let Some((_, bytes)) = queued {
                            s.counts.sub(&d, lane, 1, bytes);
                        }
                        Err(e)
                    }
                }
            })
            .await??;
        // Counted as stored even when the queue overflowed and the key was
        // recorded for anti-entropy instead (as before the split).
        let _ = queued;
        metrics::counter!("geokv_hints_stored_total").increment(1);
        self.notify_queue(&dest, lane);
        Ok(())
    }

    /// Records a key's token as needing anti-entropy towards `dest`, in
    /// `batch`.
    pub(crate) fn needs_repair(
        &self,
        keyspace: &str,
        key: &[u8],
        dest: &Dest,
        batch: &mut WriteBatch,
    ) {
        self.store.needs_repair(keyspace, key, dest, batch)
    }

    /// Wakes the delivery of what [`Hints::stream_append`] appended with the
    /// same `dcs` and `wait_for`: the urgent lane of the awaited datacenters
    /// (sent at once), the backlog lane of the others (sent after a linger).
    ///
    /// Call it once the append is committed: it also tells each urgent
    /// lane the lowest sequence number just appended, so an entry committed
    /// after a later one is loaded at once rather than at the next rescan.
    pub fn notify_appended(&self, dcs: &[String], wait_for: &[Awaited], waits: &[StreamWait]) {
        {
            let mut rewind = self.rewind.lock();
            for w in waits {
                let low = rewind.entry(w.dc.clone()).or_insert(w.seq);
                *low = (*low).min(w.seq);
            }
        }
        for dc in dcs {
            let lane = if awaits(wait_for, dc) {
                Lane::Urgent
            } else {
                Lane::Backlog
            };
            self.notify_queue(&Dest::Dc(dc.clone()), lane);
        }
    }

    pub(crate) fn notify_queue(&self, dest: &Dest, lane: Lane) {
        if let Some(n) = self.wake.get(&(dest.clone(), lane)) {
            n.notify_one();
        }
    }

    /// Resolves when something may have been enqueued in `lane` of `dest`.
    pub(crate) async fn notified(&self, dest: &Dest, lane: Lane) {
        match self.wake.get(&(dest.clone(), lane)) {
            Some(n) => n.notified().await,
            None => std::future::pending().await,
        }
    }

    /// Entries waiting for `dest` (both lanes).
    pub fn backlog_entries(&self, dest: &Dest) -> u64 {
        self.store.counts.entries(dest)
    }

    /// Total entries waiting in every queue.
    pub fn total_backlog(&self) -> u64 {
        self.store.counts.total()
    }

    /// Queues this node delivers in the view in force: every remote
    /// datacenter with replicas and every peer of our own datacenter, and
    /// the node queues on disk for nodes no longer members (their task
    /// redirects them, see `orphans`).
    pub fn destinations(&self) -> Vec<Dest> {
        let view = self.cluster.current();
        let mut v: Vec<Dest> = view
            .ring
            .topology()
            .datacenter_names()
            .into_iter()
            .filter(|dc| *dc != self.me.dc)
            .map(Dest::Dc)
            .collect();
        v.extend(
            view.ring
                .nodes()
                .iter()
                .filter(|n| n.dc == self.me.dc && n.id != self.me.id)
                .map(|n| Dest::Node(n.id.clone())),
        );
        for d in self.store.counts.queues() {
            if matches!(d, Dest::Node(_)) && !v.contains(&d) {
                v.push(d);
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::memory::MemoryEngine;
    use crate::engine::{Engine, Limits};
    use crate::topology::Topology;
    use crate::version::{ActorId, CausalContext};

    fn hints(engine: Arc<dyn Engine>) -> Hints {
        let cluster = Cluster::fixed(&Topology::dev(), "dc1-n1");
        let me = cluster.current().me().expect("dev topology").clone();
        Hints::open(engine, cluster, me, HintsConfig::default()).expect("open")
    }

    fn record() -> SiblingSet {
        let mut set = SiblingSet::new();
        set.update(ActorId(1), &CausalContext::new(), Some("v".into()), 1, 8)
            .expect("one sibling");
        set
    }

    #[test]
    fn counts_follow_what_commits_and_survive_reopen() {
        let engine: Arc<dyn Engine> = Arc::new(MemoryEngine::new(Limits::default()));
        let h = hints(engine.clone());
        let (dc2, dcs) = (Dest::Dc("dc2".into()), vec!["dc2".to_string()]);
        // Committed: one backlog entry and one urgent entry, with a wait.
        let mut batch = WriteBatch::new();
        let a = h.stream_append(&dcs, &[], "default", b"k1", &record(), &mut batch);
        assert!(a.expect("append").waits.is_empty());
        let awaited = vec![Awaited {
            dc: "dc2".to_string(),
            need: 2,
            pending: None,
        }];
        let b = h.stream_append(&dcs, &awaited, "default", b"k2", &record(), &mut batch);
        let b = b.expect("append");
        assert_eq!(b.waits.len(), 1, "an awaited datacenter gets a wait");
        engine.write(batch).expect("commit");
        assert_eq!(h.backlog_entries(&dc2), 2);
        // Not committed: rolled back, the counts do not move.
        let mut lost = WriteBatch::new();
        let c = h.stream_append(&dcs, &awaited, "default", b"k3", &record(), &mut lost);
        h.rollback(c.expect("append"));
        assert_eq!(h.backlog_entries(&dc2), 2);
        assert_eq!(h.waiters().len(), 1, "the rolled-back wait is gone");
        // Reopening rebuilds the same counts from disk, lanes included.
        drop(b);
        let again = hints(engine);
        assert_eq!(again.backlog_entries(&dc2), 2);
    }
}
