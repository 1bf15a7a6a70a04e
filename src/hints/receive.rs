//! The receiving end of a hinted queue: applies a batch to the replicas of
//! each key in *this* datacenter (or to this node, for a node hint), hinting
//! locally for any replica that is down, and acknowledges only what is then
//! durable in this datacenter, saying per entry how many replicas applied it
//! (what a coordinator waiting at EACH_QUORUM, QUORUM or ALL counts).
//!
//! An urgent entry names how many replicas here its level needs
//! (`need_acks`): it is acknowledged as soon as that many applied it, so one
//! slow or paused replica does not hold the client up. "Durable" still means
//! every replica here has it or a durable hint for it: the replicas still in
//! flight get an intent (a hint deleted once their write succeeds) before
//! the acknowledgement, and finish in the background. Entries
//! are applied concurrently (bounded); order between entries does not matter
//! because merges commute. Backlog batches share a node-wide bound
//! ([`REPLAY_PERMITS`]); urgent batches, which a client waits on, skip it.
//!
//! Files: this one takes a batch and decides each entry's targets and
//! need; `fan.rs` applies an entry at the replicas and waits for the need;
//! `for_node.rs` decides and applies hints addressed to this node.
//!
//! Must not: decide what a sender enqueues, or acknowledge as durable an
//! entry a replica here neither applied nor has a durable hint for.

mod fan;
mod for_node;

use super::Hints;
use crate::membership::Liveness;
use crate::proto::v1::internode::{EntryAck, StreamAck, StreamBatch, StreamEntry};
use crate::replica::Replica;
use crate::topology::NodeInfo;
use crate::transport::Peers;
use crate::version::SiblingSet;
use crate::view::{Cluster, ClusterView};
use for_node::node_hint_apply;
pub(super) use for_node::replicates;
use futures::StreamExt;
use std::sync::Arc;

/// Entries of one batch applied at once.
const PARALLEL: usize = 64;
/// Entries applied at once across every incoming batch of this node, so
/// replay after an outage (several senders at once) cannot crowd out
/// foreground requests: ScyllaDB's replay storms are what this avoids.
pub const REPLAY_PERMITS: usize = 32;

/// What the receiving side needs.
#[derive(Clone)]
pub struct Receiver {
    pub hints: Arc<Hints>,
    pub peers: Arc<Peers>,
    pub cluster: Cluster,
    pub replica: Arc<Replica>,
    pub liveness: Arc<dyn Liveness>,
    pub me: NodeInfo,
    /// Shared bound on concurrent entry applies ([`REPLAY_PERMITS`]).
    pub permits: Arc<tokio::sync::Semaphore>,
}

