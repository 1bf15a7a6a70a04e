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

use super::{intent, Hints};
use crate::membership::Liveness;
use crate::proto::v1::internode::{EntryAck, StreamAck, StreamBatch, StreamEntry};
use crate::replica::handle::{Handle, Merge};
use crate::replica::Replica;
use crate::topology::{NodeIdx, NodeInfo};
use crate::transport::Peers;
use crate::version::SiblingSet;
use crate::view::{Cluster, ClusterView};
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

    /// Applies the entry at every replica of `targets` at once and returns
    /// `(replicas that applied it, durable)` as soon as `need` of them did
    /// (and this node, when a replica, answered): a replica that failed gets
    /// a local hint, one still in flight an intent (a hint deleted when its
    /// write succeeds: see `intent`), so the entry is durable here (every
    /// replica applied it or has a durable hint) when acknowledged, and the
    /// rest finishes in the background. Should storing those hints fail, it
    /// waits for every replica instead.
    async fn apply_to(
        &self,
        targets: Vec<NodeInfo>,
        need: usize,
        e: StreamEntry,
        set: SiblingSet,
    ) -> (u32, bool) {
        let (e, set) = (Arc::new(e), Arc::new(set));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for n in &targets {
            let (r, e, set, tx) = (self.clone(), e.clone(), set.clone(), tx.clone());
            let n = n.clone();
            let span = tracing::Span::current();
            tokio::spawn(tracing::Instrument::instrument(
                async move {
                    let ok = r.apply_at(&n, &e, &set).await;
                    let _ = tx.send((n, ok));
                },
                span,
            ));
        }
        drop(tx);
        let mut pending: Vec<NodeInfo> = targets;
        let (mut applied, mut hinted_all) = (0usize, true);
        let mut stragglers = Vec::new();
        while let Some((n, ok)) = rx.recv().await {
            pending.retain(|m| m.id != n.id);
            if ok {
                applied += 1;
            } else if n.id == self.me.id {
                // A hint for ourselves would never be delivered: not
                // durable, the sender keeps the entry and resends it.
                hinted_all = false;
            } else {
                // Stored only while the replica is open (the final sync
                // must cover what is acknowledged as durable).
                hinted_all &= match self.replica.open() {
                    Ok(_pass) => (self.hints.hint_node(&n.id, &e.keyspace, &e.key, &set))
                        .await
                        .is_ok(),
                    Err(_) => false,
                };
            }
            let me_pending = pending.iter().any(|m| m.id == self.me.id);
            if applied >= need && !me_pending && !pending.is_empty() {
                let targets: Vec<(NodeIdx, String)> =
                    pending.iter().map(|m| (m.idx, m.id.clone())).collect();
                let intents = match self.replica.open() {
                    Ok(_pass) => {
                        intent::intend_now(&self.hints, &targets, &e.keyspace, &e.key, &set).await
                    }
                    Err(e) => Err(e),
                };
                match intents {
                    Ok(i) => {
                        stragglers = i;
                        break;
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "could not store intents; waiting for every replica");
                    }
                }
            }
        }
        // A replica whose queue overflowed got no intent (its key was
        // recorded for anti-entropy): it is covered all the same.
        if !stragglers.is_empty() || !pending.is_empty() {
            tokio::spawn(async move {
                while let Some((n, ok)) = rx.recv().await {
                    if let Some(at) = stragglers.iter().position(|i| i.target == n.idx) {
                        let i = stragglers.swap_remove(at);
                        if ok {
                            i.done().await
                        } else {
                            i.failed()
                        }
                    }
                }
            });
        }
        (applied as u32, hinted_all)
    }

    /// Applies `e` at replica `n` (this node's or a peer that is up);
    /// whether it was applied.
    async fn apply_at(&self, n: &NodeInfo, e: &StreamEntry, set: &SiblingSet) -> bool {
        let replica = Handle::at(n, (&self.replica, &self.cluster), &self.peers);
        if !replica.is_here() && !self.liveness.is_up(&n.id) {
            return false;
        }
        let m = Merge {
            keyspace: &e.keyspace,
            key: &e.key,
            set,
            record: &e.record,
            // Not a planned client write: applied in any view.
            planned: None,
        };
        replica.merge(m, Duration::from_secs(5)).await.is_ok()
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

/// Applies node hint `e` (whose record is `set`) here if [`node_hint`]
/// allows it, deciding and applying under one view (installs wait:
/// [`Cluster::with_current`]), so a view that moves the key away cannot be
/// installed between the check and the apply.
async fn node_hint_apply(
    cluster: &Cluster,
    replica: &Arc<Replica>,
    me: &str,
    e: StreamEntry,
    set: SiblingSet,
) -> EntryAck {
    let seq = e.seq;
    let (cluster, me) = (cluster.clone(), me.to_string());
    let decided = replica
        .blocking(move |r| {
            Ok(cluster.with_current(|view| {
                let mine = mine(view, &e.keyspace, &e.key);
                let d = node_hint(&e.target_node, &me, mine);
                let applied = d == NodeHint::Apply && r.apply(&e.keyspace, &e.key, &set).is_ok();
                (d, e.target_node, applied, view.version())
            }))
        })
        .await;
    match decided {
        Ok((NodeHint::Apply, _, ok, _)) => EntryAck {
            seq,
            replicas: ok as u32,
            durable: ok,
            ..not_applied(seq)
        },
        Ok((NodeHint::Refuse, target, _, _)) => {
            tracing::error!(%target, "hint for another node; refused");
            refused(seq)
        }
        Ok((NodeHint::Keep(why), _, _, version)) => {
            tracing::debug!(
                why = why.label(),
                version,
                "node hint not applied; left with the sender"
            );
            // The sender skips just this entry, and catches up with this
            // view when its own is older (`schedule::park`).
            EntryAck {
                elsewhere_layout: Some(version),
                ..not_applied(seq)
            }
        }
        Err(_) => not_applied(seq),
    }
}

/// What this node is to a key, in its own view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mine {
    /// An owner or a pending replica of the key.
    Replica,
    /// A member, but neither: the key is placed elsewhere (or its keyspace
    /// is unknown here yet).
    Elsewhere,
    /// Not a member (left or removed).
    NotMember,
}

