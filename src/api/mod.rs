//! ① The client gRPC edge (`geokv.v1.Kv`): decodes and validates requests,
//! maps the consistency level, calls the coordinator, and converts results
//! and errors. No placement or replication logic lives here.
//!
//! Validation happens before anything is sent to a replica, so bad input
//! never touches stored data: this node not ready (`Cluster::serving`: its
//! storage refuses writes, it has left, its seed layout differs from a
//! peer's) → `UNAVAILABLE`, `geokv-applied: no`; empty or oversized key,
//! oversized value, malformed causal context → `INVALID_ARGUMENT`; unknown
//! keyspace → `NOT_FOUND`; impossible level → `FAILED_PRECONDITION`.
//!
//! Before that, from its headers and before its body was decoded, a call
//! passed the node's admission layer (`shed.rs`: the bound on get, put and
//! delete in flight, `admission.rs`, and the budget of request bytes in
//! flight): past them it was shed with `RESOURCE_EXHAUSTED` and a
//! `retry-after-ms` hint. `Status` takes no place under the request bound,
//! so an overloaded node still answers it. Then, on a
//! node with `--auth`, the role is authorized (`auth.rs`, `security::auth`):
//! without the permission (get: read; put and delete: write) →
//! `PERMISSION_DENIED` naming keyspace and permission.
//!
//! Before even that, before its body is decoded, every call was
//! authenticated by [`auth::layer`]: no credential or a bad one →
//! `UNAUTHENTICATED`.
//!
//! Must not: place, replicate or retry a request (the coordinator does), or touch storage.

pub mod admission;
pub mod auth;
mod convert;
#[cfg(test)]
mod not_ready_tests;
pub mod shed;

use crate::consistency::ConsistencyLevel;
use crate::coordinator::{Coordinator, ReadRequest, WriteRequest};
use crate::error::GeokvError;
use crate::membership::Gossiper;
use crate::mutation::Mutation;
use crate::proto::v1::kv_server::Kv;
use crate::proto::v1::*;
use crate::security::auth::{Auth, AuthError, Perm};
use crate::version::CausalContext;
use auth::layer::Principal;
use bytes::Bytes;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::{Request, Response, Status};
use tracing::Instrument;

/// Longest deadline a client may ask for.
pub(crate) const MAX_TIMEOUT: Duration = Duration::from_secs(60);

/// The client service of one node.
pub struct KvService {
    pub coordinator: Arc<Coordinator>,
    pub gossiper: Gossiper,
    pub limits: RequestLimits,
    /// This node's id (for `Status`).
    pub local_id: String,
    /// Authentication and permissions (enforced with `--auth`).
    pub auth: Arc<Auth>,
}

/// The request sizes the client edge accepts (`INVALID_ARGUMENT` beyond
/// them), the API's own settings. The node sets them to what its engine
/// enforces (`node::wiring`), so a request let through here is not
/// refused by the engine for its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    /// Largest key, in bytes.
    pub max_key_bytes: usize,
    /// Largest value, in bytes.
    pub max_value_bytes: usize,
}

struct Common {
    level: ConsistencyLevel,
    explicit: Option<u32>,
    timeout: Duration,
}

impl KvService {
    /// Authorizes the role `req` was authenticated as (by
    /// [`auth::layer`], before its body was decoded) for `perm` on
    /// `keyspace`. A call that did not pass the layer has no role:
    /// `UNAUTHENTICATED`.
    fn authorize<T>(&self, req: &Request<T>, keyspace: &str, perm: Perm) -> Result<(), Status> {
        if !self.auth.enabled() {
            return Ok(());
        }
        let Some(Principal(role)) = req.extensions().get::<Principal>() else {
            return Err(auth::status(AuthError::Missing));
        };
        (self.auth.permit(role, keyspace, perm)).map_err(auth::status)
    }

    fn common(&self, opts: Option<RequestOptions>) -> Result<Common, GeokvError> {
        let opts = opts.unwrap_or_default();
        let cfg = self.coordinator.config();
        let level = convert::level(opts.consistency)?.unwrap_or(cfg.default_level);
        let timeout = match opts.timeout_ms {
            0 => cfg.default_timeout,
            ms => Duration::from_millis(ms as u64).min(MAX_TIMEOUT),
        };
        Ok(Common {
            level,
            explicit: (opts.explicit_count > 0).then_some(opts.explicit_count),
            timeout,
        })
    }

    fn check_key(&self, keyspace: &str, key: &[u8]) -> Result<(), GeokvError> {
        self.coordinator.cluster().serving()?;
        if keyspace.is_empty() {
            return Err(GeokvError::InvalidArgument("keyspace is empty".into()));
        }
        if self
            .coordinator
            .cluster()
            .current()
            .ring
            .topology()
            .keyspace(keyspace)
            .is_none()
        {
            return Err(GeokvError::UnknownKeyspace(keyspace.to_string()));
        }
        if key.is_empty() {
            return Err(GeokvError::InvalidArgument("key is empty".into()));
        }
        if key.len() > self.limits.max_key_bytes {
            return Err(GeokvError::InvalidArgument(format!(
                "key is {} bytes; the limit is {} bytes",
                key.len(),
                self.limits.max_key_bytes
            )));
        }
        Ok(())
    }

