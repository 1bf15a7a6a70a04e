//! Replica writes to a peer through its batching [`Lane`] (issue 14): one
//! `ReplicaBatch` call carries the writes that queued while the previous
//! call was in flight, each entry with its own deadline, trace context and
//! result. Each result maps to the [`TransportError`] a single
//! `ReplicaWrite` would have given (through the same status mapping);
//! a batch call that fails as a whole leaves every entry in it **maybe
//! applied** (never "not applied"), unless it was provably never sent. A
//! caller whose timer ends first is told "not sent" only when no byte of
//! its entry can reach the peer (its batch's gate, `claim.rs`).
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
use super::error::answered;
use super::gate::Gate;
use super::lane::{CallFn, Lane, Settled};
use super::support::{batch_span, unimplemented, Support};
use super::{PeerVerdict, Peers, TransportError};
use crate::proto::v1::internode::{ReplicaBatchResponse, ReplicaBatchResult, ReplicaWriteRequest};
use crate::tasks::Spawner;
use crate::topology::NodeInfo;
use futures::future::BoxFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tracing::Instrument;

mod claim;
mod entry;
mod net;
use claim::Batch;
pub use claim::Claim;
pub use entry::Entry;
use net::Net;

/// The two calls a lane makes to its peer: the network ([`Peers`]), or a
/// test's fake peer.
pub trait Wire: Send + Sync + 'static {
    /// The peer's node id.
    fn peer(&self) -> &str;
    /// One `ReplicaBatch` of `entries` (a `ReplicaBatchRequest`), sent
    /// from the lane's own entries, shared: no copy of them; its request
    /// body behind `gate` (the batch's, which its entries' callers share).
    fn batch<'a>(
        &'a self,
        entries: Arc<Vec<Entry>>,
        timeout: Duration,
        gate: Gate,
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
        if lane.support.single_only(Instant::now()) {
            return (self.replica_write(to, Arc::unwrap_or_clone(req), timeout)).await;
        }
        let entry = Entry {
            write: req,
            timeout_ms: 0,
            traceparent: crate::telemetry::current_traceparent(),
            claim: Claim::default(),
        };
        submit_within(&lane.lane, &to.id, entry, timeout).await
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

/// `entry` through `lane` to `peer` within `timeout`: its outcome; or,
/// when its caller's timer ends first, "not sent" if its claim says no
/// byte of it can reach the peer, else "timeout" (may have been applied:
/// review-conn29 M1, `claim.rs`).
pub async fn submit_within(
    lane: &Lane<Entry, Result<(), TransportError>>,
    peer: &str,
    entry: Entry,
    timeout: Duration,
) -> Result<(), TransportError> {
    let (claim, bytes) = (entry.claim.clone(), held_bytes(&entry));
    let deadline = Instant::now() + timeout;
    let ms = timeout.as_millis() as u64;
    match tokio::time::timeout_at(deadline, lane.submit(entry, bytes, deadline)).await {
        Ok(settled) => settled_error(peer, settled),
        Err(_) if claim.give_up() => Err(not_sent(peer, format!("not sent within {ms} ms"))),
        Err(_) => Err(TransportError::Timeout {
            peer: peer.to_string(),
            ms,
        }),
    }
}

fn not_sent(peer: &str, why: impl Into<String>) -> TransportError {
    TransportError::NotSent {
        peer: peer.to_string(),
        message: why.into(),
    }
}

/// What a caller of the lane is told of how its entry settled.
fn settled_error(peer: &str, s: Settled<Result<(), TransportError>>) -> Result<(), TransportError> {
    match s {
        Settled::Answered(r) => r,
        Settled::Expired => Err(not_sent(peer, "its deadline passed while queued")),
        Settled::Shed => {
            metrics::counter!("geokv_internode_lane_shed_total").increment(1);
            Err(not_sent(peer, "overloaded: the lane to this peer is full"))
        }
        Settled::NotSent => Err(not_sent(peer, "the lane's task died before sending it")),
        Settled::Lost => Err(lost(peer)),
    }
}

