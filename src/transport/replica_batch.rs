//! Replica writes to a peer through its batching [`Lane`] (issue 14): one
//! `ReplicaBatch` call carries the writes that queued while the previous
//! call was in flight, each entry with its own deadline, trace context and
//! result. Each result maps to the [`TransportError`] a single
//! `ReplicaWrite` would have given (through the same status mapping);
//! a batch call that fails as a whole leaves every entry in it **maybe
//! applied** (never "not applied"), unless it was provably never sent.
//!
//! **Mixed versions:** a peer answering UNIMPLEMENTED (a node from before
//! this call) ran nothing: every entry of that batch is resent as a single
//! `ReplicaWrite` with its own deadline and trace context, and for
//! [`super::support::SINGLE_ONLY_FOR`] every write to that peer goes single (those queued
//! behind the refused batch too, at send time); then batches are tried
//! again, so a peer upgraded in a rolling upgrade gets them. A lane made
//! anew (the peer's address changed) starts without the mark. Every batch
//! keeps its entries for that resend (the call shares them and encodes
//! them as it is sent, [`super::encoded`]: no copy), so a peer downgraded
//! in place after it served batches gets its refused batch's entries as
//! single writes too. A lone entry whose batch would be over the message
//! limit goes as a single write (review-perf28 L1), refused as not sent
//! only if it is over the limit by itself.
//!
//! The batch call runs in its first entry's trace, linked to the others'.
//!
//! Must not: retry an entry that may have been applied, or decide what a
//! failure means for a request (the coordinator does).

use super::batch::Limits;
use super::encoded;
use super::error::status_error;
use super::lane::{CallFn, Lane, Settled};
use super::support::{batch_span, unimplemented, Support};
use super::{PeerVerdict, Peers, TransportError};
use crate::proto::v1::internode::{ReplicaBatchResponse, ReplicaBatchResult, ReplicaWriteRequest};
use crate::tasks::Spawner;
use crate::topology::NodeInfo;
use futures::future::BoxFuture;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::time::Instant;
use tracing::Instrument;

mod entry;
pub use entry::Entry;

/// The two calls a lane makes to its peer: the network ([`Peers`]), or a
/// test's fake peer.
pub trait Wire: Send + Sync + 'static {
    /// The peer's node id.
    fn peer(&self) -> &str;
    /// One `ReplicaBatch` of `entries` (a `ReplicaBatchRequest`), sent
    /// from the lane's own entries, shared: no copy of them.
    fn batch<'a>(
        &'a self,
        entries: Arc<Vec<Entry>>,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<ReplicaBatchResponse, TransportError>>;
    /// One `ReplicaWrite` in the trace of `traceparent` (empty: none).
    fn single<'a>(
        &'a self,
        req: ReplicaWriteRequest,
        timeout: Duration,
        traceparent: &'a str,
    ) -> BoxFuture<'a, Result<(), TransportError>>;
}

/// One peer's lane of replica writes.
pub(super) struct WriteLane {
    pub(super) addr: SocketAddr,
    lane: Lane<Entry, Result<(), TransportError>>,
    support: Arc<Support>,
}

impl Peers {
    /// Merges a record into `to`'s copy of the key (as
    /// [`Peers::replica_write`]), batched with the other writes to `to`
    /// that queue while a call to it is in flight. `req` may be shared
    /// with the write's other replica calls: the lane holds it, uncopied.
    pub async fn replica_write_batched(
        self: &Arc<Self>,
        to: &NodeInfo,
        req: impl Into<Arc<ReplicaWriteRequest>>,
        timeout: Duration,
    ) -> Result<(), TransportError> {
        let (lane, req) = (self.lane(to), req.into());
        let now = Instant::now();
        if lane.support.single_only(now) {
            return (self.replica_write(to, Arc::unwrap_or_clone(req), timeout)).await;
        }
        let entry = Entry {
            write: req,
            timeout_ms: 0,
            traceparent: crate::telemetry::current_traceparent(),
        };
        let bytes = held_bytes(&entry);
        let deadline = now + timeout;
        let settled = tokio::time::timeout(timeout, lane.lane.submit(entry, bytes, deadline));
        settled_error(&to.id, timeout, settled.await.ok())
    }

