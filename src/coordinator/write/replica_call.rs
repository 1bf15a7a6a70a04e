//! One replica call of a client write's fan-out (`fan_out.rs`): the
//! write to one replica of our datacenter, then its answer to the gather,
//! and the intent it settles or the hint it stores.
//!
//! Must not: choose the replicas, count acknowledgements (the gather
//! does), or retry.

use super::{Shared, StaleSlot};
use crate::coordinator::gather::Answer;
use crate::coordinator::Coordinator;
use crate::hints::intent::Intent;
use crate::replica::handle::{Handle, HandleError};
use crate::topology::{NodeIdx, NodeInfo};
use futures::future::BoxFuture;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::Instrument as _;

/// One replica call of a fan-out: replica `n` (`peer`), the hint committed
/// for it with the write, and what the fan-out's calls share.
pub(super) struct ReplicaCall<'a> {
    pub(super) n: NodeIdx,
    pub(super) peer: &'a NodeInfo,
    pub(super) intent: Option<Intent>,
    pub(super) shared: Arc<Shared>,
    pub(super) stale: StaleSlot,
}

impl Coordinator {
    /// One replica call: the write, then its answer, intent settle or hint.
    pub(super) fn replica_write(
        &self,
        call: ReplicaCall<'_>,
        deadline: Instant,
        tx: mpsc::Sender<Answer<()>>,
    ) -> BoxFuture<'static, ()> {
        let ReplicaCall {
            n,
            peer,
            intent,
            shared,
            stale,
        } = call;
        let replica = Handle::at(peer, self.local(), &self.peers);
        let peer = peer.clone();
        let hints = self.hints.clone();
        let timeout = deadline.saturating_duration_since(Instant::now());
        let span = tracing::Span::current();
        Box::pin(tracing::Instrument::instrument(
            async move {
                let s = &*shared;
                let (ks, key) = (&s.request.keyspace, &s.request.key);
                let (record, dc) = (&s.record, &s.dc);
                let res = replica.merge_shared(s.merge(), &s.request, timeout).await;
                if let Some(version) = res.as_ref().err().and_then(HandleError::stale_view) {
                    stale.lock().get_or_insert((peer.clone(), version));
                }
                match (&res, intent) {
                    // The acknowledgement does not wait on the cleanup, nor
                    // does the rest of the fan-out: the intent's delete is
                    // a local write that a RocksDB stall would hold, with
                    // this whole task, past the client's deadline (review
                    // M1 of 6b69e3c), so it settles in a task of its own.
                    (Ok(_), Some(i)) => {
                        let _ = tx.send(Answer::Replica(n, dc.clone(), Ok(()))).await;
                        tokio::spawn(i.done().in_current_span());
                        return;
                    }
                    (Ok(_), None) => {}
                    // The hint committed with the update stays, to be delivered.
                    (Err(_), Some(i)) => {
                        i.failed();
                        let _ = tx.send(Answer::Hint).await;
                    }
                    // A replica that refused as stale (its newer view places
                    // the key elsewhere, or adds a pending replica we missed)
                    // gets no node hint: the retry on that view sends the
                    // same record to every replica of it, this one included
                    // if it still replicates the key, and a hint (delivered
                    // unchecked) could put the record back on a node that
                    // cleaned it up. Only retry fan-outs reach this arm: a
                    // first fan-out's peers have intents (the arm above),
                    // which their receiver applies only for a key it
                    // replicates in its own view (`hints::receive`).
                    (Err(e), None) if e.stale_view().is_some() => {}
                    // A local replica that failed gets a hint.
                    (Err(e), None) => match hints.hint_node(&peer.id, ks, key, record).await {
                        Ok(()) => {
                            let _ = tx.send(Answer::Hint).await;
                        }
                        Err(h) => tracing::error!(error = %h, "could not store hint after {e}"),
                    },
                }
                let res = res.map(|_| ());
                let _ = tx.send(Answer::Replica(n, dc.clone(), res)).await;
            },
            span,
        ))
    }
}
