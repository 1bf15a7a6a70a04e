//! Replica reads to a peer through a batching [`Lane`] of their own (issue
//! 14), as `super::replica_batch` sends writes: one `ReplicaReadBatch`
//! call carries the reads that queued while the previous call was in
//! flight, each entry with its own deadline, trace context and result.
//! Each result maps to what a single `ReplicaRead` would have given
//! (through the same status mapping). Reads and writes go through separate
//! lanes, so neither waits behind the other; within the lane a stalled
//! call holds a queued read at most [`READ_HOLD`], well before the
//! coordinator's read speculation. A batch's answer is bounded in bytes by
//! the peer; the entries it leaves out, or every entry of a batch too
//! large to answer, are read again alone. The batch call runs in its
//! first entry's trace, linked to the others'.
//!
//! **Mixed versions:** a peer answering UNIMPLEMENTED (a node from before
//! this call) read nothing: every entry of that batch is resent as a
//! single `ReplicaRead` (a read changes nothing, so the copy for that is
//! always kept), and for [`super::support::SINGLE_ONLY_FOR`] every read of
//! that peer goes single; then batches are tried again.
//!
//! Must not: retry an entry the peer answered, or decide what a failure
//! means for a request (the coordinator does).

use super::batch::Limits;
use super::lane::{CallFn, Lane, Settled};
use super::replica_batch::{entry_result, short_reply};
use super::support::{batch_span, unimplemented, Support};
use super::{Peers, TransportError};
use crate::proto::v1::internode::{
    ReplicaReadBatchEntry, ReplicaReadBatchRequest, ReplicaReadBatchResponse,
    ReplicaReadBatchResult, ReplicaReadRequest, ReplicaReadResponse,
};
use crate::tasks::Spawner;
use crate::topology::NodeInfo;
use futures::future::BoxFuture;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::time::Instant;
use tracing::Instrument;

/// One entry's outcome: the peer's answer, or why there is none.
pub type ReadOutcome = Result<ReplicaReadResponse, TransportError>;

/// The two calls a read lane makes to its peer: the network ([`Peers`]),
/// or a test's fake peer.
pub trait ReadWire: Send + Sync + 'static {
    /// The peer's node id.
    fn peer(&self) -> &str;
    fn batch(
        &self,
        req: ReplicaReadBatchRequest,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<ReplicaReadBatchResponse, TransportError>>;
    /// One `ReplicaRead` in the trace of `traceparent` (empty: none).
    fn single<'a>(
        &'a self,
        req: ReplicaReadRequest,
        timeout: Duration,
        traceparent: &'a str,
    ) -> BoxFuture<'a, ReadOutcome>;
}

/// One peer's lane of replica reads.
pub(super) struct ReadLane {
    pub(super) addr: SocketAddr,
    lane: Lane<ReplicaReadBatchEntry, ReadOutcome>,
    pub(super) support: Arc<Support>,
}

impl Peers {
    /// Reads `to`'s copy of a key (as [`Peers::replica_read`]), batched
    /// with the other reads of `to` that queue while a call to it is in
    /// flight.
    pub async fn replica_read_batched(
        self: &Arc<Self>,
        to: &NodeInfo,
        req: ReplicaReadRequest,
        timeout: Duration,
    ) -> ReadOutcome {
        let lane = self.read_lane(to);
        let now = Instant::now();
        if lane.support.single_only(now) {
            return self.replica_read(to, req, timeout).await;
        }
        let entry = ReplicaReadBatchEntry {
            read: Some(req),
            timeout_ms: 0,
            traceparent: crate::telemetry::current_traceparent(),
        };
        let bytes = prost::Message::encoded_len(&entry);
        let settled = tokio::time::timeout(timeout, lane.lane.submit(entry, bytes, now + timeout));
        settled_read(&to.id, timeout, settled.await.ok())
    }

    /// `to`'s read lane, made on first use (or again when its address
    /// changed).
    fn read_lane(self: &Arc<Self>, to: &NodeInfo) -> Arc<ReadLane> {
        let mut lanes = self.read_lanes.lock();
        if let Some(l) = lanes.get(&to.id) {
            if l.addr == to.peer_address {
                return l.clone();
            }
        }
        let net = Net {
            peers: Arc::downgrade(self),
            to: to.clone(),
        };
        let (lane, support) = read_lane_over(net, read_limits(), &self.lane_tasks);
        let lane = Arc::new(ReadLane {
            addr: to.peer_address,
            lane,
            support,
        });
        lanes.insert(to.id.clone(), lane.clone());
        lane
    }
}