    /// `to`'s lane, made on first use (or again when its address changed).
    fn lane(self: &Arc<Self>, to: &NodeInfo) -> Arc<WriteLane> {
        let mut lanes = self.lanes.lock();
        if let Some(l) = lanes.get(&to.id) {
            if l.addr == to.peer_address {
                return l.clone();
            }
        }
        let net = Net {
            peers: Arc::downgrade(self),
            to: to.clone(),
        };
        let (lane, support) = lane_over(net, Limits::default(), &self.lane_tasks);
        let lane = Arc::new(WriteLane {
            addr: to.peer_address,
            lane,
            support,
        });
        lanes.insert(to.id.clone(), lane.clone());
        lane
    }
}

/// What `e` counts against its lane's cap: all of it (key, record,
/// keyspace, coordinator, plan, trace context), as it goes on the wire.
fn held_bytes(e: &Entry) -> usize {
    prost::Message::encoded_len(e)
}

/// What a caller of the lane is told, `None` once its own deadline passed.
fn settled_error(
    peer: &str,
    timeout: Duration,
    s: Option<Settled<Result<(), TransportError>>>,
) -> Result<(), TransportError> {
    let not_sent = |why: &str| TransportError::NotSent {
        peer: peer.to_string(),
        message: why.to_string(),
    };
    match s {
        Some(Settled::Answered(r)) => r,
        Some(Settled::Expired) => Err(not_sent("its deadline passed while queued")),
        Some(Settled::Shed) => {
            metrics::counter!("geokv_internode_lane_shed_total").increment(1);
            Err(not_sent("overloaded: the lane to this peer is full"))
        }
        Some(Settled::NotSent) => Err(not_sent("the lane's task died before sending it")),
        Some(Settled::Lost) => Err(TransportError::Rpc {
            peer: peer.to_string(),
            code: tonic::Code::Unknown.into(),
            message: "sent in a batch that answered nothing for it".into(),
            verdict: PeerVerdict::MaybeApplied,
        }),
        None => Err(TransportError::Timeout {
            peer: peer.to_string(),
            ms: timeout.as_millis() as u64,
        }),
    }
}

/// A lane over `wire` and the peer's support mark.
pub fn lane_over<W: Wire>(
    wire: W,
    limits: Limits,
    spawner: &Spawner,
) -> (Lane<Entry, Result<(), TransportError>>, Arc<Support>) {
    let (wire, support) = (Arc::new(wire), Arc::new(Support::default()));
    let label = Some(wire.peer().to_string());
    let s = support.clone();
    let call: CallFn<Entry, Result<(), TransportError>> = Arc::new(move |items| {
        let (wire, support) = (wire.clone(), s.clone());
        Box::pin(async move { send(&*wire, &support, items).await })
    });
    (Lane::spawn(limits, call, label, spawner), support)
}

/// Sends one batch (or, to a peer marked single-only, its entries one by
/// one) and maps the answer to one result per entry.
async fn send<W: Wire>(
    wire: &W,
    support: &Support,
    items: Vec<(Entry, Instant)>,
) -> Vec<Result<(), TransportError>> {
    let now = Instant::now();
    if support.single_only(now) {
        return singles(wire, items).await;
    }
    let n = items.len();
    let last = items.iter().map(|(_, d)| *d).max().unwrap_or(now);
    let timeout = (last.saturating_duration_since(now)).max(Duration::from_millis(1));
    // The entries stay here, for a resend as single writes should the peer
    // not know the call; the call shares them (issue 14: no copy).
    let (mut entries, deadlines): (Vec<Entry>, Vec<Instant>) = items.into_iter().unzip();
    for (e, d) in entries.iter_mut().zip(&deadlines) {
        let left = d.saturating_duration_since(now).as_millis();
        e.timeout_ms = u32::try_from(left).unwrap_or(u32::MAX).max(1);
    }
    if lone_and_over_the_limit(&entries) {
        return singles(wire, entries.into_iter().zip(deadlines).collect()).await;
    }
    metrics::histogram!("geokv_internode_batch_entries").record(n as f64);
    let ms = timeout.as_millis() as u64;
    let span = batch_span("replica_batch", entries.iter().map(|e| &e.traceparent[..]));
    let entries = Arc::new(entries);
    let answer = wire.batch(entries.clone(), timeout).instrument(span).await;
    match answer {
        Ok(r) if r.results.len() == n => (r.results.into_iter())
            .map(|x| entry_result(wire.peer(), x, ms))
            .collect(),
        Ok(r) => vec![Err(short_reply(wire.peer(), n, r.results.len())); n],
        Err(e) if unimplemented(&e) => {
            support.refused_batches(now);
            metrics::counter!("geokv_internode_batch_unimplemented_total").increment(1);
            // The call is over: its share of the entries is dropped.
            let entries = Arc::try_unwrap(entries).unwrap_or_else(|e| (*e).clone());
            singles(wire, entries.into_iter().zip(deadlines).collect()).await
        }
        Err(e) => vec![Err(batch_failed(e)); n],
    }
}