fn lost(peer: &str) -> TransportError {
    TransportError::Rpc {
        peer: peer.to_string(),
        code: tonic::Code::Unknown.into(),
        message: "sent in a batch that answered nothing for it".into(),
        verdict: PeerVerdict::MaybeApplied,
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

/// Sends one batch of the entries whose callers still wait (those that
/// gave up are not sent: `claim.rs`) and maps the answer to one result
/// per entry.
async fn send<W: Wire>(
    wire: &W,
    support: &Support,
    items: Vec<(Entry, Instant)>,
) -> Vec<Result<(), TransportError>> {
    let batch = Batch::new();
    let joined: Vec<bool> = (items.iter()).map(|(e, _)| e.claim.join(&batch)).collect();
    let gave_up = |_: &bool| Err(not_sent(wire.peer(), "its caller gave up first"));
    if batch.seal() {
        return joined.iter().map(gave_up).collect();
    }
    let live = (items.into_iter().zip(&joined))
        .filter_map(|(item, j)| j.then_some(item))
        .collect();
    let mut outs = send_batch(wire, support, live, &batch).await.into_iter();
    (joined.iter())
        .map(|j| match j {
            true => (outs.next()).unwrap_or_else(|| Err(lost(wire.peer()))),
            false => gave_up(j),
        })
        .collect()
}

/// [`send`] of the entries of `batch` (or, to a peer marked single-only,
/// each one by itself).
async fn send_batch<W: Wire>(
    wire: &W,
    support: &Support,
    items: Vec<(Entry, Instant)>,
    batch: &Batch,
) -> Vec<Result<(), TransportError>> {
    let now = Instant::now();
    if support.single_only(now) {
        return singles(wire, batch, items).await;
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
        return singles(wire, batch, entries.into_iter().zip(deadlines).collect()).await;
    }
    metrics::histogram!("geokv_internode_batch_entries").record(n as f64);
    let span = batch_span("replica_batch", entries.iter().map(|e| &e.traceparent[..]));
    let entries = Arc::new(entries);
    let gate = batch.gate().clone();
    let answer = (wire.batch(entries.clone(), timeout, gate).instrument(span)).await;
    match answer {
        Ok(r) if r.results.len() == n => (r.results.into_iter())
            .map(|x| entry_result(wire.peer(), x))
            .collect(),
        Ok(r) => vec![Err(short_reply(wire.peer(), n, r.results.len())); n],
        Err(e) if unimplemented(&e) => {
            support.refused_batches(now);
            metrics::counter!("geokv_internode_batch_unimplemented_total").increment(1);
            // The call is over: its share of the entries is dropped.
            let entries = Arc::try_unwrap(entries).unwrap_or_else(|e| (*e).clone());
            singles(wire, batch, entries.into_iter().zip(deadlines).collect()).await
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

/// Each entry of `batch` as a single `ReplicaWrite`, concurrently, each
/// with what is left of its own deadline and in its own trace; none if
/// every caller of the batch gave up before it was read.
async fn singles<W: Wire>(
    wire: &W,
    batch: &Batch,
    items: Vec<(Entry, Instant)>,
) -> Vec<Result<(), TransportError>> {
    if !batch.resend() {
        let gone = |_: &(Entry, Instant)| Err(not_sent(wire.peer(), "every caller gave up"));
        return items.iter().map(gone).collect();
    }
    let calls = items.into_iter().map(|(e, deadline)| async move {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let why = "its deadline passed before it was sent";
            return Err(not_sent(wire.peer(), why));
        }
        let Entry {
            write, traceparent, ..
        } = e;
        (wire.single(Arc::unwrap_or_clone(write), left, &traceparent)).await
    });
    futures::future::join_all(calls).await
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

/// One entry's result: the peer's answer to it, classified on its typed
/// fields alone (code, `applied`, layout version), as a single call's
/// answer is. The entry was sent and answered, so it is never "not sent"
/// nor a timeout, whatever its message reads; without `applied` (a build
/// that sends none) it may have been applied.
pub(crate) fn entry_result(peer: &str, r: ReplicaBatchResult) -> Result<(), TransportError> {
    let code = tonic::Code::from_i32(r.code);
    if code == tonic::Code::Ok {
        return Ok(());
    }
    let verdict = match r.applied.as_str() {
        "no" => PeerVerdict::NothingApplied,
        _ => PeerVerdict::MaybeApplied,
    };
    let newer = (r.layout_version > 0).then_some(r.layout_version);
    Err(answered(peer, code, r.message, verdict, newer))
}

#[cfg(test)]
mod tests;
