//! One admitted client call of `api::shed`: what it holds until it ends
//! ([`Held`]: its bytes, its place, its address's share), its body taken
//! from the budgets frame by frame ([`Metered`]), and its two timeouts
//! ([`within`]): the body timeout, an inactivity timeout re-armed by each
//! data frame (the time to the first frame and between two frames, as
//! nginx's `client_body_timeout`; review-shed33 M1), and the handler
//! timeout on the whole call, a body still arriving included (then
//! answered "no", as no handler had it; review-fix33 L1). Must not: admit
//! or refuse a call from its headers (`shed::ShedLayer::admit`), or decode
//! the body.

use super::{share_refusal, ByteBudget, Shares, Timeouts, STATUS_BYTES};
use crate::api::admission::{Permit, SHED_METRIC};
use crate::error::GeokvError;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::time::Instant;
use tonic::body::Body;
use tonic::codegen::http;

/// What one call holds until it ends (the last of its body and its
/// response future is dropped): its bytes and its place.
#[derive(Debug)]
pub(super) struct Held {
    budget: Arc<ByteBudget>,
    bytes: AtomicUsize,
    /// The body has ended (tonic may now hand the request over).
    ended: AtomicBool,
    /// When the call was admitted, and its last data frame since then
    /// (ms): the body timeout runs from the later.
    started: Instant,
    last_frame_ms: AtomicU64,
    /// The caller's address and its shares; `placed`: it took a place.
    share: Option<(Arc<Shares>, IpAddr)>,
    placed: bool,
    permit: Option<Permit>,
}

impl Held {
    pub(super) fn new(
        budget: Arc<ByteBudget>,
        share: Option<(Arc<Shares>, IpAddr)>,
        placed: bool,
        permit: Option<Permit>,
    ) -> Self {
        Held {
            budget,
            bytes: AtomicUsize::new(0),
            ended: AtomicBool::new(false),
            started: Instant::now(),
            last_frame_ms: AtomicU64::new(0),
            share,
            placed,
            permit,
        }
    }

    /// It took a place under the request bound (a get, put or delete).
    pub(super) fn admitted(&self) -> bool {
        self.permit.is_some()
    }

    /// When its body times out unless another data frame arrives.
    fn body_deadline(&self, body_timeout: Duration) -> Instant {
        let last = Duration::from_millis(self.last_frame_ms.load(Ordering::Acquire));
        self.started + last + body_timeout
    }

    fn take(&self, n: usize) -> Result<(), GeokvError> {
        let mine = self.bytes.load(Ordering::Acquire) + n;
        let share_max = self.share.as_ref().map_or(0, |(s, _)| s.limits().bytes);
        let node = (self.budget.max, "", "");
        let share = (share_max, " from one address", "-per-address");
        // The lower bound limits; the node's when they are equal.
        let alone = [node, share]
            .into_iter()
            .filter(|m| m.0 != 0)
            .min_by_key(|m| m.0);
        if let Some((limit_bytes, whose, per)) = alone.filter(|max| mine > max.0) {
            // Alone past the whole budget or share: no retry can succeed
            // (review-shed32 M2); the error names the flag that limited
            // (review-shed33 L3).
            return Err(GeokvError::RequestOverByteBudget {
                limit_bytes,
                whose,
                per,
            });
        }
        let over = self.permit.is_none() && mine <= STATUS_BYTES;
        if let Some((shares, ip)) = &self.share {
            if !shares.take(*ip, n, over) {
                let what = "bytes of client requests";
                return Err(share_refusal(&self.budget, shares, *ip, what, share_max));
            }
        }
        if !self.budget.take(n, over) {
            if let Some((shares, ip)) = &self.share {
                shares.give(*ip, 0, n);
            }
            return Err(self.budget.refusal());
        }
        self.bytes.fetch_add(n, Ordering::AcqRel);
        let now_ms = self.started.elapsed().as_millis() as u64;
        self.last_frame_ms.fetch_max(now_ms, Ordering::AcqRel);
        Ok(())
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let bytes = *self.bytes.get_mut();
        self.budget.give(bytes);
        if let Some((shares, ip)) = &self.share {
            shares.give(*ip, self.placed as usize, bytes);
        }
    }
}

/// A request body whose data frames are taken from the budget.
pub(super) struct Metered {
    pub(super) inner: Body,
    pub(super) held: Arc<Held>,
}

impl HttpBody for Metered {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<bytes::Bytes>, tonic::Status>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        let data = frame.as_ref().and_then(|f| f.as_ref().ok()?.data_ref());
        // Its end, an error or trailers end a unary body for tonic, so it
        // may hand the call over; not only what the layer below says
        // (review-shed33 L1).
        if data.is_none() || self.inner.is_end_stream() {
            self.held.ended.store(true, Ordering::Release);
        }
        if let Some(n) = data.map(|d| d.len()) {
            if let Err(e) = self.held.take(n) {
                return Poll::Ready(Some(Err(tonic::Status::from(e))));
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// `answer`, or the status of a call dropped past its body timeout (no
/// data frame for that long and its body had not ended, so no handler
/// had it) or its handler timeout ("no" while its body has not ended).
pub(super) async fn within<F, E>(
    t: Timeouts,
    held: Arc<Held>,
    answer: F,
) -> Result<http::Response<Body>, E>
where
    F: Future<Output = Result<http::Response<Body>, E>>,
{
    let answer = tokio::time::timeout(t.handler, answer);
    tokio::pin!(answer);
    loop {
        let deadline = held.body_deadline(t.body);
        tokio::select! {
            biased;
            answered = &mut answer => return answered.unwrap_or_else(|_| handler_timed_out(t, &held)),
            _ = tokio::time::sleep_until(deadline) => {}
        }
        if held.ended.load(Ordering::Acquire) {
            break;
        }
        // Not re-armed by a frame meanwhile.
        if held.body_deadline(t.body) <= deadline {
            metrics::counter!(SHED_METRIC, "reason" => "body_timeout").increment(1);
            let after_ms = t.body.as_millis() as u64;
            return Ok(tonic::Status::from(GeokvError::BodyTimedOut { after_ms }).into_http());
        }
    }
    answer.await.unwrap_or_else(|_| handler_timed_out(t, &held))
}

/// The answer of a call past the handler timeout: "maybe" once its body
/// ended (a handler may have had it), else "no" (review-fix33 L1: a body
/// still trickling in; tokio's `Timeout` polls the call before its timer,
/// so the body was read as far as it had come and had not ended, and
/// tonic hands a unary request over only once its body has ended).
fn handler_timed_out<E>(t: Timeouts, held: &Held) -> Result<http::Response<Body>, E> {
    let after_ms = t.handler.as_millis() as u64;
    let e = if held.ended.load(Ordering::Acquire) {
        metrics::counter!(SHED_METRIC, "reason" => "handler_timeout").increment(1);
        GeokvError::HandlerTimedOut { after_ms }
    } else {
        metrics::counter!(SHED_METRIC, "reason" => "body_timeout").increment(1);
        GeokvError::BodyUnfinished { after_ms }
    };
    Ok(tonic::Status::from(e).into_http())
}
