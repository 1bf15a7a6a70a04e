//! Drains each hinted queue over one open `Stream` per destination, several
//! batches in flight:
//!
//! - the **urgent lane** (entries a client waits on) is sent at once, in
//!   small batches, with its own window, so a waiting EACH_QUORUM/QUORUM/ALL
//!   write never queues behind a backlog; each acknowledgement resolves the
//!   coordinators' waits with the number of replicas that applied the entry;
//! - the **backlog lane** is sent in batches sized adaptively (AIMD: grow
//!   while the destination acknowledges quickly, halve on failure or
//!   slowness), so replay runs as fast as the destination accepts rather than
//!   at a fixed byte rate, and backs off when it struggles.
//!
//! Entries leave a queue only once acknowledged as durable at the
//! destination. A load skips the key ranges of batches in flight and starts
//! at the lane's floor, the lowest key still live, so it does not step over
//! the tombstones acknowledged entries leave; once a second it scans the lane
//! from its start, so an entry whose batch committed after a later sequence
//! number's (and sorts below the floor) is still found.
//!
//! Must not: decide what is enqueued; it only sends, deletes what was
//! acknowledged, and records expired hints for anti-entropy.

use super::fate::{fate, Fate};
use super::load::Loaded;
use super::queue::{Dest, Lane};
use super::{now_ms, Hints};
use crate::coordinator::Liveness;
use crate::engine::{Cf, WriteBatch};
use crate::proto::v1::internode::{EntryAck, StreamAck, StreamBatch};
use crate::ring::Ring;
use crate::topology::{NodeIdx, NodeInfo};
use crate::transport::{OutboundStream, Peers, TransportError};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// What a delivery task needs.
#[derive(Clone)]
pub struct Delivery {
    pub hints: Arc<Hints>,
    pub peers: Arc<Peers>,
    pub ring: Arc<Ring>,
    pub liveness: Arc<dyn Liveness>,
    pub me: NodeInfo,
}

/// Target latency of one backlog batch; batches shrink when slower.
const SLOW_BATCH: Duration = Duration::from_secs(2);
const MIN_BATCH: usize = 16;
/// Backlog batches in flight per stream.
const BACKLOG_WINDOW: usize = 4;
/// Urgent batches in flight per stream, and their size bound.
const URGENT_WINDOW: usize = 16;
const URGENT_BATCH: usize = 256;
/// A batch not acknowledged within this is given up (the stream reopens).
const BATCH_TIMEOUT: Duration = Duration::from_secs(10);
/// A lane is scanned from its very start at least this often, so an entry
/// whose batch committed after a later sequence number's (and so sorts below
/// the lane's floor) is still found.
const RESCAN: Duration = Duration::from_secs(1);
/// Wait after a backlog wake-up so concurrent writes share one batch.
const LINGER: Duration = Duration::from_millis(2);

/// A batch sent and not yet acknowledged.
struct InFlight {
    lane: Lane,
    /// First and last key of the lane range the batch was loaded from.
    range: (Vec<u8>, Vec<u8>),
    page: Vec<Loaded>,
    sent: Instant,
}

/// Why a queue stalled.
enum Stall {
    /// No live node to deliver to.
    NoTarget,
    Failed(String),
}

impl From<TransportError> for Stall {
    fn from(e: TransportError) -> Self {
        Stall::Failed(e.to_string())
    }
}

/// The delivery state of one queue.
struct Pump {
    dest: Dest,
    label: String,
    stream: Option<OutboundStream>,
    flight: BTreeMap<u64, InFlight>,
    next_batch: u64,
    /// Backlog batch size (AIMD).
    limit: usize,
    backoff: Duration,
    rr: usize,
    /// Per lane, a key no live entry sorts below (acknowledged entries leave
    /// tombstones, and a queue scanned from its start would step over every
    /// one of them), and when the lane was last scanned from its start.
    floors: HashMap<Lane, Floor>,
}