/// The longest a read waits for the call in flight to its peer: a quarter
/// of the coordinator's default read speculation (20 ms), so a read
/// queued behind a slow call goes out long before it would ask another
/// replica.
pub const READ_HOLD: Duration = Duration::from_millis(5);

/// A read lane's bounds: the write lane's, with a hold of [`READ_HOLD`].
pub fn read_limits() -> Limits {
    Limits {
        max_hold: READ_HOLD,
        ..Limits::default()
    }
}

/// What a reader is told, `None` once its own deadline passed.
fn settled_read(peer: &str, timeout: Duration, s: Option<Settled<ReadOutcome>>) -> ReadOutcome {
    let not_sent = |why: &str| TransportError::NotSent {
        peer: peer.to_string(),
        message: why.to_string(),
    };
    match s {
        Some(Settled::Answered(r)) => r,
        Some(Settled::Expired) => Err(not_sent("its deadline passed while queued")),
        Some(Settled::Shed) => {
            metrics::counter!("geokv_internode_lane_shed_total").increment(1);
            Err(not_sent("overloaded: the read lane to this peer is full"))
        }
        Some(Settled::NotSent) => Err(not_sent("the lane's task died before sending it")),
        Some(Settled::Lost) => Err(TransportError::Rpc {
            peer: peer.to_string(),
            code: tonic::Code::Unknown.into(),
            message: "sent in a read batch that answered nothing for it".into(),
            verdict: super::PeerVerdict::Unknown,
        }),
        None => Err(TransportError::Timeout {
            peer: peer.to_string(),
            ms: timeout.as_millis() as u64,
        }),
    }
}

/// A read lane over `wire` and the peer's support mark. The lane has no
/// gauges (those name the write lane's load).
pub fn read_lane_over<W: ReadWire>(
    wire: W,
    limits: Limits,
    spawner: &Spawner,
) -> (Lane<ReplicaReadBatchEntry, ReadOutcome>, Arc<Support>) {
    let (wire, support) = (Arc::new(wire), Arc::new(Support::default()));
    let s = support.clone();
    let call: CallFn<ReplicaReadBatchEntry, ReadOutcome> = Arc::new(move |items| {
        let (wire, support) = (wire.clone(), s.clone());
        Box::pin(async move { send(&*wire, &support, items).await })
    });
    (Lane::spawn(limits, call, None, spawner), support)
}

/// Sends one batch (or, to a peer marked single-only, its entries one by
/// one) and maps the answer to one outcome per entry.
async fn send<W: ReadWire>(
    wire: &W,
    support: &Support,
    items: Vec<(ReplicaReadBatchEntry, Instant)>,
) -> Vec<ReadOutcome> {
    let now = Instant::now();
    if support.single_only(now) {
        return singles(wire, items).await;
    }
    let n = items.len();
    let last = items.iter().map(|(_, d)| *d).max().unwrap_or(now);
    let timeout = (last.saturating_duration_since(now)).max(Duration::from_millis(1));
    // Kept for a resend as single reads, should the peer not know the call.
    let resend = items.clone();
    let entries: Vec<ReplicaReadBatchEntry> = (items.into_iter())
        .map(|(mut e, d)| {
            let left = d.saturating_duration_since(now).as_millis();
            e.timeout_ms = u32::try_from(left).unwrap_or(u32::MAX).max(1);
            e
        })
        .collect();
    metrics::histogram!("geokv_internode_read_batch_entries").record(n as f64);
    let tps = resend.iter().map(|(e, _)| &e.traceparent[..]);
    let span = batch_span("replica_read_batch", tps);
    let call = async {
        wire.batch(ReplicaReadBatchRequest { entries }, timeout)
            .await
    };
    match call.instrument(span).await {
        Ok(r) if r.results.len() == n => answered(wire, r.results, resend).await,
        Ok(r) => vec![Err(short_reply(wire.peer(), n, r.results.len())); n],
        Err(e) if unimplemented(&e) => {
            support.refused_batches(now);
            metrics::counter!("geokv_internode_read_batch_unimplemented_total").increment(1);
            singles(wire, resend).await
        }
        // Too large to answer as one message: each read alone.
        Err(e) if too_large(&e) => singles(wire, resend).await,
        Err(e) => vec![Err(e); n],
    }
}

