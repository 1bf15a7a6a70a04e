//! Replica writes to a peer through its batching [`Lane`] (issue 14): one
//! `ReplicaBatch` call carries the writes that queued while the previous
//! call was in flight, each entry with its own deadline, trace context and
//! result. Each result maps to the [`TransportError`] a single
//! `ReplicaWrite` would have given (through the same status mapping);
//! a batch call that fails as a whole leaves every entry in it **maybe
//! applied** (never "not applied"), unless it was provably never sent. A
//! peer answering UNIMPLEMENTED (a node from before this call) is sent
//! single `ReplicaWrite`s from then on.
//!
//! Must not: retry an entry that may have been applied, or decide what a
//! failure means for a request (the coordinator does).

use super::batch::Limits;
use super::error::status_error;
use super::lane::{CallFn, Lane, Settled};
use super::{PeerVerdict, Peers, TransportError};
use crate::proto::v1::internode::{
    ReplicaBatchEntry, ReplicaBatchRequest, ReplicaBatchResult, ReplicaWriteRequest,
};
use crate::topology::NodeInfo;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::time::Instant;

/// Whether a peer serves `ReplicaBatch`: not known yet, yes, no.
const UNKNOWN: u8 = 0;
const BATCHES: u8 = 1;
const SINGLE: u8 = 2;

/// One peer's lane of replica writes.
pub(super) struct WriteLane {
    pub(super) addr: SocketAddr,
    lane: Lane<ReplicaBatchEntry, Result<(), TransportError>>,
    support: Arc<AtomicU8>,
}

impl Peers {
    /// Merges a record into `to`'s copy of the key (as
    /// [`Peers::replica_write`]), batched with the other writes to `to`
    /// that queue while a call to it is in flight.
    pub async fn replica_write_batched(
        self: &Arc<Self>,
        to: &NodeInfo,
        req: ReplicaWriteRequest,
        timeout: Duration,
    ) -> Result<(), TransportError> {
        let lane = self.lane(to);
        if lane.support.load(Ordering::Relaxed) == SINGLE {
            return self.replica_write(to, req, timeout).await;
        }
        let bytes = req.record.len() + req.key.len() + 64;
        let entry = ReplicaBatchEntry {
            write: Some(req),
            timeout_ms: 0,
            traceparent: crate::telemetry::current_traceparent(),
        };
        let timed_out = || TransportError::Timeout {
            peer: to.id.clone(),
            ms: timeout.as_millis() as u64,
        };
        let deadline = Instant::now() + timeout;
        match tokio::time::timeout(timeout, lane.lane.submit(entry, bytes, deadline)).await {
            Ok(Settled::Answered(r)) => r,
            // Expired in the queue: never sent, but the deadline is gone
            // either way; a timeout says "maybe applied", which is safe.
            Ok(Settled::Expired | Settled::Lost) | Err(_) => Err(timed_out()),
        }
    }

    /// `to`'s lane, made on first use (or again when its address changed).
    fn lane(self: &Arc<Self>, to: &NodeInfo) -> Arc<WriteLane> {
        let mut lanes = self.lanes.lock();
        if let Some(l) = lanes.get(&to.id) {
            if l.addr == to.peer_address {
                return l.clone();
            }
        }
        let support = Arc::new(AtomicU8::new(UNKNOWN));
        let call = batch_call(Arc::downgrade(self), to.clone(), support.clone());
        let lane = Arc::new(WriteLane {
            addr: to.peer_address,
            lane: Lane::spawn(Limits::default(), call),
            support,
        });
        lanes.insert(to.id.clone(), lane.clone());
        lane
    }