/// Whether `entries` is one entry whose batch is over the peer's message
/// limit (review-perf28 L1). Only a lone entry can be: the batcher caps a
/// batch of several far below it. The batch's wrapping (tags, lengths,
/// deadline, trace context) adds up to ~75 bytes, so that entry may be
/// within the limit as the single `ReplicaWrite` the peer takes: it is
/// sent single, and refused (not sent) by that call's own check
/// ([`Peers::replica_write`]) only if it is over by itself.
fn lone_and_over_the_limit<E: prost::Message>(entries: &[E]) -> bool {
    match entries {
        [e] => prost::encoding::message::encoded_len(1, e) > encoded::MAX_MESSAGE_BYTES,
        _ => false,
    }
}

/// Each entry as a single `ReplicaWrite`, concurrently, each with what is
/// left of its own deadline and in its own trace.
async fn singles<W: Wire>(
    wire: &W,
    items: Vec<(Entry, Instant)>,
) -> Vec<Result<(), TransportError>> {
    let calls = items.into_iter().map(|(e, deadline)| async move {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(TransportError::NotSent {
                peer: wire.peer().to_string(),
                message: "its deadline passed before it was sent".into(),
            });
        }
        let Entry {
            write, traceparent, ..
        } = e;
        (wire.single(Arc::unwrap_or_clone(write), left, &traceparent)).await
    });
    futures::future::join_all(calls).await
}

/// The method a batch calls (the generated client's path).
const REPLICA_BATCH: &str = "/geokv.v1.internode.Internode/ReplicaBatch";

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

impl Wire for Net {
    fn peer(&self) -> &str {
        &self.to.id
    }

    fn batch<'a>(
        &'a self,
        entries: Arc<Vec<Entry>>,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<ReplicaBatchResponse, TransportError>> {
        Box::pin(async move {
            // `ReplicaBatchRequest { entries }`, encoded as it is sent.
            let req = encoded::Repeated::new(1, entries);
            encoded::within_limit(&self.to.id, prost::Message::encoded_len(&req))?;
            let peers = self.peers()?;
            (peers.call_on(&self.to, req, timeout, false, |ch, r| {
                encoded::unary(ch, REPLICA_BATCH, r)
            }))
            .await
        })
    }

    fn single<'a>(
        &'a self,
        req: ReplicaWriteRequest,
        timeout: Duration,
        traceparent: &'a str,
    ) -> BoxFuture<'a, Result<(), TransportError>> {
        let span = tracing::info_span!("replica_write_resent");
        crate::telemetry::adopt_traceparent(&span, traceparent);
        Box::pin(
            async move {
                let peers = self.peers()?;
                peers.replica_write(&self.to, req, timeout).await
            }
            .instrument(span),
        )
    }
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
            code: tonic::Code::FailedPrecondition.into(),
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

pub(super) fn short_reply(peer: &str, sent: usize, got: usize) -> TransportError {
    TransportError::Rpc {
        peer: peer.to_string(),
        code: tonic::Code::Internal.into(),
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
pub(crate) fn entry_result(
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