    /// A put (`value: Some`) or delete: validates, coordinates, observes.
    async fn write(
        &self,
        op: &'static str,
        span: tracing::Span,
        sent: Sent,
    ) -> Result<Written, GeokvError> {
        let c = self.common(sent.options)?;
        let (keyspace, key) = (sent.keyspace, sent.key);
        self.check_key(&keyspace, &key)?;
        let context = CausalContext::decode_for(&sent.context, &keyspace, &key)?;
        let started = Instant::now();
        let mutation = Mutation {
            keyspace,
            key: Bytes::from(key),
            value: sent.value.map(Bytes::from),
            context,
        };
        let (keyspace, key) = (mutation.keyspace.clone(), mutation.key.clone());
        let res = self
            .coordinator
            .write(WriteRequest {
                mutation,
                level: c.level,
                explicit: c.explicit,
                timeout: c.timeout,
            })
            .instrument(span)
            .await;
        observe(op, c.level, started, &res);
        let out = res?;
        Ok(Written {
            context: out.context.encode_for(&keyspace, &key),
            acks: out.acks,
            hints: out.hints,
        })
    }

    fn check_value(&self, value: &[u8]) -> Result<(), GeokvError> {
        if value.len() > self.limits.max_value_bytes {
            return Err(GeokvError::InvalidArgument(format!(
                "value is {} bytes; the limit is {} bytes",
                value.len(),
                self.limits.max_value_bytes
            )));
        }
        Ok(())
    }
}

/// A put or delete as the client sent it, before validation.
struct Sent {
    keyspace: String,
    key: Vec<u8>,
    value: Option<Vec<u8>>,
    context: Vec<u8>,
    options: Option<RequestOptions>,
}

/// A write as the client is told it: its new context (encoded), the
/// replica acknowledgements and the hints stored.
struct Written {
    context: Vec<u8>,
    acks: u32,
    hints: u32,
}

fn observe<T>(
    op: &'static str,
    level: ConsistencyLevel,
    started: Instant,
    res: &Result<T, GeokvError>,
) {
    let outcome = match res {
        Ok(_) => "ok".to_string(),
        Err(e) => format!("{:?}", e.code()),
    };
    metrics::counter!("geokv_requests_total", "op" => op, "level" => level.name(), "outcome" => outcome)
        .increment(1);
    metrics::histogram!("geokv_request_seconds", "op" => op, "level" => level.name())
        .record(started.elapsed().as_secs_f64());
}

fn span_for<T>(name: &'static str, req: &Request<T>) -> tracing::Span {
    let span = tracing::info_span!("kv", rpc = name);
    crate::telemetry::adopt_remote_parent(&span, req.metadata());
    span
}

#[tonic::async_trait]
impl Kv for KvService {
    async fn get(&self, req: Request<GetRequest>) -> Result<Response<GetResponse>, Status> {
        let span = span_for("get", &req);
        self.authorize(&req, &req.get_ref().keyspace, Perm::Read)?;
        let r = req.into_inner();
        let c = self.common(r.options)?;
        self.check_key(&r.keyspace, &r.key)?;
        let started = Instant::now();
        let key = Bytes::from(r.key);
        let res = self
            .coordinator
            .read(ReadRequest {
                keyspace: r.keyspace.clone(),
                key: key.clone(),
                level: c.level,
                explicit: c.explicit,
                timeout: c.timeout,
            })
            .instrument(span)
            .await;
        observe("get", c.level, started, &res);
        let out = res?;
        Ok(Response::new(convert::get_response(out, &r.keyspace, &key)))
    }

    async fn put(&self, req: Request<PutRequest>) -> Result<Response<PutResponse>, Status> {
        let span = span_for("put", &req);
        self.authorize(&req, &req.get_ref().keyspace, Perm::Write)?;
        let r = req.into_inner();
        self.check_value(&r.value)?;
        let Written {
            context,
            acks,
            hints,
        } = self
            .write(
                "put",
                span,
                Sent {
                    keyspace: r.keyspace,
                    key: r.key,
                    value: Some(r.value),
                    context: r.context,
                    options: r.options,
                },
            )
            .await?;
        Ok(Response::new(PutResponse {
            context,
            acks,
            hints,
        }))
    }

    async fn delete(
        &self,
        req: Request<DeleteRequest>,
    ) -> Result<Response<DeleteResponse>, Status> {
        let span = span_for("delete", &req);
        self.authorize(&req, &req.get_ref().keyspace, Perm::Write)?;
        let r = req.into_inner();
        let Written {
            context,
            acks,
            hints,
        } = self
            .write(
                "delete",
                span,
                Sent {
                    keyspace: r.keyspace,
                    key: r.key,
                    value: None,
                    context: r.context,
                    options: r.options,
                },
            )
            .await?;
        Ok(Response::new(DeleteResponse {
            context,
            acks,
            hints,
        }))
    }

    async fn status(
        &self,
        req: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        // Authenticated by the layer (or a node's certificate); checked
        // again in case the service is ever served without it.
        let passed = req.extensions().get::<Principal>().is_some() || auth::from_node(&req);
        if self.auth.enabled() && !passed {
            return Err(auth::status(AuthError::Missing));
        }
        Ok(Response::new(convert::status(
            &self.coordinator.cluster().current().ring,
            &self.gossiper,
            &self.local_id,
        )))
    }
}
