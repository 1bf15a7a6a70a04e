//! Admission of client calls before their body (issue 12 §3, audit12-32
//! M2), a tower layer on the client service (`geokv.v1.Kv`), as Cassandra's
//! `native_transport_max_request_data_in_flight`:
//!
//! - from its headers alone, a get, put or delete takes its place under the
//!   bound on requests in flight (`admission`), and any call is refused
//!   while the node-wide [`ByteBudget`] of request bytes in flight is full;
//! - the body's data frames are taken from the budget as they arrive; a
//!   frame past it fails the body, so the call is refused before it is
//!   decoded (tonic answers the body's status);
//! - the bytes are given back when the call ends: its response is ready,
//!   or it was dropped (the client went away, the stream was reset);
//! - a call whose body has not ended within the body timeout is dropped
//!   (`DEADLINE_EXCEEDED`, `geokv-applied: no`: tonic hands a unary
//!   request to its handler only once the body has ended), so a stalled
//!   body gives its place and bytes back long before the handler timeout;
//! - one remote address holds at most its share of both bounds
//!   ([`Shares`], `shed_share`), so one host cannot hold every place;
//! - the call is dropped after the client port's handler timeout.
//!
//! Refusals are `RESOURCE_EXHAUSTED` with `retry-after-ms` and
//! `geokv-applied: no` (`GeokvError::Overloaded`, `OverByteBudget`),
//! counted in `geokv_requests_shed_total{reason}`; a body that alone
//! passes the whole budget is refused for good (`RequestOverByteBudget`,
//! `INVALID_ARGUMENT`). `Status` takes no place under the request bound
//! and is not shed from its headers (its few bytes are still counted), so
//! an overloaded node still answers it.
//!
//! Must not: decode the body, authenticate or authorize (`auth::layer`, the
//! handlers), or wrap services other than `geokv.v1.Kv`.

use super::admission::{Admission, Permit, SHED_METRIC};
use crate::error::GeokvError;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
pub use share::{ShareLimits, Shares, DEFAULT_SHARE};
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tonic::body::Body;
use tonic::codegen::http;
use tonic::server::NamedService;

/// Client request bytes held now (gauge).
pub const BYTES_IN_FLIGHT_METRIC: &str = "geokv_request_bytes_in_flight";

/// The default budget of client request bytes in flight: 256 MiB, 32
/// requests of the largest size (8 MiB), any number of small ones.
pub const DEFAULT_MAX_BYTES_IN_FLIGHT: usize = 256 << 20;

/// The default client-port handler timeout: past the longest deadline a
/// client may ask for (`MAX_TIMEOUT`, 60 s), so it only cuts a call
/// nobody waits for any more, a stalled body first of all.
pub const DEFAULT_HANDLER_TIMEOUT: Duration = Duration::from_secs(65);

/// The default time a call's body has to arrive in full (review-shed32
/// M1): a request of the largest size (8 MiB) at about 1 MiB/s.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// The bytes a `Status` call may take past a full budget: its body is a
/// few bytes, and operators need it most while the node sheds.
const STATUS_BYTES: usize = 4 << 10;

/// The calls that take a place under the request bound.
const ADMITTED_PATHS: [&str; 3] = [
    "/geokv.v1.Kv/Get",
    "/geokv.v1.Kv/Put",
    "/geokv.v1.Kv/Delete",
];

/// The node-wide budget of client request bytes in flight.
#[derive(Debug)]
pub struct ByteBudget {
    /// 0: no bound.
    max: usize,
    retry_after: Duration,
    held: AtomicUsize,
    /// Taken once (review-shed32 L6); `node::run` installs the recorder
    /// before the client port is served.
    gauge: metrics::Gauge,
}

impl ByteBudget {
    pub fn new(max: usize, retry_after: Duration) -> Arc<Self> {
        Arc::new(ByteBudget {
            max,
            retry_after,
            held: AtomicUsize::new(0),
            gauge: metrics::gauge!(BYTES_IN_FLIGHT_METRIC),
        })
    }

    /// Request bytes held now.
    pub fn in_flight(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }

    fn full(&self) -> bool {
        self.max != 0 && self.in_flight() >= self.max
    }

