//! Admission of client calls before their body (issue 12 §3, audit12-32
//! M2), a tower layer on the client service (`geokv.v1.Kv`), as Cassandra's
//! `native_transport_max_request_data_in_flight`:
//!
//! - from its headers alone, a get, put or delete takes its place under the
//!   bound on requests in flight (`admission`), and is refused while the
//!   node-wide [`ByteBudget`] of request bytes in flight, or its
//!   address's share of it, is full;
//! - the body's data frames are taken from the budget as they arrive; a
//!   frame past it fails the body, so the call is refused before it is
//!   decoded (tonic answers the body's status);
//! - the bytes are given back when the call ends: its response is ready,
//!   or it was dropped (the client went away, the stream was reset);
//! - a call whose body has not ended and brought no data frame for the
//!   body timeout (an inactivity timeout, re-armed by each frame, as
//!   nginx's `client_body_timeout`: `shed_call`) is dropped
//!   (`DEADLINE_EXCEEDED`, `geokv-applied: no`: tonic hands a unary
//!   request to its handler only once the body has ended), so a stalled
//!   body gives its place and bytes back long before the handler timeout;
//! - one remote address holds at most its share of both bounds
//!   ([`Shares`], `shed_share`), so one host cannot hold every place;
//! - the call is dropped after the client port's handler timeout; with
//!   `geokv-applied: no` if its body had not ended (a body trickling in
//!   past it: no handler had it, `BodyUnfinished`), else `maybe`.
//!
//! Refusals are `RESOURCE_EXHAUSTED` with `retry-after-ms` and
//! `geokv-applied: no` (`GeokvError::Overloaded`, `OverByteBudget`,
//! `AddressOverShare`), a body that had not ended `DEADLINE_EXCEEDED` with
//! `geokv-applied: no` (`BodyTimedOut` at the body timeout,
//! `BodyUnfinished` at the handler timeout), all counted in
//! `geokv_requests_shed_total{reason}`; a body that alone passes the
//! whole budget or its address's share is refused for good
//! (`RequestOverByteBudget`, `INVALID_ARGUMENT`). `Status` takes no place under the request bound
//! and is not shed from its headers (its few bytes are still counted), so
//! an overloaded node still answers it.
//!
//! Must not: decode the body, authenticate or authorize (`auth::layer`, the
//! handlers), or wrap services other than `geokv.v1.Kv`.

use super::admission::{Admission, SHED_METRIC};
use crate::error::GeokvError;
use call::{within, Held, Metered};
pub use share::{ShareConfig, ShareLimits, Shares};
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
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

/// The default body timeout (review-shed32 M1): the longest a call's
/// body may bring no data frame (review-shed33 M1: an inactivity
/// timeout, so a slow upload that keeps coming is cut only by the
/// handler timeout or the client's deadline).
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

/// The refusal of a call past its address's share (counted; logged at
/// most once a minute, naming the flags, review-fix33 M1: behind a proxy
/// every client shares one address, and the share binds them all).
fn share_refusal(
    budget: &ByteBudget,
    shares: &Shares,
    ip: IpAddr,
    what: &'static str,
    limit: usize,
) -> GeokvError {
    metrics::counter!(SHED_METRIC, "reason" => "per_address").increment(1);
    if shares.warn_now() {
        let ShareLimits { requests, bytes } = shares.limits();
        tracing::warn!(
            address = %ip,
            "client calls from {ip} shed: it holds its share of {limit} {what} in flight \
             (share in force: {requests} requests, {bytes} bytes; 0 = none; by default a \
             quarter of --max-in-flight-requests and --client-max-request-bytes-in-flight). \
             Every client behind one proxy, load balancer, NAT or sidecar shares one address: \
             raise --client-max-requests-in-flight-per-address and \
             --client-max-request-bytes-in-flight-per-address, or set them to 0 (no share). \
             Not logged again for 60 s (counted in geokv_requests_shed_total{{reason=\"per_address\"}})"
        );
    }
    GeokvError::AddressOverShare {
        what,
        limit,
        retry_after_ms: budget.retry_after.as_millis() as u64,
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
    /// For each part of its body: the longest wait for its first data
    /// frame, then between two frames, while it has not ended.
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
                return Err(share_refusal(
                    &self.budget,
                    &self.shares,
                    ip,
                    what,
                    limits.requests,
                ));
            }
            (Some(_), Some(_)) => true,
            _ => false,
        };
        // Dropped on a refusal below: gives its place back.
        let share = ip.map(|ip| (self.shares.clone(), ip));
        let held = Arc::new(Held::new(self.budget.clone(), share, placed, permit));
        // `Status` is not shed from its headers (review-shed32 L2).
        if held.admitted() {
            if self.budget.full() {
                return Err(self.budget.refusal());
            }
            if let Some(ip) = ip.filter(|ip| self.shares.bytes_full(*ip)) {
                let what = "bytes of client requests";
                return Err(share_refusal(
                    &self.budget,
                    &self.shares,
                    ip,
                    what,
                    limits.bytes,
                ));
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

#[path = "shed_call.rs"]
mod call;

#[path = "shed_share.rs"]
mod share;

#[cfg(test)]
#[path = "shed_tests.rs"]
mod tests;