/// A batch's answers; the entries the peer left out (over its answer
/// budget) are read again alone, concurrently.
async fn answered<W: ReadWire>(
    wire: &W,
    results: Vec<ReplicaReadBatchResult>,
    items: Vec<(ReplicaReadBatchEntry, Instant)>,
) -> Vec<ReadOutcome> {
    let mut outs = Vec::with_capacity(results.len());
    let (mut at, mut again) = (Vec::new(), Vec::new());
    for (i, (x, item)) in results.into_iter().zip(items).enumerate() {
        if left_out(&x) {
            at.push(i);
            again.push(item);
        }
        outs.push(read_result(wire.peer(), x));
    }
    if at.is_empty() {
        return outs;
    }
    for (i, out) in at.into_iter().zip(singles(wire, again).await) {
        outs[i] = out;
    }
    outs
}

/// The peer left this entry out of the batch's answer (over its byte
/// budget): nothing read, to be read alone.
fn left_out(r: &ReplicaReadBatchResult) -> bool {
    (r.status.as_ref()).is_some_and(|s| s.code == tonic::Code::ResourceExhausted as i32)
}

/// A batch whose answer is over a message's size limit: nothing was
/// answered (reads change nothing, so each can be read alone).
fn too_large(e: &TransportError) -> bool {
    matches!(e, TransportError::Rpc { code, .. }
        if matches!(code.grpc(), tonic::Code::OutOfRange | tonic::Code::ResourceExhausted))
}

/// One entry's result as a single call's answer or error.
pub(crate) fn read_result(peer: &str, r: ReplicaReadBatchResult) -> ReadOutcome {
    entry_result(peer, r.status.unwrap_or_default())?;
    Ok(r.read.unwrap_or_default())
}

/// Each entry as a single `ReplicaRead`, concurrently, each with what is
/// left of its own deadline and in its own trace.
async fn singles<W: ReadWire>(
    wire: &W,
    items: Vec<(ReplicaReadBatchEntry, Instant)>,
) -> Vec<ReadOutcome> {
    let calls = items.into_iter().map(|(e, deadline)| async move {
        let left = deadline.saturating_duration_since(Instant::now());
        match e.read {
            Some(r) if !left.is_zero() => wire.single(r, left, &e.traceparent).await,
            _ => Err(TransportError::NotSent {
                peer: wire.peer().to_string(),
                message: "its deadline passed before it was sent".into(),
            }),
        }
    });
    futures::future::join_all(calls).await
}

/// The network: `to` while this node's `Peers` lives.
struct Net {
    peers: Weak<Peers>,
    to: NodeInfo,
}

impl Net {
    fn peers(&self) -> Result<Arc<Peers>, TransportError> {
        self.peers.upgrade().ok_or_else(|| TransportError::NotSent {
            peer: self.to.id.clone(),
            message: "this node's transport is gone".into(),
        })
    }
}

impl ReadWire for Net {
    fn peer(&self) -> &str {
        &self.to.id
    }

    fn batch(
        &self,
        req: ReplicaReadBatchRequest,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<ReplicaReadBatchResponse, TransportError>> {
        Box::pin(async move {
            let peers = self.peers()?;
            (peers.call_with(&self.to, req, timeout, false, |mut c, r| async move {
                c.replica_read_batch(r).await
            }))
            .await
        })
    }

    fn single<'a>(
        &'a self,
        req: ReplicaReadRequest,
        timeout: Duration,
        traceparent: &'a str,
    ) -> BoxFuture<'a, ReadOutcome> {
        let span = tracing::info_span!("replica_read_resent");
        crate::telemetry::adopt_traceparent(&span, traceparent);
        Box::pin(
            async move {
                let peers = self.peers()?;
                peers.replica_read(&self.to, req, timeout).await
            }
            .instrument(span),
        )
    }
}

#[cfg(test)]
mod tests;
