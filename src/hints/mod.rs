//! Durable hinted queues: the ordered **inter-DC streams** (one per remote
//! datacenter) and **hinted handoff** (one queue per peer of our datacenter).
//!
//! A mutation bound for a remote datacenter is appended to that datacenter's
//! queue in the same RocksDB batch as the local write (see
//! `coordinator::write`), before the client is acknowledged; [`deliver`]
//! drains each queue in sequence order over a bidirectional `Stream` RPC
//! (several batches in flight, one acknowledgement per batch), and [`receive`]
//! applies a batch to the receiving datacenter's replicas (hinting locally
//! for any that are down) before acknowledging. Redelivery is harmless:
//! sibling-set merge is idempotent.
//!
//! A level that needs a remote datacenter's acknowledgements appends to that
//! datacenter's **urgent lane** ([`queue::Lane`]) and waits on the entry's
//! acknowledgement ([`waiters`]), which reports how many replicas there
//! applied it: the wait goes through the stream, never around it, and never
//! behind a backlog.
//!
//! Nothing is dropped silently: a queue over its byte bound, or a node hint
//! older than the hint window, records the key's token range as needing
//! anti-entropy (meta column family, `geokv_repair_pending` gauge).
//!
//! Must not: choose replicas for a client request or count its acks.

pub mod deliver;
mod fate;
pub mod intent;
mod load;
pub mod queue;
pub mod receive;
pub mod waiters;

use crate::engine::{Cf, Engine, WriteBatch};
use crate::error::GeokvError;
use crate::proto::v1::internode::StreamEntry;
use crate::ring::{token_of, Ring};
use crate::topology::{NodeIdx, NodeInfo};
use crate::version::SiblingSet;
use intent::{InFlight, Intent};
use parking_lot::Mutex;
use queue::{encode_entry, Dest, Lane};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use waiters::{StreamWait, Waiters};

/// Meta-CF key prefix of token ranges that need anti-entropy.
pub const REPAIR_PREFIX: &[u8] = b"repair/";

/// The meta-CF key of one anti-entropy record:
/// `REPAIR_PREFIX [ks_len: u8][keyspace][token: u64 BE][unique: u64 BE]`.
/// `unique` makes every record its own key, so records for one token
/// accumulate (each names its own destination) and a record written while
/// a repair pass runs is not the key that pass deletes at its end.
pub fn repair_key(keyspace: &str, token: u64, unique: u64) -> Vec<u8> {
    let mut k = REPAIR_PREFIX.to_vec();
    k.push(keyspace.len() as u8);
    k.extend_from_slice(keyspace.as_bytes());
    k.extend_from_slice(&token.to_be_bytes());
    k.extend_from_slice(&unique.to_be_bytes());
    k
}

/// Hint and stream settings.
#[derive(Clone, Debug)]
pub struct HintsConfig {
    /// How long hints for a dead node are kept (Cassandra: 3 h). Older hints
    /// are recorded for anti-entropy instead of being replayed.
    pub hint_window: Duration,
    /// Per-destination backlog bound in bytes.
    pub max_backlog_bytes: u64,
    /// Upper bound of one batch (entries); batches grow towards it while the
    /// destination keeps up and shrink when it does not.
    pub max_batch_entries: usize,
    /// Upper bound of one batch in bytes.
    pub max_batch_bytes: usize,
}

impl Default for HintsConfig {
    fn default() -> Self {
        HintsConfig {
            hint_window: Duration::from_secs(24 * 3600),
            max_backlog_bytes: 4 << 30,
            max_batch_entries: 4096,
            max_batch_bytes: 4 << 20,
        }
    }
}

#[derive(Default, Clone, Copy, Debug)]
struct Backlog {
    entries: u64,
    bytes: u64,
}

/// A remote datacenter whose acknowledgement a write waits for, and how
/// many of its replicas must have applied the entry before the receiver
/// acknowledges it (the level's count there; the receiver caps it at the
/// datacenter's replicas).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Awaited {
    pub dc: String,
    pub need: u32,
}

