//! The receiving end of a hinted queue: applies a batch to the replicas of
//! each key in *this* datacenter (or to this node, for a node hint), hinting
//! locally for any replica that is down, and acknowledges only what is then
//! durable in this datacenter. Entries are applied concurrently (bounded);
//! order between entries does not matter because merges commute.

use super::Hints;
use crate::coordinator::Liveness;
use crate::proto::v1::internode::{ReplicaWriteRequest, StreamAck, StreamBatch, StreamEntry};
use crate::replica::Replica;
use crate::ring::Ring;
use crate::topology::NodeInfo;
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
    /// Applies a batch; `failed` lists entries that are not yet durable here.
    #[tracing::instrument(name = "hints.apply_batch", skip_all,
        fields(from = %batch.source_node, entries = batch.entries.len()))]
    pub async fn apply(&self, batch: StreamBatch) -> StreamAck {
        let n = batch.entries.len() as u64;
        let results: Vec<(u64, bool)> = futures::stream::iter(batch.entries)
            .map(|e| async move {
                let seq = e.seq;
                let Ok(_permit) = self.permits.acquire().await else {
                    return (seq, false);
                };
                (seq, self.apply_entry(e).await)
            })
            .buffer_unordered(PARALLEL)
            .collect()
            .await;
        let failed: Vec<u64> = results.iter().filter(|r| !r.1).map(|r| r.0).collect();
        let acked = results
            .iter()
            .filter(|r| r.1)
            .map(|r| r.0)
            .max()
            .unwrap_or(0);
        metrics::counter!("geokv_stream_applied_total", "from_dc" => batch.source_dc)
            .increment(n - failed.len() as u64);
        StreamAck {
            acked_seq: acked,
            failed,
        }
    }

    async fn apply_entry(&self, e: StreamEntry) -> bool {
        let span = tracing::info_span!("hints.apply_entry", keyspace = %e.keyspace, seq = e.seq);
        crate::telemetry::adopt_traceparent(&span, &e.traceparent);
        tracing::Instrument::instrument(self.apply_entry_inner(e), span).await
    }

    async fn apply_entry_inner(&self, e: StreamEntry) -> bool {
        let Ok(set) = SiblingSet::decode(&e.record) else {
            tracing::error!(keyspace = %e.keyspace, "undecodable record in stream; refused");
            return false;
        };
        if !e.target_node.is_empty() {
            if e.target_node != self.me.id {
                return false;
            }
            return self.apply_local(&e.keyspace, &e.key, set).await;
        }
        let Ok(replicas) = self.ring.replicas(&e.keyspace, &e.key) else {
            return false;
        };
        let mut ok = true;
        for &n in replicas.in_dc(&self.me.dc) {
            let done = if n == self.me.idx {
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
            if !done {
                ok &= self.hints.hint_node(n, &e.keyspace, &e.key, &set).is_ok();
            }
        }
        ok
    }

    async fn apply_local(&self, ks: &str, key: &[u8], set: SiblingSet) -> bool {
        let (ks, key) = (ks.to_string(), key.to_vec());
        self.replica
            .blocking(move |r| r.apply(&ks, &key, &set))
            .await
            .is_ok()
    }
}