/// See [`Pump::floors`].
struct Floor {
    key: Vec<u8>,
    full_scan: Instant,
}

impl Pump {
    fn in_flight(&self, lane: Lane) -> usize {
        self.flight.values().filter(|f| f.lane == lane).count()
    }

    /// Drops the stream and forgets what was in flight (it stays queued and
    /// is sent again on the next stream).
    fn reset(&mut self) {
        self.stream = None;
        self.flight.clear();
    }
}

/// What woke a pump that has batches in flight.
enum Event {
    Ack(Result<StreamAck, TransportError>),
    Wake,
    Timeout,
}

impl Delivery {
    /// Spawns one task per destination queue; they stop on `shutdown`.
    pub fn spawn_all(self, shutdown: watch::Receiver<bool>) {
        for dest in self.hints.destinations() {
            let d = self.clone();
            let sd = shutdown.clone();
            tokio::spawn(async move { d.run(dest, sd).await });
        }
    }

    async fn run(self, dest: Dest, mut shutdown: watch::Receiver<bool>) {
        let mut p = Pump {
            label: dest.label(),
            dest,
            stream: None,
            flight: BTreeMap::new(),
            next_batch: 1,
            limit: MIN_BATCH * 4,
            backoff: Duration::from_millis(50),
            floors: HashMap::new(),
            // Senders start at different nodes of the destination, so their
            // streams (and the apply work) spread over it.
            rr: self.me.idx.0 as usize,
        };
        loop {
            if *shutdown.borrow() {
                return;
            }
            // Stay on the open stream while its node is up.
            if let Some(s) = p.stream.as_ref().filter(|s| !self.liveness.is_up(s.to)) {
                tracing::debug!(dest = %p.label, to = s.to.0, "stream's node is down; reopening");
                p.reset();
            }
            if let Err(stall) = self.fill(&mut p).await {
                self.stalled(&mut p, stall, &mut shutdown).await;
                continue;
            }
            metrics::gauge!("geokv_stream_batches_in_flight", "dest" => p.label.clone())
                .set(p.flight.len() as f64);
            let urgent_room =
                p.in_flight(Lane::Urgent) < URGENT_WINDOW && matches!(p.dest, Dest::Dc(_));
            let backlog_room = p.in_flight(Lane::Backlog) < BACKLOG_WINDOW;
            let Some(stream) = p.stream.as_mut().filter(|_| !p.flight.is_empty()) else {
                tokio::select! {
                    biased;
                    _ = shutdown.changed() => {}
                    _ = self.hints.notified(&p.dest, Lane::Urgent) => {}
                    _ = self.hints.notified(&p.dest, Lane::Backlog) => {
                        tokio::time::sleep(LINGER).await;
                    }
                    _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                }
                continue;
            };
            let oldest = p.flight.values().map(|f| f.sent).min();
            let give_up = oldest.unwrap_or_else(Instant::now) + BATCH_TIMEOUT;
            let event = tokio::select! {
                biased;
                _ = shutdown.changed() => Event::Wake,
                ack = stream.next_ack() => Event::Ack(ack),
                _ = self.hints.notified(&p.dest, Lane::Urgent), if urgent_room => Event::Wake,
                _ = self.hints.notified(&p.dest, Lane::Backlog), if backlog_room => Event::Wake,
                _ = tokio::time::sleep_until(give_up) => Event::Timeout,
            };
            let outcome = match event {
                Event::Wake => Ok(()),
                Event::Ack(Ok(ack)) => self.acked(&mut p, ack).await,
                Event::Ack(Err(e)) => Err(Stall::from(e)),
                Event::Timeout => Err(Stall::Failed(format!(
                    "no acknowledgement within {} s",
                    BATCH_TIMEOUT.as_secs()
                ))),
            };
            if let Err(stall) = outcome {
                self.stalled(&mut p, stall, &mut shutdown).await;
            }
        }
    }