/// Whether `dc` is among the awaited datacenters.
pub fn awaits(wait_for: &[Awaited], dc: &str) -> bool {
    wait_for.iter().any(|w| w.dc == dc)
}

/// What [`Hints::stream_append`] (or [`append_update`]) added to a write
/// batch: the waits of its urgent entries, the intents for the other local
/// replicas, and the counts to take back should the batch not commit.
#[derive(Default)]
pub struct Appended {
    /// One per awaited datacenter whose queue took the entry.
    pub waits: Vec<StreamWait>,
    /// One per other local replica (see [`intent`]).
    pub intents: Vec<Intent>,
    counted: Vec<(Dest, Lane, u64)>,
}

impl Appended {
    /// Only waits (the entries were written by [`Hints::stream_append_now`]).
    pub fn waiting(waits: Vec<StreamWait>) -> Self {
        Appended {
            waits,
            ..Appended::default()
        }
    }
}

/// Everything a coordinating replica adds to its update's batch: the entry
/// for every remote datacenter's stream ([`Hints::stream_append`]) and an
/// intent (a node hint, deleted when that replica acknowledges the direct
/// write) for each of `local`, the other replicas of our datacenter. So the
/// write reaches every replica even if this node dies right after it.
#[allow(clippy::too_many_arguments)]
pub fn append_update(
    hints: &Arc<Hints>,
    local: &[NodeIdx],
    dcs: &[String],
    wait_for: &[Awaited],
    keyspace: &str,
    key: &[u8],
    set: &SiblingSet,
    batch: &mut WriteBatch,
) -> Result<Appended, GeokvError> {
    let mut appended = hints.stream_append(dcs, wait_for, keyspace, key, set, batch)?;
    match intent::intend(hints, local, keyspace, key, set, batch) {
        Ok(i) => appended.intents = i,
        Err(e) => {
            hints.rollback(appended);
            return Err(e);
        }
    }
    Ok(appended)
}