impl Receiver {
    /// Applies a batch; the acknowledgement has one [`EntryAck`] per entry,
    /// in the batch's order.
    #[tracing::instrument(name = "hints.apply_batch", skip_all,
        fields(from = %batch.source_node, entries = batch.entries.len(), urgent = batch.urgent))]
    pub async fn apply(&self, batch: StreamBatch) -> StreamAck {
        if !batch.adopt_for.is_empty() {
            // Meant for the `Adopt` call: never applied as a delivery.
            return super::adopt::refuse(batch);
        }
        if self.replica.is_closed() {
            // Shutting down: nothing applied, the sender keeps every entry.
            return unapplied(batch);
        }
        let urgent = batch.urgent;
        let mut results: Vec<(usize, EntryAck)> =
            futures::stream::iter(batch.entries.into_iter().enumerate())
                .map(|(i, e)| async move {
                    let seq = e.seq;
                    // Backlog replay is paced node-wide; a waiting client is not.
                    let _permit = if urgent {
                        None
                    } else {
                        match self.permits.acquire().await {
                            Ok(p) => Some(p),
                            Err(_) => return (i, not_applied(seq)),
                        }
                    };
                    (i, self.apply_entry(e).await)
                })
                .buffer_unordered(PARALLEL)
                .collect()
                .await;
        results.sort_unstable_by_key(|r| r.0);
        let durable = results.iter().filter(|r| r.1.durable).count() as u64;
        let lane = if urgent { "urgent" } else { "backlog" };
        metrics::counter!("geokv_stream_applied_total", "from_dc" => batch.source_dc, "lane" => lane)
            .increment(durable);
        StreamAck {
            batch_id: batch.batch_id,
            entries: results.into_iter().map(|r| r.1).collect(),
        }
    }

    /// Adopts a batch of a node that has left (the `Adopt` call; see
    /// `adopt`): queued here for its destination, not applied.
    /// Refused, nothing adopted, once this node's replica is closing.
    pub async fn adopt(&self, batch: StreamBatch) -> StreamAck {
        let Ok(_pass) = self.replica.open() else {
            return unapplied(batch);
        };
        super::adopt::adopt(&self.hints, &self.me.id, &self.me.dc, batch).await
    }

    async fn apply_entry(&self, e: StreamEntry) -> EntryAck {
        let span = tracing::info_span!("hints.apply_entry", keyspace = %e.keyspace, seq = e.seq);
        crate::telemetry::adopt_traceparent(&span, &e.traceparent);
        tracing::Instrument::instrument(self.apply_entry_inner(e), span).await
    }

    async fn apply_entry_inner(&self, e: StreamEntry) -> EntryAck {
        let seq = e.seq;
        let Ok(set) = SiblingSet::decode(&e.record) else {
            tracing::error!(keyspace = %e.keyspace, "undecodable record in stream; refused");
            return refused(seq);
        };
        if !e.target_node.is_empty() {
            return node_hint_apply(&self.cluster, &self.replica, &self.me.id, e, set).await;
        }
        let view = self.cluster.current();
        if view.has_left() {
            // A node that has left takes no datacenter-stream entry: the
            // copies it would count would leave with it (review M3 of
            // stop 20). The sender keeps the entry for another target.
            return not_applied(seq);
        }
        let Some(targets) = self.targets(&view, &e) else {
            tracing::error!(keyspace = %e.keyspace, "stream entry for an unknown keyspace; refused");
            return refused(seq);
        };
        // The coordinator's need counts the pending replicas of this
        // datacenter it knew of (blockFor + pending); one it did not know
        // of (this node is on a newer view) is added (M3).
        let mine = self.pending_here(&view, &e);
        let need = need(e.need_acks, e.coordinator_pending, mine, targets.len());
        let (replicas, durable) = self.apply_to(targets, need, e, set).await;
        EntryAck {
            seq,
            replicas,
            durable,
            ..not_applied(seq)
        }
    }

    /// This datacenter's replicas of the entry's key in `view`: the current
    /// owners, then the pending replicas of a movement in progress. `None`
    /// for an unknown keyspace.
    fn targets(&self, view: &ClusterView, e: &StreamEntry) -> Option<Vec<NodeInfo>> {
        let token = crate::ring::token_of(&e.key);
        let owners = view.ring.replicas_for_token(&e.keyspace, token).ok()?;
        let mut out: Vec<NodeInfo> = owners
            .in_dc(&self.me.dc)
            .iter()
            .map(|&n| view.ring.node(n).clone())
            .collect();
        for d in view.pending.for_token(&e.keyspace, token) {
            if d.dc == self.me.dc {
                out.extend(d.nodes.iter().map(|&n| view.ring.node(n).clone()));
            }
        }
        Some(out)
    }

    /// The pending replicas of the entry's key in this datacenter, in `view`.
    fn pending_here(&self, view: &ClusterView, e: &StreamEntry) -> u32 {
        let token = crate::ring::token_of(&e.key);
        (view.pending.for_token(&e.keyspace, token).iter())
            .filter(|d| d.dc == self.me.dc)
            .map(|d| d.nodes.len() as u32)
            .sum()
    }
}

/// How many of this datacenter's `targets` replicas must apply an entry
/// before it is acknowledged: all for a backlog entry (`need_acks` 0);
/// otherwise the coordinator's need, plus the pending replicas here it did
/// not count (`mine` beyond `theirs`; none when it sent no count), capped
/// at the targets.
fn need(need_acks: u32, theirs: Option<u32>, mine: u32, targets: usize) -> usize {
    if need_acks == 0 {
        return targets;
    }
    let extra = theirs.map_or(0, |t| mine.saturating_sub(t));
    ((need_acks + extra) as usize).min(targets)
}

fn not_applied(seq: u64) -> EntryAck {
    EntryAck {
        seq,
        replicas: 0,
        durable: false,
        refused: false,
        elsewhere_layout: None,
    }
}

/// Every entry of `batch` not applied (kept by its sender).
fn unapplied(batch: StreamBatch) -> StreamAck {
    StreamAck {
        batch_id: batch.batch_id,
        entries: batch.entries.iter().map(|e| not_applied(e.seq)).collect(),
    }
}

fn refused(seq: u64) -> EntryAck {
    EntryAck {
        refused: true,
        ..not_applied(seq)
    }
}

#[cfg(test)]
#[path = "receive/tests.rs"]
mod need_tests;