/// What this node (`view`'s) is to `keyspace`/`key` in `view`.
fn mine(view: &ClusterView, keyspace: &str, key: &[u8]) -> Mine {
    let Some(me) = view.me() else {
        return Mine::NotMember;
    };
    let token = crate::ring::token_of(key);
    let Ok(owners) = view.ring.replicas_for_token(keyspace, token) else {
        return Mine::Elsewhere;
    };
    let pending = view.pending.for_token(keyspace, token);
    if owners.contains(me.idx) || pending.iter().any(|d| d.nodes.contains(&me.idx)) {
        Mine::Replica
    } else {
        Mine::Elsewhere
    }
}

/// Whether this node (`view`'s) replicates `keyspace`/`key` in `view`
/// (an owner or a pending replica): where a node hint, or a copy of one
/// redirected here (`moving::copy`), may be applied.
pub(super) fn replicates(view: &ClusterView, keyspace: &str, key: &[u8]) -> bool {
    mine(view, keyspace, key) == Mine::Replica
}

/// What a node does with a hint addressed to a node.
#[derive(Debug, PartialEq, Eq)]
enum NodeHint {
    Apply,
    /// Addressed to another node: the sender deletes it.
    Refuse,
    /// Addressed to this node, which does not replicate the key (in its
    /// own view): not applied, so the sender keeps it and, once its view
    /// agrees, redirects it to the key's replicas (`hints::orphans`).
    Keep(Mine),
}

impl Mine {
    fn label(self) -> &'static str {
        match self {
            Mine::Replica => "replica",
            Mine::Elsewhere => "the key is placed elsewhere in this node's view",
            Mine::NotMember => "this node is no longer a member",
        }
    }
}

/// The decision for a hint addressed to `target`, received by `me`, which
/// is `mine` to its key.
///
/// - a node that has left (`NotMember`): acking it would let a leaver
///   that is about to exit swallow the write (review of the leave drain,
///   M5);
/// - a member that no longer replicates the key (`Elsewhere`): the hint
///   was planned on an older view (a first fan-out's intent to a replica
///   that then refused the write as stale), and applying it would put the
///   record back on an old owner that may have cleaned the range up, where
///   nothing would ever delete it again (review of 762f9e4, Medium).
fn node_hint(target: &str, me: &str, mine: Mine) -> NodeHint {
    if target != me {
        NodeHint::Refuse
    } else if mine == Mine::Replica {
        NodeHint::Apply
    } else {
        NodeHint::Keep(mine)
    }
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