    /// Takes `n` bytes unless that passes the budget (never over it, but
    /// by a `Status` call's few bytes: `over`).
    fn take(&self, n: usize, over: bool) -> bool {
        let fits =
            |held: usize| (self.max == 0 || over || held + n <= self.max).then_some(held + n);
        let taken = (self.held).fetch_update(Ordering::AcqRel, Ordering::Acquire, fits);
        if taken.is_ok() {
            self.gauge.increment(n as f64);
        }
        taken.is_ok()
    }

    fn give(&self, n: usize) {
        self.held.fetch_sub(n, Ordering::AcqRel);
        self.gauge.decrement(n as f64);
    }

    fn refusal(&self) -> GeokvError {
        metrics::counter!(SHED_METRIC, "reason" => "bytes_in_flight").increment(1);
        GeokvError::OverByteBudget {
            limit_bytes: self.max,
            retry_after_ms: self.retry_after.as_millis() as u64,
        }
    }
}

/// What one call holds until it ends (the last of its body and its
/// response future is dropped): its bytes and its place.
#[derive(Debug)]
struct Held {
    budget: Arc<ByteBudget>,
    bytes: AtomicUsize,
    /// The body has ended (tonic may now hand the request over).
    ended: AtomicBool,
    /// The caller's address and its shares; `placed`: it took a place.
    share: Option<(Arc<Shares>, IpAddr)>,
    placed: bool,
    _permit: Option<Permit>,
}

