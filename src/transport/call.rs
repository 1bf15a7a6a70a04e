//! One unary internode call: the sender's metadata, fault injection, the
//! call's own timer and what its failure means. Every unary call goes out
//! on the peer's channel behind a fresh first-read-wins [`gate`]: a timer
//! that ends before the request's body was read is "not sent" (nothing of
//! it ever reaches the peer), one that ends after is "may have been
//! applied" (review-conn28b H1, issue 12).
//!
//! Owns: running one call and classifying how it ended. Must not: retry,
//! or decide what a failure means for a request (callers do, from
//! [`TransportError::nothing_applied`]).

use super::error::{self, status_error};
use super::gate::{self, Expired, Gate, Gated};
use super::{encoded, tls, Peers, TransportError, FROM_HEADER};
use crate::proto::v1::internode::internode_client::InternodeClient;
use crate::topology::NodeInfo;
use std::time::Duration;
use tonic::transport::Channel;

/// A peer's channel as one call sees it: behind that call's gate.
pub type PeerChannel = Gated<Channel>;

/// The generated client on `ch`, with the peer port's message limits.
pub(super) fn internode_client<S>(ch: S) -> InternodeClient<S>
where
    S: tonic::client::GrpcService<tonic::body::Body>,
    S::Error: Into<tonic::codegen::StdError>,
    S::ResponseBody: tonic::codegen::Body<Data = tonic::codegen::Bytes> + Send + 'static,
    <S::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError> + Send,
{
    InternodeClient::new(ch)
        .max_decoding_message_size(encoded::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(encoded::MAX_MESSAGE_BYTES)
}

impl Peers {
    /// `msg` with this node's id and the trace context, and `grpc-timeout`
    /// when `send_deadline`.
    fn request<T>(&self, msg: T, timeout: Duration, send_deadline: bool) -> tonic::Request<T> {
        let mut req = tonic::Request::new(msg);
        if send_deadline {
            req.set_timeout(timeout);
        }
        if let Some(v) = &self.from {
            req.metadata_mut().insert(FROM_HEADER, v.clone());
        }
        crate::telemetry::inject_current(req.metadata_mut());
        req
    }

    /// Runs one unary call to `to` with fault injection and a deadline, sent
    /// to the peer as `grpc-timeout` too.
    pub(crate) async fn call<T, R, F, Fut>(
        &self,
        to: &NodeInfo,
        msg: T,
        timeout: Duration,
        f: F,
    ) -> Result<R, TransportError>
    where
        F: FnOnce(InternodeClient<PeerChannel>, tonic::Request<T>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<R>, tonic::Status>>,
    {
        self.call_with(to, msg, timeout, true, f).await
    }

    /// [`Self::call`]; the deadline is sent as `grpc-timeout` only when
    /// `send_deadline`. A replica read or write is a microsecond handler:
    /// its deadline is the caller's timer alone, which spares every call the
    /// header (never indexed by HPACK: its value changes per call), its
    /// parsing and a server-side timer (issue 14).
    pub(super) async fn call_with<T, R, F, Fut>(
        &self,
        to: &NodeInfo,
        msg: T,
        timeout: Duration,
        send_deadline: bool,
        f: F,
    ) -> Result<R, TransportError>
    where
        F: FnOnce(InternodeClient<PeerChannel>, tonic::Request<T>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<R>, tonic::Status>>,
    {
        let call = |ch: PeerChannel, r| f(internode_client(ch), r);
        self.call_on(to, msg, timeout, send_deadline, call).await
    }

    /// [`Self::call_with`] on the peer's channel itself (a call the
    /// generated client cannot make: a pre-encoded request, [`encoded`]).
    pub(super) async fn call_on<T, R, F, Fut>(
        &self,
        to: &NodeInfo,
        msg: T,
        timeout: Duration,
        send_deadline: bool,
        f: F,
    ) -> Result<R, TransportError>
    where
        F: FnOnce(PeerChannel, tonic::Request<T>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<R>, tonic::Status>>,
    {
        let gate = Gate::new();
        (self.call_gated(to, msg, timeout, send_deadline, gate, f)).await
    }

    /// [`Self::call_on`] behind `gate`, which others share: a batch's
    /// entries, whose callers may give up before the call's own timer
    /// ends (`replica_batch/claim.rs`).
    pub(super) async fn call_gated<T, R, F, Fut>(
        &self,
        to: &NodeInfo,
        msg: T,
        timeout: Duration,
        send_deadline: bool,
        gate: Gate,
        f: F,
    ) -> Result<R, TransportError>
    where
        F: FnOnce(PeerChannel, tonic::Request<T>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<R>, tonic::Status>>,
    {
        let peer = to;
        let delay = self
            .faults
            .outgoing(&self.me, peer)
            .map_err(|_| TransportError::Cut {
                peer: peer.id.clone(),
            })?;
        if let Some(d) = delay {
            tokio::time::sleep(d).await;
        }
        let started = std::time::Instant::now();
        let (channel, failure, seconds) = self.client_noted(to);
        let mark = failure.mark();
        let req = self.request(msg, timeout, send_deadline);
        let fut = f(Gated::new(channel, gate.clone()), req);
        let ms = timeout.as_millis() as u64;
        let res = match gate::within(&gate, timeout, fut).await {
            Err(Expired::NotSent) => Err(never_read(&peer.id, ms)),
            Err(Expired::MaybeSent) => Err(TransportError::Timeout {
                peer: peer.id.clone(),
                ms,
            }),
            Ok(Err(s)) => Err(unread_deadline(
                &gate,
                error::with_tls_failure(
                    status_error(&peer.id, s, ms),
                    failure.explain_since(mark, tls::peer_word(&peer.id)),
                ),
            )),
            Ok(Ok(r)) => Ok(r.into_inner()),
        };
        if let Some(d) = delay {
            // The reply crosses the same delayed link.
            tokio::time::sleep(d).await;
        }
        seconds.record(started.elapsed().as_secs_f64());
        res
    }
}

/// A call whose timer ended before its request was read: not sent.
fn never_read(peer: &str, ms: u64) -> TransportError {
    TransportError::NotSent {
        peer: peer.to_string(),
        message: format!("no connection took the call within {ms} ms"),
    }
}

/// A deadline (tonic's `grpc-timeout` layer) that ended the call before its
/// request was read is "not sent" too: the gate says so, as for the
/// caller's own timer. Any other failure keeps the peer's status (an old
/// peer's UNIMPLEMENTED is answered before the body is read, and its
/// callers resend differently).
fn unread_deadline(gate: &Gate, e: TransportError) -> TransportError {
    match e {
        TransportError::Timeout { peer, ms } if gate.abandon() => never_read(&peer, ms),
        e => e,
    }
}
