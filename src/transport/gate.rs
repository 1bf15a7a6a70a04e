//! The **first-read-wins gate** of an internode call (review-conn28b H1,
//! issue 12): whether a call whose caller gave up was "not sent" is decided
//! by one atomic shared by the caller and the call's request body, never by
//! guessing what tonic's Buffer worker or hyper did meanwhile.
//!
//! Every unary internode call goes through [`Gated`] (the generated client's
//! service and [`super::encoded::unary`]'s), which puts the request body
//! behind a fresh [`Gate`]: `Idle` → `Sending` on the body's first
//! `poll_frame`, `Idle` → `Abandoned` when the caller gives up first
//! ([`Gate::abandon`]). A body that finds `Abandoned` yields an error, so
//! hyper resets the stream before any DATA frame: no byte of the message
//! ever reaches h2. `Abandoned` won ⇒ "not sent"; `Sending` won ⇒ the
//! message may be out, "may have been applied".
//!
//! HEADERS may go out before the body's first poll (hyper sends them, then
//! pipes the body). A **unary** handler cannot run on HEADERS alone: tonic's
//! server decodes the one message from the body before it calls the
//! handler, and a stream reset with no DATA ends that decode with an error.
//! The bidirectional `Stream`/`Adopt` calls are not gated: their handler
//! starts on HEADERS, and the body is polled at once; a batch is only sent
//! once the open succeeded, so an open whose timer ends stays "unknown"
//! (`stream.rs`), which is conservative.
//!
//! Owns: the gate, the gated body and service. Must not: classify a
//! failure otherwise than by who won the gate, or touch the message.

use hyper::body::{Body as HttpBody, Frame, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tonic::body::Body;
use tonic::codegen::{http, Service, StdError};

const IDLE: u8 = 0;
const SENDING: u8 = 1;
const ABANDONED: u8 = 2;

/// One call's gate, shared by its caller and its request body.
#[derive(Debug, Clone, Default)]
pub struct Gate(Arc<AtomicU8>);

impl Gate {
    pub fn new() -> Self {
        Gate::default()
    }

    /// The body's first read: whether it may yield the message (the caller
    /// has not given up before it). A batch whose entries go anew as single
    /// writes passes it too (`replica_batch/claim.rs`).
    pub(super) fn send(&self) -> bool {
        match (self.0).compare_exchange(IDLE, SENDING, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => true,
            Err(now) => now == SENDING,
        }
    }

    /// The caller gives up: `true` if no byte of the message was handed to
    /// h2, and none ever will be (the body was never read); `false` if the
    /// body was read, and the message may be out.
    pub fn abandon(&self) -> bool {
        match (self.0).compare_exchange(IDLE, ABANDONED, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => true,
            Err(now) => now == ABANDONED,
        }
    }

    /// Whether a caller gave up before the body was read (for good).
    pub(super) fn abandoned(&self) -> bool {
        self.0.load(Ordering::Acquire) == ABANDONED
    }
}

/// What a call's own timer means: the gate says whether it was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expired {
    /// The body was never read, and never will be: nothing was sent.
    NotSent,
    /// The body was read: the message may have reached the peer.
    MaybeSent,
}

/// `call` (made on a service gated by `gate`) within `timeout`; when the
/// timer ends first, the caller gives up and the gate says what that means.
pub async fn within<F: Future>(
    gate: &Gate,
    timeout: Duration,
    call: F,
) -> Result<F::Output, Expired> {
    match tokio::time::timeout(timeout, call).await {
        Ok(done) => Ok(done),
        Err(_) if gate.abandon() => Err(Expired::NotSent),
        Err(_) => Err(Expired::MaybeSent),
    }
}

/// What a gated body answers when its caller gave up before it was read
/// (hyper then resets the stream; nobody waits for the answer).
#[derive(Debug, thiserror::Error)]
#[error("the caller gave up before the request was sent")]
pub struct Abandoned;

/// A request body behind a [`Gate`].
struct GatedBody {
    inner: Body,
    gate: Gate,
    /// The gate was passed (one atomic per call, not per frame).
    open: bool,
}

impl HttpBody for GatedBody {
    type Data = bytes::Bytes;
    type Error = StdError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        if !self.open {
            if !self.gate.send() {
                return Poll::Ready(Some(Err(Abandoned.into())));
            }
            self.open = true;
        }
        let frame = Pin::new(&mut self.inner).poll_frame(cx);
        frame.map(|f| f.map(|r| r.map_err(StdError::from)))
    }

    /// Never "ended" before it is read: hyper would send HEADERS with
    /// END_STREAM and never ask the gate.
    fn is_end_stream(&self) -> bool {
        false
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// An internode service (the peer's `Channel`) whose requests' bodies are
/// behind one call's [`Gate`]: make one per call.
#[derive(Debug, Clone)]
pub struct Gated<S> {
    inner: S,
    gate: Gate,
}

impl<S> Gated<S> {
    pub fn new(inner: S, gate: Gate) -> Self {
        Gated { inner, gate }
    }
}

impl<S: Service<http::Request<Body>>> Service<http::Request<Body>> for Gated<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let gate = self.gate.clone();
        let req = req.map(|inner| {
            Body::new(GatedBody {
                inner,
                gate,
                open: false,
            })
        });
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests;
