//! One datacenter-stream entry at this datacenter's replicas: applied at
//! every replica at once, acknowledged as soon as `need` of them applied it
//! (and this node, when a replica, answered), with the entry durable here
//! by then: a replica that failed gets a local hint, one still in flight
//! an intent (a hint deleted when its write succeeds: see `intent`), and
//! the rest finishes in the background. Should storing those hints fail,
//! it waits for every replica instead.
//!
//! Must not: decide the targets or the need (`receive`), or store a hint
//! or intent without the replica's write pass (the final sync must cover
//! what is acknowledged as durable).

use super::Receiver;
use crate::hints::intent::{self, Intent};
use crate::proto::v1::internode::StreamEntry;
use crate::replica::handle::{Handle, Local, Merge};
use crate::topology::{NodeIdx, NodeInfo};
use crate::version::SiblingSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Each replica's answer: whether it applied the entry.
type Answers = mpsc::UnboundedReceiver<(NodeInfo, bool)>;

/// Where the replicas of one entry stand while the receiver waits.
struct Tally {
    /// The replicas that have not answered yet.
    pending: Vec<NodeInfo>,
    /// The replicas that applied the entry.
    applied: usize,
    /// Every replica that failed has a durable hint here.
    hinted_all: bool,
}

impl Receiver {
    /// Applies the entry at every replica of `targets` at once and returns
    /// `(replicas that applied it, durable)` once `need` of them did (see
    /// the module doc).
    pub(super) async fn apply_to(
        &self,
        targets: Vec<NodeInfo>,
        need: usize,
        e: StreamEntry,
        set: SiblingSet,
    ) -> (u32, bool) {
        let (e, set) = (Arc::new(e), Arc::new(set));
        let mut answers = self.spawn_applies(&targets, &e, &set);
        let mut tally = Tally {
            pending: targets,
            applied: 0,
            hinted_all: true,
        };
        let stragglers = (self.until_durable(&mut answers, &mut tally, need, &e, &set)).await;
        // A replica whose queue overflowed got no intent (its key was
        // recorded for anti-entropy): it is covered all the same.
        if !stragglers.is_empty() || !tally.pending.is_empty() {
            tokio::spawn(settle(answers, stragglers));
        }
        (tally.applied as u32, tally.hinted_all)
    }

    /// Starts the apply at each of `targets`; their answers.
    fn spawn_applies(
        &self,
        targets: &[NodeInfo],
        e: &Arc<StreamEntry>,
        set: &Arc<SiblingSet>,
    ) -> Answers {
        let (tx, rx) = mpsc::unbounded_channel();
        for n in targets {
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
        rx
    }

    /// Takes answers until `need` replicas applied the entry, this node
    /// answered and the replicas still in flight have intents (returned);
    /// or until every replica answered (none returned).
    async fn until_durable(
        &self,
        answers: &mut Answers,
        tally: &mut Tally,
        need: usize,
        e: &StreamEntry,
        set: &SiblingSet,
    ) -> Vec<Intent> {
        while let Some((n, ok)) = answers.recv().await {
            tally.pending.retain(|m| m.id != n.id);
            if ok {
                tally.applied += 1;
            } else {
                tally.hinted_all &= self.hint_failed(&n, e, set).await;
            }
            let me_pending = tally.pending.iter().any(|m| m.id == self.me.id);
            if tally.applied >= need && !me_pending && !tally.pending.is_empty() {
                if let Some(stragglers) = self.intend(&tally.pending, e, set).await {
                    return stragglers;
                }
            }
        }
        Vec::new()
    }

    /// Hints replica `n`, which failed to apply the entry; whether the hint
    /// is durable.
    async fn hint_failed(&self, n: &NodeInfo, e: &StreamEntry, set: &SiblingSet) -> bool {
        if n.id == self.me.id {
            // A hint for ourselves would never be delivered: not
            // durable, the sender keeps the entry and resends it.
            return false;
        }
        // Stored only while the replica is open (the final sync must
        // cover what is acknowledged as durable).
        match self.replica.open() {
            Ok(_pass) => (self.hints.hint_node(&n.id, &e.keyspace, &e.key, set))
                .await
                .is_ok(),
            Err(_) => false,
        }
    }

    /// Intents for the replicas still in flight; `None` when they could
    /// not be stored (the caller waits for every replica instead).
    async fn intend(
        &self,
        pending: &[NodeInfo],
        e: &StreamEntry,
        set: &SiblingSet,
    ) -> Option<Vec<Intent>> {
        let targets: Vec<(NodeIdx, String)> =
            pending.iter().map(|m| (m.idx, m.id.clone())).collect();
        let intents = match self.replica.open() {
            Ok(_pass) => intent::intend_now(&self.hints, &targets, &e.keyspace, &e.key, set).await,
            Err(e) => Err(e),
        };
        match intents {
            Ok(i) => Some(i),
            Err(err) => {
                tracing::warn!(error = %err, "could not store intents; waiting for every replica");
                None
            }
        }
    }

    /// Applies `e` at replica `n` (this node's or a peer that is up);
    /// whether it was applied.
    async fn apply_at(&self, n: &NodeInfo, e: &StreamEntry, set: &SiblingSet) -> bool {
        let replica = Handle::at(
            n,
            Local {
                replica: &self.replica,
                cluster: &self.cluster,
            },
            &self.peers,
        );
        // A peer down, or up but refusing writes (review-tidy34 L4).
        let takes = |id: &str| self.liveness.is_up(id) && self.liveness.is_ready(id);
        if !replica.is_here() && !takes(&n.id) {
            return false;
        }
        // Only a peer is sent the encoding (this node's replica merges `set`).
        let record = match replica.is_here() {
            true => bytes::Bytes::new(),
            false => bytes::Bytes::copy_from_slice(&e.record),
        };
        let m = Merge {
            keyspace: &e.keyspace,
            key: &e.key,
            set,
            record: &record,
            // Not a planned client write: applied in any view.
            planned: None,
            repair: false,
        };
        // A stream entry is a client write of another datacenter (urgent or
        // not): batched per peer with this datacenter's client writes, as
        // the coordinator's fan-out is (issue 14; review of 4a3d0b2: sent
        // one call each, the remote datacenter's writes lost the batching).
        replica
            .merge_batched(m, Duration::from_secs(5))
            .await
            .is_ok()
    }
}

/// Settles the intents of the replicas that answer after the
/// acknowledgement: deleted once applied, an ordinary hint otherwise.
async fn settle(mut answers: Answers, mut stragglers: Vec<Intent>) {
    while let Some((n, ok)) = answers.recv().await {
        if let Some(at) = stragglers.iter().position(|i| i.target == n.idx) {
            let i = stragglers.swap_remove(at);
            if ok {
                i.done().await
            } else {
                i.failed()
            }
        }
    }
}

#[cfg(test)]
#[path = "fan_tests.rs"]
mod tests;