/// The node's hinted queues.
pub struct Hints {
    engine: Arc<dyn Engine>,
    ring: Arc<Ring>,
    me: NodeInfo,
    config: HintsConfig,
    /// Next sequence number; starts at wall-clock microseconds so it keeps
    /// increasing across restarts without a persisted counter.
    seq: AtomicU64,
    /// In-memory mirror of each queue's size (rebuilt from disk at start).
    backlog: Mutex<BTreeMap<(Dest, Lane), Backlog>>,
    /// One wake-up per destination queue and lane (a stored permit, so a
    /// wake-up while the task is busy is not lost).
    wake: BTreeMap<(Dest, Lane), tokio::sync::Notify>,
    /// Coordinators waiting on urgent entries.
    waiters: Waiters,
    /// Node hints whose direct write is in flight ([`intent`]).
    inflight: InFlight,
    /// Per datacenter, the lowest urgent sequence number committed since its
    /// delivery task last loaded (see [`Hints::notify_appended`]).
    rewind: Mutex<BTreeMap<String, u64>>,
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Hints {
    /// Opens the queues of `me`, rebuilding backlog counters from disk.
    pub fn open(
        engine: Arc<dyn Engine>,
        ring: Arc<Ring>,
        me: NodeIdx,
        config: HintsConfig,
    ) -> Result<Self, GeokvError> {
        let me = ring.node(me).clone();
        let mut backlog: BTreeMap<(Dest, Lane), Backlog> = BTreeMap::new();
        let mut max_seq = 0u64;
        let mut from: Vec<u8> = Vec::new();
        loop {
            let page = engine.scan_raw(Cf::Hints, &from, &[0xff; 1], 10_000)?;
            let Some((last, _)) = page.last() else { break };
            from = last.clone();
            from.push(0);
            for (k, v) in &page {
                if let Some((dest, lane, seq)) = Dest::parse_key(k) {
                    let b = backlog.entry((dest, lane)).or_default();
                    b.entries += 1;
                    b.bytes += v.len() as u64;
                    max_seq = max_seq.max(seq);
                }
            }
        }
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        let mut hints = Hints {
            engine,
            ring,
            me,
            config,
            seq: AtomicU64::new(micros.max(max_seq + 1)),
            backlog: Mutex::new(backlog),
            wake: BTreeMap::new(),
            waiters: Waiters::default(),
            inflight: InFlight::default(),
            rewind: Mutex::new(BTreeMap::new()),
        };
        hints.wake = hints
            .destinations()
            .into_iter()
            .flat_map(|d| d.lanes().iter().map(move |&l| (d.clone(), l)))
            .map(|q| (q, tokio::sync::Notify::new()))
            .collect();
        hints.publish_all();
        Ok(hints)
    }

    /// Settings.
    pub fn config(&self) -> &HintsConfig {
        &self.config
    }

    /// The engine the queues live in.
    pub fn engine(&self) -> &Arc<dyn Engine> {
        &self.engine
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
            let need = wait_for.iter().find(|w| w.dc == *dc).map(|w| w.need);
            let lane = if need.is_some() {
                Lane::Urgent
            } else {
                Lane::Backlog
            };
            // An urgent entry asks for at least one replica; 0 means all.
            let need_acks = need.map_or(0, |n| n.max(1));
            let queued = self.enqueue(
                &dest,
                lane,
                keyspace,
                key,
                &record,
                String::new(),
                need_acks,
                batch,
            )?;
            if let Some((seq, bytes)) = queued {
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
            self.dequeued(&dest, lane, 1, bytes);
        }
        intent::rollback(appended.intents);
    }

    /// Like [`Hints::stream_append`], written at once (when the coordinating
    /// replica was another node).
    pub fn stream_append_now(
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
            if let Err(e) = self.engine.write(batch) {
                self.rollback(appended);
                return Err(e.into());
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
    pub(crate) fn in_flight(&self, seq: u64) -> bool {
        self.inflight.contains(seq)
    }

    /// Takes the lowest urgent sequence number committed for `dc` since the
    /// last call.
    pub(crate) fn take_rewind(&self, dc: &str) -> Option<u64> {
        self.rewind.lock().remove(dc)
    }

    /// Stores a hint for `target` (a replica that is down or failed).
    pub fn hint_node(
        &self,
        target: NodeIdx,
        keyspace: &str,
        key: &[u8],
        set: &SiblingSet,
    ) -> Result<(), GeokvError> {
        let node = self.ring.node(target).id.clone();
        let mut record = Vec::with_capacity(set.encoded_len());
        set.encode(&mut record);
        let mut batch = WriteBatch::new();
        let dest = Dest::Node(node.clone());
        let queued = self.enqueue(
            &dest,
            Lane::Backlog,
            keyspace,
            key,
            &record,
            node,
            0,
            &mut batch,
        )?;
        if !batch.is_empty() {
            if let Err(e) = self.engine.write(batch) {
                if let Some((_, bytes)) = queued {
                    self.dequeued(&dest, Lane::Backlog, 1, bytes);
                }
                return Err(e.into());
            }
            metrics::counter!("geokv_hints_stored_total").increment(1);
            self.notify_queue(&dest, Lane::Backlog);
        }
        Ok(())
    }

    /// Adds one entry to `batch` and counts it; its sequence number and
    /// stored size, or `None` when the queue is over its byte bound (the key
    /// is recorded for anti-entropy).
    #[allow(clippy::too_many_arguments)]
    fn enqueue(
        &self,
        dest: &Dest,
        lane: Lane,
        keyspace: &str,
        key: &[u8],
        record: &[u8],
        target_node: String,
        need_acks: u32,
        batch: &mut WriteBatch,
    ) -> Result<Option<(u64, u64)>, GeokvError> {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let entry = StreamEntry {
            seq,
            keyspace: keyspace.to_string(),
            key: key.to_vec(),
            record: record.to_vec(),
            target_node,
            traceparent: crate::telemetry::current_traceparent(),
            need_acks,
        };
        let value = encode_entry(now_ms(), &entry);
        {
            let mut b = self.backlog.lock();
            let queued: u64 = dest
                .lanes()
                .iter()
                .filter_map(|&l| b.get(&(dest.clone(), l)))
                .map(|q| q.bytes)
                .sum();
            if queued + value.len() as u64 > self.config.max_backlog_bytes {
                drop(b);
                metrics::counter!("geokv_hint_overflows_total", "dest" => dest.label())
                    .increment(1);
                self.needs_repair(keyspace, key, dest, batch);
                return Ok(None);
            }
            let q = b.entry((dest.clone(), lane)).or_default();
            q.entries += 1;
            q.bytes += value.len() as u64;
        }
        batch.put_raw(Cf::Hints, &dest.key(lane, seq), &value);
        self.publish(dest, lane);
        Ok(Some((seq, value.len() as u64)))
    }

    /// Records a key's token as needing anti-entropy towards `dest`.
    pub(crate) fn needs_repair(
        &self,
        keyspace: &str,
        key: &[u8],
        dest: &Dest,
        batch: &mut WriteBatch,
    ) {
        // The queue's sequence counter: unique, and increasing across restarts.
        let unique = self.seq.fetch_add(1, Ordering::Relaxed);
        let k = repair_key(keyspace, token_of(key), unique);
        batch.put_raw(Cf::Meta, &k, dest.label().as_bytes());
        metrics::counter!("geokv_repair_recorded_total", "dest" => dest.label()).increment(1);
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

    pub(crate) fn dequeued(&self, dest: &Dest, lane: Lane, entries: u64, bytes: u64) {
        {
            let mut b = self.backlog.lock();
            let q = b.entry((dest.clone(), lane)).or_default();
            q.entries = q.entries.saturating_sub(entries);
            q.bytes = q.bytes.saturating_sub(bytes);
        }
        self.publish(dest, lane);
    }

    /// Entries waiting for `dest` (both lanes).
    pub fn backlog_entries(&self, dest: &Dest) -> u64 {
        let b = self.backlog.lock();
        dest.lanes()
            .iter()
            .filter_map(|&l| b.get(&(dest.clone(), l)))
            .map(|q| q.entries)
            .sum()
    }

    /// Total entries waiting in every queue.
    pub fn total_backlog(&self) -> u64 {
        self.backlog.lock().values().map(|b| b.entries).sum()
    }

    fn publish(&self, dest: &Dest, lane: Lane) {
        let key = (dest.clone(), lane);
        let b = self.backlog.lock().get(&key).copied().unwrap_or_default();
        let (d, l) = (dest.label(), lane.label());
        metrics::gauge!("geokv_hint_backlog_entries", "dest" => d.clone(), "lane" => l)
            .set(b.entries as f64);
        metrics::gauge!("geokv_hint_backlog_bytes", "dest" => d, "lane" => l).set(b.bytes as f64);
    }

    fn publish_all(&self) {
        let queues: Vec<(Dest, Lane)> = self.backlog.lock().keys().cloned().collect();
        for (d, l) in queues {
            self.publish(&d, l);
        }
    }

    /// Queues this node delivers: every remote datacenter with replicas and
    /// every peer of our own datacenter.
    pub fn destinations(&self) -> Vec<Dest> {
        let mut v: Vec<Dest> = self
            .ring
            .topology()
            .datacenter_names()
            .into_iter()
            .filter(|dc| *dc != self.me.dc)
            .map(Dest::Dc)
            .collect();
        v.extend(
            self.ring
                .nodes()
                .iter()
                .filter(|n| n.dc == self.me.dc && n.idx != self.me.idx)
                .map(|n| Dest::Node(n.id.clone())),
        );
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::memory::MemoryEngine;
    use crate::engine::Limits;
    use crate::topology::Topology;
    use crate::version::{ActorId, CausalContext};

    fn hints(engine: Arc<dyn Engine>) -> Hints {
        let ring = Arc::new(Ring::new(&Topology::dev()));
        let me = ring.node_by_id("dc1-n1").expect("dev topology").idx;
        Hints::open(engine, ring, me, HintsConfig::default()).expect("open")
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