    /// Sends batches until both lanes' windows are full or the lanes are
    /// empty, and publishes the age of the oldest unacknowledged entry.
    async fn fill(&self, p: &mut Pump) -> Result<(), Stall> {
        let mut oldest: Option<u64> = p
            .flight
            .values()
            .filter_map(|f| f.page.first().map(|l| l.created_ms))
            .min();
        let mut result = Ok(());
        'lanes: for &lane in p.dest.lanes() {
            let (window, limit) = match lane {
                Lane::Urgent => (URGENT_WINDOW, URGENT_BATCH),
                Lane::Backlog => (BACKLOG_WINDOW, p.limit),
            };
            while p.in_flight(lane) < window {
                let skip: Vec<(Vec<u8>, Vec<u8>)> = p
                    .flight
                    .values()
                    .filter(|f| f.lane == lane)
                    .map(|f| f.range.clone())
                    .collect();
                let floor = p.floors.get(&lane);
                let full = floor.is_none_or(|f| f.full_scan.elapsed() > RESCAN);
                let mut from = match floor {
                    Some(f) if !full => f.key.clone(),
                    _ => p.dest.prefix(lane),
                };
                if let (Lane::Urgent, Dest::Dc(dc)) = (lane, &p.dest) {
                    // An urgent entry committed after a later one sorts below
                    // the floor: start from it rather than wait for RESCAN.
                    if let Some(seq) = self.hints.take_rewind(dc) {
                        from = from.min(p.dest.key(lane, seq));
                    }
                }
                let page = self
                    .load(&p.dest, lane, from.clone(), skip.clone(), limit)
                    .await;
                // Every live entry is in a batch in flight or at or above the
                // first one found (late commits aside: see RESCAN).
                let low = page
                    .first()
                    .map(|l| l.key.clone())
                    .into_iter()
                    .chain(skip.into_iter().map(|r| r.0))
                    .min();
                let full_scan = match p.floors.get(&lane) {
                    Some(f) if !full => f.full_scan,
                    _ => Instant::now(),
                };
                p.floors.insert(
                    lane,
                    Floor {
                        key: low.unwrap_or(from),
                        full_scan,
                    },
                );
                let (Some(first), Some(last)) = (page.first(), page.last()) else {
                    break;
                };
                let range = (first.key.clone(), last.key.clone());
                oldest = Some(oldest.map_or(first.created_ms, |o| o.min(first.created_ms)));
                let page = self.expire(&p.dest, page).await;
                let loaded = page.len();
                // Intents whose direct write is still in flight are left
                // alone (see `intent`): no doubled traffic.
                let page: Vec<Loaded> = page
                    .into_iter()
                    .filter(|l| !self.hints.in_flight(l.entry.seq))
                    .collect();
                if page.is_empty() {
                    if loaded > 0 {
                        break; // all in flight: the same page would load again
                    }
                    continue;
                }
                if let Err(stall) = self.send(p, lane, range, page).await {
                    result = Err(stall);
                    break 'lanes;
                }
            }
        }
        let age = oldest.map_or(0.0, |o| now_ms().saturating_sub(o) as f64 / 1000.0);
        metrics::gauge!("geokv_hint_oldest_age_seconds", "dest" => p.label.clone()).set(age);
        result
    }

    #[tracing::instrument(name = "hints.send_batch", skip_all,
        fields(dest = %p.label, lane = lane.label(), entries = page.len()))]
    async fn send(
        &self,
        p: &mut Pump,
        lane: Lane,
        range: (Vec<u8>, Vec<u8>),
        page: Vec<Loaded>,
    ) -> Result<(), Stall> {
        if p.stream.is_none() {
            let target = self
                .pick_target(&p.dest, &mut p.rr)
                .ok_or(Stall::NoTarget)?;
            p.stream = Some(
                self.peers
                    .open_stream(target, Duration::from_secs(5))
                    .await?,
            );
        }
        let batch_id = p.next_batch;
        p.next_batch += 1;
        // Urgent entries nobody waits on any more (their clients timed out,
        // e.g. during an outage) are applied at the receiver's replay pace.
        let waiters = self.hints.waiters();
        let urgent = lane == Lane::Urgent && page.iter().any(|l| waiters.contains(l.entry.seq));
        let batch = StreamBatch {
            source_node: self.me.id.clone(),
            source_dc: self.me.dc.clone(),
            entries: page.iter().map(|l| l.entry.clone()).collect(),
            batch_id,
            urgent,
        };
        let stream = p.stream.as_mut().expect("opened above");
        stream.send(batch).await?;
        p.flight.insert(
            batch_id,
            InFlight {
                lane,
                range,
                page,
                sent: Instant::now(),
            },
        );
        Ok(())
    }

    /// Handles one acknowledgement: resolves the waits of urgent entries,
    /// deletes what is durable at the destination, adapts the batch size.
    async fn acked(&self, p: &mut Pump, ack: StreamAck) -> Result<(), Stall> {
        let Some(f) = p.flight.remove(&ack.batch_id) else {
            return Ok(()); // a batch given up on earlier
        };
        let took = f.sent.elapsed();
        tracing::debug!(dest = %p.label, lane = f.lane.label(), entries = f.page.len(),
            ms = took.as_millis() as u64, in_flight = p.flight.len(), "batch acknowledged");
        let by_seq: HashMap<u64, &EntryAck> = ack.entries.iter().map(|a| (a.seq, a)).collect();
        let mut durable = Vec::with_capacity(f.page.len());
        let mut kept = 0usize;
        let mut refused = WriteBatch::new();
        let mut refused_n = 0u64;
        for l in f.page {
            let (outcome, fate) = fate(f.lane, by_seq.get(&l.entry.seq).copied());
            if let Some(outcome) = outcome {
                self.hints.waiters().resolve(l.entry.seq, outcome);
            }
            match fate {
                Fate::Delete => durable.push(l),
                Fate::Refused => {
                    // Resending cannot help: leave the key to anti-entropy
                    // (recorded, counted, logged by the receiver) and move
                    // on, rather than stall the whole queue behind it.
                    self.hints
                        .needs_repair(&l.entry.keyspace, &l.entry.key, &p.dest, &mut refused);
                    refused_n += 1;
                    durable.push(l);
                }
                Fate::Keep => kept += 1,
            }
        }
        if refused_n > 0 {
            metrics::counter!("geokv_stream_refused_total", "dest" => p.label.clone())
                .increment(refused_n);
            let engine = self.hints.engine().clone();
            if !matches!(
                tokio::task::spawn_blocking(move || engine.write(refused)).await,
                Ok(Ok(()))
            ) {
                return Err(Stall::Failed("could not record refused entries".into()));
            }
        }
        metrics::counter!("geokv_hint_sent_total", "dest" => p.label.clone(), "lane" => f.lane.label())
            .increment(durable.len() as u64 - refused_n);
        self.delete(&p.dest, f.lane, &durable).await;
        if f.lane == Lane::Backlog {
            p.limit = if took < SLOW_BATCH / 4 {
                (p.limit * 2).min(self.hints.config().max_batch_entries)
            } else if took > SLOW_BATCH {
                (p.limit / 2).max(MIN_BATCH)
            } else {
                p.limit
            };
        }
        if kept > 0 {
            // Not durable there yet: resend them (from the start of the lane).
            return Err(Stall::Failed(format!(
                "{kept} entries not durable at the destination"
            )));
        }
        p.backoff = Duration::from_millis(50);
        Ok(())
    }

    /// Drops the stream and what was in flight, then backs off (doubling,
    /// up to 2 s; an urgent entry cuts it short).
    async fn stalled(&self, p: &mut Pump, stall: Stall, shutdown: &mut watch::Receiver<bool>) {
        p.reset();
        p.limit = (p.limit / 2).max(MIN_BATCH);
        metrics::counter!("geokv_hint_send_failures_total", "dest" => p.label.clone()).increment(1);
        match stall {
            Stall::NoTarget => {
                if let Dest::Dc(dc) = &p.dest {
                    // Waiting clients learn now rather than at their deadline;
                    // the entries stay queued.
                    let reason = format!("no live node in {dc} to stream to");
                    self.hints.waiters().fail_dc(dc, &reason);
                }
            }
            Stall::Failed(e) => {
                tracing::debug!(dest = %p.label, error = %e, "stream stalled");
            }
        }
        self.idle(&p.dest, shutdown, p.backoff).await;
        p.backoff = (p.backoff * 2).min(Duration::from_secs(2));
    }

    /// Backs off after a stall; a new urgent entry (a client waiting) cuts
    /// the back-off short, so it never waits for the retry timer.
    async fn idle(&self, dest: &Dest, shutdown: &mut watch::Receiver<bool>, d: Duration) {
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = self.hints.notified(dest, Lane::Urgent) => {}
            _ = shutdown.changed() => {}
        }
    }

    /// [`Hints::load_page`], off the async threads.
    async fn load(
        &self,
        dest: &Dest,
        lane: Lane,
        from: Vec<u8>,
        skip: Vec<(Vec<u8>, Vec<u8>)>,
        limit: usize,
    ) -> Vec<Loaded> {
        let (hints, dest) = (self.hints.clone(), dest.clone());
        let res =
            tokio::task::spawn_blocking(move || hints.load_page(&dest, lane, from, skip, limit))
                .await;
        match res {
            Ok(Ok(page)) => page,
            _ => Vec::new(),
        }
    }

    /// Node hints older than the hint window are recorded for anti-entropy
    /// and removed; the rest are returned.
    async fn expire(&self, dest: &Dest, page: Vec<Loaded>) -> Vec<Loaded> {
        if !matches!(dest, Dest::Node(_)) {
            return page;
        }
        let window = self.hints.config().hint_window.as_millis() as u64;
        let now = now_ms();
        let (old, fresh): (Vec<_>, Vec<_>) = page
            .into_iter()
            .partition(|l| now.saturating_sub(l.created_ms) > window);
        if !old.is_empty() {
            let mut batch = WriteBatch::new();
            for l in &old {
                self.hints
                    .needs_repair(&l.entry.keyspace, &l.entry.key, dest, &mut batch);
                batch.delete_raw(Cf::Hints, &l.key);
            }
            let bytes = old.iter().map(|l| l.bytes).sum();
            if self.hints.engine().write(batch).is_ok() {
                self.hints
                    .dequeued(dest, Lane::Backlog, old.len() as u64, bytes);
            }
        }
        fresh
    }

    fn pick_target(&self, dest: &Dest, rr: &mut usize) -> Option<NodeIdx> {
        match dest {
            Dest::Node(id) => {
                let n = self.ring.node_by_id(id)?.idx;
                self.liveness.is_up(n).then_some(n)
            }
            Dest::Dc(dc) => {
                let live: Vec<NodeIdx> = self
                    .ring
                    .nodes()
                    .iter()
                    .filter(|n| &n.dc == dc && self.liveness.is_up(n.idx))
                    .map(|n| n.idx)
                    .collect();
                if live.is_empty() {
                    return None;
                }
                *rr = rr.wrapping_add(1);
                Some(live[*rr % live.len()])
            }
        }
    }

    async fn delete(&self, dest: &Dest, lane: Lane, done: &[Loaded]) {
        if done.is_empty() {
            return;
        }
        let mut batch = WriteBatch::new();
        for l in done {
            batch.delete_raw(Cf::Hints, &l.key);
        }
        let bytes: u64 = done.iter().map(|l| l.bytes).sum();
        let engine = self.hints.engine().clone();
        if let Ok(Ok(())) = tokio::task::spawn_blocking(move || engine.write(batch)).await {
            self.hints.dequeued(dest, lane, done.len() as u64, bytes);
        }
    }
}
