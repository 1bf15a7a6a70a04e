//! The receiving end of a hinted queue: applies a batch to the replicas of
//! each key in *this* datacenter (or to this node, for a node hint), hinting
//! locally for any replica that is down, and acknowledges only what is then
//! durable in this datacenter, saying per entry how many replicas applied it
//! (what a coordinator waiting at EACH_QUORUM, QUORUM or ALL counts). Entries
//! are applied concurrently (bounded); order between entries does not matter
//! because merges commute. Backlog batches share a node-wide bound
//! ([`REPLAY_PERMITS`]); urgent batches, which a client waits on, skip it.

use super::Hints;
use crate::coordinator::Liveness;
use crate::proto::v1::internode::{
    EntryAck, ReplicaWriteRequest, StreamAck, StreamBatch, StreamEntry,
};
use crate::replica::Replica;
use crate::ring::Ring;
use crate::topology::{NodeIdx, NodeInfo};
use crate::transport::Peers;
use crate::version::SiblingSet;
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;

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
    pub ring: Arc<Ring>,
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
            if e.target_node != self.me.id {
                tracing::error!(target = %e.target_node, "hint for another node; refused");
                return refused(seq);
            }
            let ok = self.apply_local(&e.keyspace, &e.key, set).await;
            return EntryAck {
                seq,
                replicas: ok as u32,
                durable: ok,
                refused: false,
            };
        }
        let Ok(replicas) = self.ring.replicas(&e.keyspace, &e.key) else {
            tracing::error!(keyspace = %e.keyspace, "stream entry for an unknown keyspace; refused");
            return refused(seq);
        };
        // Every replica of the key in this datacenter at once; one that is
        // down or fails gets a local hint instead.
        let outcomes = futures::future::join_all(
            replicas
                .in_dc(&self.me.dc)
                .iter()
                .map(|&n| self.apply_at(n, &e, &set)),
        )
        .await;
        EntryAck {
            seq,
            replicas: outcomes.iter().filter(|o| o.0).count() as u32,
            durable: outcomes.iter().all(|o| o.0 || o.1),
            refused: false,
        }
    }

    /// Applies `e` at replica `n`: `(applied, hinted instead)`.
    async fn apply_at(&self, n: NodeIdx, e: &StreamEntry, set: &SiblingSet) -> (bool, bool) {
        let applied = if n == self.me.idx {
            self.apply_local(&e.keyspace, &e.key, set.clone()).await
        } else if self.liveness.is_up(n) {
            let msg = ReplicaWriteRequest {
                keyspace: e.keyspace.clone(),
                key: e.key.clone(),
                record: e.record.clone(),
                coordinator: self.me.id.clone(),
            };
            self.peers
                .replica_write(n, msg, Duration::from_secs(5))
                .await
                .is_ok()
        } else {
            false
        };
        if applied {
            return (true, false);
        }
        if n == self.me.idx {
            // A hint for ourselves would never be delivered: not durable,
            // the sender keeps the entry and resends it.
            return (false, false);
        }
        (
            false,
            self.hints.hint_node(n, &e.keyspace, &e.key, set).is_ok(),
        )
    }

    async fn apply_local(&self, ks: &str, key: &[u8], set: SiblingSet) -> bool {
        let (ks, key) = (ks.to_string(), key.to_vec());
        self.replica
            .blocking(move |r| r.apply(&ks, &key, &set))
            .await
            .is_ok()
    }
}

fn not_applied(seq: u64) -> EntryAck {
    EntryAck {
        seq,
        replicas: 0,
        durable: false,
        refused: false,
    }
}

fn refused(seq: u64) -> EntryAck {
    EntryAck {
        refused: true,
        ..not_applied(seq)
    }
}