    /// Sends one batch and maps its answer to one result per entry.
    async fn send_batch(
        &self,
        to: &NodeInfo,
        items: Vec<(ReplicaBatchEntry, Instant)>,
        support: &AtomicU8,
    ) -> Vec<Result<(), TransportError>> {
        let now = Instant::now();
        let n = items.len();
        let last = items.iter().map(|(_, d)| *d).max().unwrap_or(now);
        let timeout = last
            .saturating_duration_since(now)
            .max(Duration::from_millis(1));
        let entries: Vec<ReplicaBatchEntry> = (items.into_iter())
            .map(|(mut e, d)| {
                let left = d.saturating_duration_since(now).as_millis();
                e.timeout_ms = u32::try_from(left).unwrap_or(u32::MAX).max(1);
                e
            })
            .collect();
        // Kept for a resend as single writes until the peer is known to
        // serve batches.
        let unknown = support.load(Ordering::Relaxed) == UNKNOWN;
        let resend = unknown.then(|| entries.clone());
        metrics::histogram!("geokv_internode_batch_entries").record(n as f64);
        let ms = timeout.as_millis() as u64;
        let req = ReplicaBatchRequest { entries };
        let res = (self.call_with(to, req, timeout, false, |mut c, r| async move {
            c.replica_batch(r).await
        }))
        .await;
        match res {
            Ok(r) if r.results.len() == n => {
                support.store(BATCHES, Ordering::Relaxed);
                (r.results.into_iter())
                    .map(|x| entry_result(&to.id, x, ms))
                    .collect()
            }
            Ok(r) => {
                let e = short_reply(&to.id, n, r.results.len());
                vec![Err(e); n]
            }
            Err(TransportError::Rpc { code, .. })
                if code == tonic::Code::Unimplemented && resend.is_some() =>
            {
                support.store(SINGLE, Ordering::Relaxed);
                let singles = resend.unwrap_or_default().into_iter().map(|e| {
                    let left = Duration::from_millis(u64::from(e.timeout_ms));
                    self.replica_write(to, e.write.unwrap_or_default(), left)
                });
                futures::future::join_all(singles).await
            }
            Err(e) => vec![Err(batch_failed(e)); n],
        }
    }
}

/// The lane's call: a batch to `to` while this node's `Peers` lives.
fn batch_call(
    peers: Weak<Peers>,
    to: NodeInfo,
    support: Arc<AtomicU8>,
) -> CallFn<ReplicaBatchEntry, Result<(), TransportError>> {
    Arc::new(move |items| {
        let (peers, to, support) = (peers.upgrade(), to.clone(), support.clone());
        Box::pin(async move {
            match peers {
                Some(p) => p.send_batch(&to, items, &support).await,
                None => vec![Err(TransportError::Cut { peer: to.id }); items.len()],
            }
        })
    })
}

/// A batch that failed as a whole: every entry in it may have been applied,
/// unless the batch was provably never sent.
pub(super) fn batch_failed(e: TransportError) -> TransportError {
    match e {
        TransportError::Cut { .. }
        | TransportError::NotSent { .. }
        | TransportError::Timeout { .. } => e,
        TransportError::StaleView { peer, version } => TransportError::Rpc {
            peer,
            code: tonic::Code::FailedPrecondition,
            message: format!("batch refused on layout v{version}"),
            verdict: PeerVerdict::MaybeApplied,
        },
        TransportError::Rpc {
            peer,
            code,
            message,
            ..
        } => TransportError::Rpc {
            peer,
            code,
            message,
            verdict: PeerVerdict::MaybeApplied,
        },
    }
}

fn short_reply(peer: &str, sent: usize, got: usize) -> TransportError {
    TransportError::Rpc {
        peer: peer.to_string(),
        code: tonic::Code::Internal,
        message: format!("{got} results for a batch of {sent}"),
        verdict: PeerVerdict::MaybeApplied,
    }
}

/// What the replica answers for one entry: the status a single
/// `ReplicaWrite` would have returned, as a result.
pub fn result_of(res: Result<(), tonic::Status>) -> ReplicaBatchResult {
    let Err(s) = res else {
        return ReplicaBatchResult::default();
    };
    let meta = |k: &str| (s.metadata().get(k)).and_then(|v| v.to_str().ok().map(str::to_string));
    ReplicaBatchResult {
        code: s.code() as i32,
        message: s.message().to_string(),
        applied: meta(crate::proto::APPLIED_METADATA).unwrap_or_default(),
        layout_version: (meta(crate::proto::LAYOUT_VERSION_METADATA))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    }
}

/// One entry's result as the error a single call would have given.
pub(super) fn entry_result(
    peer: &str,
    r: ReplicaBatchResult,
    ms: u64,
) -> Result<(), TransportError> {
    let code = tonic::Code::from_i32(r.code);
    if code == tonic::Code::Ok {
        return Ok(());
    }
    let mut s = tonic::Status::new(code, r.message);
    if let Ok(v) = r.applied.parse() {
        if !r.applied.is_empty() {
            s.metadata_mut().insert(crate::proto::APPLIED_METADATA, v);
        }
    }
    if r.layout_version > 0 {
        let v = tonic::metadata::MetadataValue::from(r.layout_version);
        s.metadata_mut()
            .insert(crate::proto::LAYOUT_VERSION_METADATA, v);
    }
    Err(status_error(peer, s, ms))
}

#[cfg(test)]
mod tests;
