//! Drains each hinted queue in order: one batch in flight per destination,
//! sized adaptively (AIMD: grow while the destination acknowledges quickly,
//! halve on failure or slowness), so replay runs as fast as the destination
//! accepts rather than at a fixed byte rate, and backs off when it struggles.
//!
//! Must not: decide what is enqueued; it only sends, deletes what was
//! acknowledged, and records expired hints for anti-entropy.

use super::queue::{decode_entry, Dest};
use super::{now_ms, Hints};
use crate::coordinator::Liveness;
use crate::engine::{Cf, WriteBatch};
use crate::proto::v1::internode::{StreamBatch, StreamEntry};
use crate::ring::Ring;
use crate::topology::{NodeIdx, NodeInfo};
use crate::transport::{OutboundStream, Peers};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// What a delivery task needs.
#[derive(Clone)]
pub struct Delivery {
    pub hints: Arc<Hints>,
    pub peers: Arc<Peers>,
    pub ring: Arc<Ring>,
    pub liveness: Arc<dyn Liveness>,
    pub me: NodeInfo,
}

/// Target latency of one batch; batches shrink when slower.
const SLOW_BATCH: Duration = Duration::from_secs(2);
const MIN_BATCH: usize = 16;
/// Wait after a wake-up so concurrent writes share one batch (and one RPC).
const LINGER: Duration = Duration::from_millis(2);

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
        let mut limit = MIN_BATCH * 4;
        let mut backoff = Duration::from_millis(50);
        let mut rr = 0usize;
        // The open stream of this queue; reopened (possibly to another node
        // of the destination datacenter) after any error.
        let mut stream: Option<OutboundStream> = None;
        let label = dest.label();
        loop {
            if *shutdown.borrow() {
                return;
            }
            let page = self.load(&dest, limit).await;
            if page.is_empty() {
                metrics::gauge!("geokv_hint_oldest_age_seconds", "dest" => label.clone()).set(0.0);
                tokio::select! {
                    _ = self.hints.notified(&dest) => {
                        // Let concurrent writes join this batch.
                        tokio::time::sleep(LINGER).await;
                    }
                    _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            let oldest = page.first().map(|p| p.1).unwrap_or(0);
            let age = now_ms().saturating_sub(oldest) as f64 / 1000.0;
            metrics::gauge!("geokv_hint_oldest_age_seconds", "dest" => label.clone()).set(age);
            let page = self.expire(&dest, page).await;
            if page.is_empty() {
                continue;
            }
            // Stay on the open stream while its node is up.
            let current = stream
                .as_ref()
                .map(|s| s.to)
                .filter(|n| self.liveness.is_up(*n));
            let Some(target) = current.or_else(|| self.pick_target(&dest, &mut rr)) else {
                stream = None;
                self.idle(&mut shutdown, backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            };
            if current.is_none() {
                stream = None;
            }
            let started = Instant::now();
            match self.send(&mut stream, target, &page).await {
                Ok(()) => {
                    backoff = Duration::from_millis(50);
                    let took = started.elapsed();
                    limit = if took < SLOW_BATCH / 4 {
                        (limit * 2).min(self.hints.config().max_batch_entries)
                    } else if took > SLOW_BATCH {
                        (limit / 2).max(MIN_BATCH)
                    } else {
                        limit
                    };
                    let n = page.len() as u64;
                    metrics::counter!("geokv_hint_sent_total", "dest" => label.clone())
                        .increment(n);
                    self.delete(&dest, &page).await;
                }
                Err(e) => {
                    stream = None;
                    tracing::debug!(dest = %label, error = %e, "batch not delivered");
                    metrics::counter!("geokv_hint_send_failures_total", "dest" => label.clone())
                        .increment(1);
                    limit = (limit / 2).max(MIN_BATCH);
                    self.idle(&mut shutdown, backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    async fn idle(&self, shutdown: &mut watch::Receiver<bool>, d: Duration) {
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = shutdown.changed() => {}
        }
    }

    /// Reads up to `limit` entries (and at most the byte bound) of a queue.
    async fn load(&self, dest: &Dest, limit: usize) -> Vec<(Vec<u8>, u64, StreamEntry, u64)> {
        let engine = self.hints.engine().clone();
        let (from, to) = (dest.prefix(), dest.prefix_end());
        let max_bytes = self.hints.config().max_batch_bytes;
        let res =
            tokio::task::spawn_blocking(move || engine.scan_raw(Cf::Hints, &from, &to, limit))
                .await;
        let Ok(Ok(rows)) = res else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(rows.len());
        let mut bytes = 0usize;
        for (k, v) in rows {
            bytes += v.len();
            if bytes > max_bytes && !out.is_empty() {
                break;
            }
            match decode_entry(&v) {
                Some((created, e)) => out.push((k, created, e, v.len() as u64)),
                None => tracing::error!(?k, "corrupt hint entry skipped (kept on disk)"),
            }
        }
        out
    }

    /// Node hints older than the hint window are recorded for anti-entropy
    /// and removed; the rest are returned.
    async fn expire(
        &self,
        dest: &Dest,
        page: Vec<(Vec<u8>, u64, StreamEntry, u64)>,
    ) -> Vec<(Vec<u8>, u64, StreamEntry, u64)> {
        if !matches!(dest, Dest::Node(_)) {
            return page;
        }
        let window = self.hints.config().hint_window.as_millis() as u64;
        let now = now_ms();
        let (old, fresh): (Vec<_>, Vec<_>) = page
            .into_iter()
            .partition(|p| now.saturating_sub(p.1) > window);
        if !old.is_empty() {
            let mut batch = WriteBatch::new();
            for (k, _, e, _) in &old {
                self.hints
                    .needs_repair(&e.keyspace, &e.key, dest, &mut batch);
                batch.delete_raw(Cf::Hints, k);
            }
            let bytes = old.iter().map(|p| p.3).sum();
            if self.hints.engine().write(batch).is_ok() {
                self.hints.dequeued(dest, old.len() as u64, bytes);
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

    #[tracing::instrument(name = "hints.send_batch", skip_all, fields(to = target.0, entries = page.len()))]
    async fn send(
        &self,
        stream: &mut Option<OutboundStream>,
        target: NodeIdx,
        page: &[(Vec<u8>, u64, StreamEntry, u64)],
    ) -> Result<(), String> {
        let batch = StreamBatch {
            source_node: self.me.id.clone(),
            source_dc: self.me.dc.clone(),
            entries: page.iter().map(|p| p.2.clone()).collect(),
        };
        if stream.is_none() {
            let opened = self
                .peers
                .open_stream(target, Duration::from_secs(5))
                .await
                .map_err(|e| e.to_string())?;
            *stream = Some(opened);
        }
        let open = stream.as_mut().expect("opened above");
        let ack = self
            .peers
            .stream_send(open, batch, Duration::from_secs(10))
            .await
            .map_err(|e| e.to_string())?;
        if !ack.failed.is_empty() {
            return Err(format!(
                "{} entries failed at the destination",
                ack.failed.len()
            ));
        }
        Ok(())
    }

    async fn delete(&self, dest: &Dest, page: &[(Vec<u8>, u64, StreamEntry, u64)]) {
        let mut batch = WriteBatch::new();
        for (k, ..) in page {
            batch.delete_raw(Cf::Hints, k);
        }
        let bytes: u64 = page.iter().map(|p| p.3).sum();
        let engine = self.hints.engine().clone();
        if let Ok(Ok(())) = tokio::task::spawn_blocking(move || engine.write(batch)).await {
            self.hints.dequeued(dest, page.len() as u64, bytes);
        }
    }
}