impl Held {
    fn take(&self, n: usize) -> Result<(), GeokvError> {
        let mine = self.bytes.load(Ordering::Acquire) + n;
        let share_max = self.share.as_ref().map_or(0, |(s, _)| s.limits().bytes);
        let alone = [self.budget.max, share_max]
            .into_iter()
            .filter(|m| *m != 0)
            .min();
        if let Some(limit_bytes) = alone.filter(|max| mine > *max) {
            // Alone past the whole budget or share: no retry can succeed
            // (review-shed32 M2).
            return Err(GeokvError::RequestOverByteBudget { limit_bytes });
        }
        let over = self._permit.is_none() && mine <= STATUS_BYTES;
        if let Some((shares, ip)) = &self.share {
            if !shares.take(*ip, n, over) {
                return Err(share_refusal(
                    &self.budget,
                    "bytes of client requests",
                    share_max,
                ));
            }
        }
        if !self.budget.take(n, over) {
            if let Some((shares, ip)) = &self.share {
                shares.give(*ip, 0, n);
            }
            return Err(self.budget.refusal());
        }
        self.bytes.fetch_add(n, Ordering::AcqRel);
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

/// The refusal of a call past its address's share (counted).
fn share_refusal(budget: &ByteBudget, what: &'static str, limit: usize) -> GeokvError {
    metrics::counter!(SHED_METRIC, "reason" => "per_address").increment(1);
    GeokvError::AddressOverShare {
        what,
        limit,
        retry_after_ms: budget.retry_after.as_millis() as u64,
    }
}

/// A request body whose data frames are taken from the budget.
struct Metered {
    inner: Body,
    held: Arc<Held>,
}

impl HttpBody for Metered {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<bytes::Bytes>, tonic::Status>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        if frame.is_none() || self.inner.is_end_stream() {
            self.held.ended.store(true, Ordering::Release);
        }
        if let Some(data) = frame.as_ref().and_then(|f| f.as_ref().ok()?.data_ref()) {
            if let Err(e) = self.held.take(data.len()) {
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

/// The layer (`node::serve` puts it inside authentication).
#[derive(Debug, Clone)]
pub struct ShedLayer {
    admission: Arc<Admission>,
    budget: Arc<ByteBudget>,
    timeouts: Timeouts,
    shares: Arc<Shares>,
}

/// The client port's two deadlines for a call.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// For the whole call.
    pub handler: Duration,
    /// For its body to arrive in full.
    pub body: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            handler: DEFAULT_HANDLER_TIMEOUT,
            body: DEFAULT_BODY_TIMEOUT,
        }
    }
}

impl ShedLayer {
    pub fn new(admission: Arc<Admission>, budget: Arc<ByteBudget>, timeouts: Timeouts) -> Self {
        ShedLayer {
            admission,
            budget,
            timeouts,
            shares: Shares::unbounded(),
        }
    }

    /// With a share of both bounds per remote address.
    pub fn with_shares(self, shares: Arc<Shares>) -> Self {
        ShedLayer { shares, ..self }
    }

    /// A call's holdings, or its refusal, from its path and address alone.
    fn admit(&self, path: &str, ip: Option<IpAddr>) -> Result<Arc<Held>, GeokvError> {
        let permit = match ADMITTED_PATHS.contains(&path) {
            true => Some(self.admission.enter()?),
            false => None,
        };
        let limits = self.shares.limits();
        let placed = match (ip, &permit) {
            (Some(ip), Some(_)) if !self.shares.enter(ip) => {
                let what = "client requests";
                return Err(share_refusal(&self.budget, what, limits.requests));
            }
            (Some(_), Some(_)) => true,
            _ => false,
        };
        // Dropped on a refusal below: gives its place back.
        let held = Arc::new(Held {
            budget: self.budget.clone(),
            bytes: AtomicUsize::new(0),
            ended: AtomicBool::new(false),
            share: ip.map(|ip| (self.shares.clone(), ip)),
            placed,
            _permit: permit,
        });
        // `Status` is not shed from its headers (review-shed32 L2).
        if held._permit.is_some() {
            if self.budget.full() {
                return Err(self.budget.refusal());
            }
            if ip.is_some_and(|ip| self.shares.bytes_full(ip)) {
                let what = "bytes of client requests";
                return Err(share_refusal(&self.budget, what, limits.bytes));
            }
        }
        Ok(held)
    }
}

impl<S> tower::Layer<S> for ShedLayer {
    type Service = Shed<S>;

    fn layer(&self, inner: S) -> Shed<S> {
        Shed {
            inner,
            gate: self.clone(),
        }
    }
}

/// The client service behind the layer.
#[derive(Debug, Clone)]
pub struct Shed<S> {
    inner: S,
    gate: ShedLayer,
}

impl<S: NamedService> NamedService for Shed<S> {
    const NAME: &'static str = S::NAME;
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S> tower::Service<http::Request<Body>> for Shed<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let ip = super::auth::remote_ip_in(req.extensions());
        let held = match self.gate.admit(req.uri().path(), ip) {
            Ok(held) => held,
            // The body is dropped unread: the stream is reset after this
            // trailers-only answer.
            Err(e) => {
                let refused = tonic::Status::from(e).into_http();
                return Box::pin(async move { Ok(refused) });
            }
        };
        // The clone is not driven to readiness: call the one that was.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let metered = held.clone();
        let req = req.map(|inner| {
            Body::new(Metered {
                inner,
                held: metered,
            })
        });
        let answer = inner.call(req);
        Box::pin(within(self.gate.timeouts, held, answer))
    }
}

/// `answer`, or the status of a call dropped past its body timeout (its
/// body had not ended, so no handler had it) or its handler timeout.
async fn within<F, E>(t: Timeouts, held: Arc<Held>, answer: F) -> Result<http::Response<Body>, E>
where
    F: Future<Output = Result<http::Response<Body>, E>>,
{
    let answer = tokio::time::timeout(t.handler, answer);
    tokio::pin!(answer);
    tokio::select! {
        biased;
        answered = &mut answer => return answered.unwrap_or_else(|_| handler_timed_out(t)),
        _ = tokio::time::sleep(t.body.min(t.handler)) => {}
    }
    if !held.ended.load(Ordering::Acquire) {
        metrics::counter!(SHED_METRIC, "reason" => "body_timeout").increment(1);
        let after_ms = t.body.as_millis() as u64;
        return Ok(tonic::Status::from(GeokvError::BodyTimedOut { after_ms }).into_http());
    }
    answer.await.unwrap_or_else(|_| handler_timed_out(t))
}

fn handler_timed_out<E>(t: Timeouts) -> Result<http::Response<Body>, E> {
    metrics::counter!(SHED_METRIC, "reason" => "handler_timeout").increment(1);
    let after_ms = t.handler.as_millis() as u64;
    Ok(tonic::Status::from(GeokvError::HandlerTimedOut { after_ms }).into_http())
}

#[path = "shed_share.rs"]
mod share;

#[cfg(test)]
#[path = "shed_tests.rs"]
mod tests;
