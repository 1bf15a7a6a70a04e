//! [`Hints`], the hints service writers call (Cassandra's `HintsService`):
//! node hints, wake-ups of the deliverers, the coordinators' waits on
//! urgent entries, and the urgent lanes' rewind (what a write commits with
//! its update is `commit`'s). Its engine I/O goes through the store on
//! blocking threads, except what it adds to a caller's batch.
//!
//! Must not: send anything or decide when entries are sent.

use super::queue::{Dest, Lane};
use super::store::Store;
use super::waiters::Waiters;
use super::{new_entry, HintsConfig};
use crate::engine::{Engine, WriteBatch};
use crate::error::GeokvError;
use crate::replica::handle::Local;
use crate::replica::Replica;
use crate::topology::NodeInfo;
use crate::version::SiblingSet;
use crate::view::{Cluster, NotServing};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::OwnedRwLockReadGuard;

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
    /// `false` once a node that has left handed everything over
    /// ([`Hints::seal_if_handed_over`]): node hints and anti-entropy records
    /// are refused from then on. Held shared by the blocking write itself
    /// (not by its caller, who may be cancelled while the write is queued),
    /// so the seal waits for it and counts it.
    open: Arc<tokio::sync::RwLock<bool>>,
    /// This node's replica, where a hint's copy bound for this node is
    /// merged (`moving::copy`); none on a node that has left (its drain
    /// start has no replica, and no key is placed on it).
    replica: Option<Arc<Replica>>,
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
            open: Arc::new(tokio::sync::RwLock::new(true)),
            replica: None,
        };
        hints.wake = hints
            .destinations()
            .into_iter()
            .flat_map(|d| d.lanes().iter().map(move |&l| (d.clone(), l)))
            .map(|q| (q, tokio::sync::Notify::new()))
            .collect();
        Ok(hints)
    }

    /// These queues with this node's replica, into which a hint's copy
    /// bound for this node is merged (`moving::copy`), checked as a
    /// replica write.
    pub fn with_replica(self, replica: Arc<Replica>) -> Self {
        Hints {
            replica: Some(replica),
            ..self
        }
    }

    /// This node's replica and the cluster whose view checks its merges.
    pub(crate) fn here(&self) -> Option<Local<'_>> {
        let replica = self.replica.as_ref()?;
        let cluster = &self.cluster;
        Some(Local { replica, cluster })
    }

    /// Settings.
    pub fn config(&self) -> &HintsConfig {
        &self.store.config
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
        let open = self.queue_pass().await?;
        let node = node.to_string();
        let mut record = Vec::with_capacity(set.encoded_len());
        set.encode(&mut record);
        let dest = Dest::Node(node.clone());
        let entry = new_entry(keyspace, key, record, node, 0);
        let (d, lane) = (dest.clone(), Lane::Backlog);
        let queued = self
            .store
            .blocking(move |s| {
                let _open = open;
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

    /// Records a key's token as needing anti-entropy towards `dest`, written
    /// at once on a blocking thread.
    pub async fn record_for_repair(
        &self,
        keyspace: &str,
        key: &[u8],
        dest: &Dest,
    ) -> Result<(), GeokvError> {
        let open = self.queue_pass().await?;
        let (ks, key, dest) = (keyspace.to_string(), key.to_vec(), dest.clone());
        let written = (self.store).blocking(move |s| {
            let _open = open;
            let mut batch = WriteBatch::new();
            s.needs_repair(&ks, &key, &dest, &mut batch);
            s.write(batch)
        });
        Ok(written.await??)
    }

    /// A pass for minting a write on this node ([`super::Commit::mint`]):
    /// refused once the view in force marks this node Left (sealed or
    /// not), before anything is written (`NotReady`: nothing applied, a
    /// forwarder tries another replica): a node that has left takes no new
    /// write (as a replica refuses one, `view::stale_view`), since its own
    /// copy leaves with it, and once sealed what the write would queue
    /// (its intents and stream entries) would stay in a store nobody
    /// drains. Held by the blocking write itself, so the seal waits for a
    /// write in flight (one that passed before the view marked the node
    /// Left) and counts what it queued. Refused as well, `NotReady`, once
    /// the engine refuses writes after a failed fsync (review-me33 M2): a
    /// forwarder then tries another replica rather than reading INTERNAL
    /// "maybe".
    pub(crate) async fn mint_pass(&self) -> Result<OwnedRwLockReadGuard<bool>, GeokvError> {
        if let Err(e @ NotServing::WritesRefused { .. }) = self.cluster.serving() {
            return Err(e.into());
        }
        let open = self.open.clone().read_owned().await;
        if !*open || self.cluster.current().has_left() {
            let view = self.cluster.current();
            let state = view.layout.node(view.me_id()).map(|(_, _, n)| n.state);
            return Err(GeokvError::NotReady(NotServing::Left {
                node: view.me_id().to_string(),
                state: state.unwrap_or(crate::layout::NodeState::Left),
            }));
        }
        Ok(open)
    }

    /// A pass for writing to the queues on their own, after a write was
    /// minted or sent (a node hint, an anti-entropy record, a minted
    /// write's urgent entries: [`super::Commit::append_urgent`], a stream
    /// receiver's intents: [`super::intent::intend_now`]): refused once the
    /// queues are sealed ([`GeokvError::HintsSealed`], "maybe applied"),
    /// since what it wrote would stay in a store nobody drains. Held by the
    /// blocking write itself (not by its caller, who may be cancelled while
    /// the write is queued), so the seal waits for it and counts it.
    pub(crate) async fn queue_pass(&self) -> Result<OwnedRwLockReadGuard<bool>, GeokvError> {
        let open = self.open.clone().read_owned().await;
        if !*open {
            return Err(sealed());
        }
        Ok(open)
    }

    /// On a node that has left: what is left to hand over
    /// ([`Hints::left_to_hand_over`]), and once that is nothing, refuses
    /// every later node hint and anti-entropy record (a request that was in
    /// flight when the node left may still try to write one: refused, it
    /// fails rather than being left behind in a store nobody drains). One
    /// being written is waited for and counted first. A member: its
    /// queued entries, nothing refused.
    pub async fn seal_if_handed_over(&self) -> u64 {
        let mut open = self.open.write().await;
        let left = self.left_to_hand_over().await;
        if left == 0 && self.cluster.current().has_left() {
            *open = false;
        }
        left
    }

    /// Tells `dc`'s urgent lane that `seq` was just committed (kept: the
    /// lowest since its delivery task last loaded; see [`Hints::take_rewind`]).
    pub(crate) fn rewind_to(&self, dc: &str, seq: u64) {
        let mut rewind = self.rewind.lock();
        let low = rewind.entry(dc.to_string()).or_insert(seq);
        *low = (*low).min(seq);
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

    /// What a node that has left must still hand over before it stops: its
    /// queued entries and its anti-entropy records. A member: its queued
    /// entries. The records are not scanned: their count is kept by the
    /// hand-over (`adopt::tally`; not counted yet: one left); only a count
    /// of zero with nothing queued is checked by reading one record, since
    /// a record is counted before its batch commits.
    pub async fn left_to_hand_over(&self) -> u64 {
        let queued = self.total_backlog();
        if !self.cluster.current().has_left() {
            return queued;
        }
        match self.store.records.left() {
            None => queued + 1,
            Some(0) if queued == 0 => self.any_record().await,
            Some(n) => queued + n,
        }
    }

    /// 1 if a record is stored (a key that does not parse is set aside,
    /// not counted: `repair::records::load_page`), else 0; 1 when the
    /// store cannot be read, so a drain does not stop on it.
    async fn any_record(&self) -> u64 {
        let found = (self.store)
            .blocking(|s| crate::repair::records::load_page(&**s.engine(), None, 1))
            .await;
        match found {
            Ok(Ok((records, _))) => !records.is_empty() as u64,
            _ => 1,
        }
    }

    /// What is left to hand over per queue (`node:ID`, `dc:NAME`) and, on a
    /// node that has left, its anti-entropy records (`repair-records`; not
    /// counted yet: 1), for a drain's progress line.
    pub fn left_per_queue(&self) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = (self.destinations().iter())
            .map(|d| (d.label(), self.backlog_entries(d)))
            .collect();
        if self.cluster.current().has_left() {
            let records = self.store.records.left().unwrap_or(1);
            v.push((super::adopt::records::LABEL.to_string(), records));
        }
        v
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

/// Why a node hint or record is refused once the node handed everything
/// over: not "nothing applied", since a hint or record always follows a
/// write that was minted or sent.
fn sealed() -> GeokvError {
    GeokvError::HintsSealed
}

#[cfg(test)]
#[path = "service_tests.rs"]
mod tests;
