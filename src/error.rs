//! Typed errors of a node and the **single** mapping to `tonic::Status`.
//!
//! Every error a client can see is built here, so codes stay consistent.
//! The code says whether a write may have been applied:
//!
//! | code                | when                                          | applied?  |
//! |---------------------|-----------------------------------------------|-----------|
//! | `UNAVAILABLE`       | too few live replicas known before sending;   | no        |
//! |                     | this node not ready (`NotServing`: its        |           |
//! |                     | storage refuses writes, it left, seed differs)|           |
//! | `DEADLINE_EXCEEDED` | sent; the level was not reached in time       | maybe     |
//! | `ABORTED`           | sent; replicas failed, or the replica that    | maybe     |
//! |                     | took a forwarded write failed before replying;|           |
//! |                     | a node that left refused a hint or record     |           |
//! | `FAILED_PRECONDITION` | level impossible for the keyspace; sibling cap | no     |
//! | `NOT_FOUND` / `INVALID_ARGUMENT` | unknown keyspace / bad input     | no        |
//! | `INTERNAL` / `DATA_LOSS` | a local fault                            | maybe     |
//! | `RESOURCE_EXHAUSTED` | shed at admission (`retry-after-ms` hint)    | no        |
//!
//! The internode port maps its refusals here too (a link cut by fault
//! injection: `UNAVAILABLE`; a peer that is not who it says:
//! `PERMISSION_DENIED`; a batched replica write past its deadline:
//! `DEADLINE_EXCEEDED`; a pushed layout not taken: `FAILED_PRECONDITION`;
//! a record or a layout Paxos message that does not decode:
//! `INVALID_ARGUMENT`; a batched read past its deadline:
//! `DEADLINE_EXCEEDED`, past the batch's answer budget:
//! `RESOURCE_EXHAUSTED`), all "applied: no"; an acceptor that could not
//! save its state: `INTERNAL`, "maybe". A forwarded write's replica answer
//! keeps its code ([`PeerCode`]). Outside this module only the api and
//! transport edges name `Status` or `Code` (the architecture test lists
//! them).
//!
//! Every status built here carries the metadata `geokv-applied` (`no` or
//! `maybe`, [`crate::proto::APPLIED_METADATA`]): a client or a forwarding
//! coordinator may resend a write elsewhere only on `no`. Messages name the
//! numbers and the datacenter. This module must not decide *when* an error
//! happens.

use crate::consistency::{ConsistencyError, ConsistencyLevel};
use crate::engine::EngineError;
use crate::version::{DecodeError, SiblingError};
use tonic::Status;

/// A peer's status code as it sent it. Only the single mapping
/// (here) turns it back into a gRPC code; callers ask it what
/// they need to know.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PeerCode(tonic::Code);

impl PeerCode {
    /// The peer refused for want of live replicas (or a cut link), so
    /// another one may see more.
    pub fn is_unavailable(self) -> bool {
        self.0 == tonic::Code::Unavailable
    }

    /// The peer refused the request as invalid (`INVALID_ARGUMENT`): it
    /// will refuse it again as it is (e.g. an auth state `clock_ahead`).
    pub fn is_invalid_argument(self) -> bool {
        self.0 == tonic::Code::InvalidArgument
    }

    /// The gRPC code, for the single mapping.
    pub fn grpc(self) -> tonic::Code {
        self.0
    }
}

impl From<tonic::Code> for PeerCode {
    fn from(code: tonic::Code) -> Self {
        PeerCode(code)
    }
}

/// As the code itself (`Unavailable`), as messages said before it was typed.
impl std::fmt::Debug for PeerCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.0, f)
    }
}

/// Errors of the request path (coordinator, replica, API).
#[derive(Debug, thiserror::Error)]
pub enum GeokvError {
    /// Too few replicas alive before anything was sent.
    #[error("{level}: {required} replica acknowledgement(s) required{scope} but only {alive} replica(s) alive")]
    Unavailable {
        level: String,
        required: u32,
        alive: u32,
        /// " in dc1" or "" for the whole ring.
        scope: String,
    },
    /// Sent, but not enough replicas answered before the deadline.
    /// `received` counts replica acknowledgements only (never hints).
    #[error("{level}: timed out after {timeout_ms} ms with {received} of {required} required acknowledgement(s){detail}{}", maybe_applied(.write))]
    Timeout {
        level: String,
        received: u32,
        required: u32,
        timeout_ms: u64,
        detail: String,
        /// A write (its message then says it may have been applied).
        write: bool,
    },
    /// Sent, and enough replicas failed that the level can no longer be met.
    #[error(
        "{level}: gave up with {received} of {required} required acknowledgement(s), as too many replicas failed for the rest: {detail}{}", maybe_applied(.write)
    )]
    QuorumFailed {
        level: String,
        received: u32,
        required: u32,
        detail: String,
        write: bool,
    },
    /// A forwarded write whose outcome is unknown: the replica it was sent
    /// to failed before answering.
    #[error("{0}; the write may have been applied")]
    MaybeApplied(String),
    /// A write forwarded to this node, which does not replicate the key
    /// (the two nodes disagree about the topology).
    #[error("this node does not replicate the key: {0}")]
    NotAReplica(String),
    /// A replica on a newer layout refused a write (or a read) planned on
    /// an older one whose targets miss a replica of the newer one (or that
    /// no longer replicates the key)
    /// (`view::stale_view`); nothing was written. The status carries
    /// `replica_version` in `geokv-layout-version`.
    #[error("request planned on layout v{planned_on}, this replica is on v{replica_version} and replicates the key differently; nothing was written or read")]
    StaleView {
        planned_on: u64,
        replica_version: u64,
    },
    /// The node is not ready to serve (`Cluster::serving`'s `NotServing`:
    /// its engine refuses writes, it has left, a peer's seed layout
    /// differs from its own); nothing was sent. Typed, so a caller can
    /// tell why (review-tidy34 L5).
    #[error("{0}")]
    NotReady(NotServing),
    /// The node had `limit` client requests in flight and shed this one
    /// before looking at it (`api::admission`); nothing was applied. The
    /// status carries `retry_after_ms` in `retry-after-ms`.
    #[error("node overloaded: {limit} client requests in flight (the limit); retry after {retry_after_ms} ms; nothing was applied")]
    Overloaded { limit: usize, retry_after_ms: u64 },
    /// The client port held its budget of request bytes in flight
    /// (`api::shed`): the request was refused from its headers, or while
    /// its body arrived, before it was decoded; nothing was applied. The
    /// status carries `retry_after_ms` in `retry-after-ms`.
    #[error("node overloaded: {limit_bytes} bytes of client requests in flight (the limit); retry after {retry_after_ms} ms; nothing was applied")]
    OverByteBudget {
        limit_bytes: usize,
        retry_after_ms: u64,
    },
    /// The caller's address held its share of the client port's bounds
    /// (`api::shed`): refused from the headers or while the body arrived,
    /// before it was decoded; nothing was applied. The status carries
    /// `retry_after_ms` in `retry-after-ms`.
    #[error("this client address has {limit} {what} in flight (its share of the node's bound); retry after {retry_after_ms} ms; nothing was applied")]
    AddressOverShare {
        what: &'static str,
        limit: usize,
        retry_after_ms: u64,
    },
    /// A client request ran past the client port's handler timeout
    /// (`api::shed`: a stalled body, a stuck handler) and was dropped.
    #[error("the request was dropped after {after_ms} ms (the client port's handler timeout); a write may have been applied")]
    HandlerTimedOut { after_ms: u64 },
    /// No data frame of a client request's body arrived for the client
    /// port's body timeout, and the body had not ended (`api::shed`); no
    /// handler had it, nothing was applied.
    #[error("no part of the request's body arrived for {after_ms} ms (the client port's body timeout, --client-body-timeout-ms); nothing was applied")]
    BodyTimedOut { after_ms: u64 },
    /// A client request's body was still arriving (a frame now and then)
    /// at the client port's handler timeout (`api::shed`); no handler had
    /// it, nothing was applied.
    #[error("the request's body had not ended after {after_ms} ms (the client port's handler timeout, --client-handler-timeout-ms); nothing was applied")]
    BodyUnfinished { after_ms: u64 },
    /// A client request's body alone passes the node's whole budget of
    /// request bytes in flight, or its address's share of it (`per`:
    /// "-per-address"; `api::shed`): it can never be admitted.
    #[error("the request is larger than the {limit_bytes} bytes of client requests this node holds in flight{whose} (--client-max-request-bytes-in-flight{per}); it can never be admitted; nothing was applied")]
    RequestOverByteBudget {
        limit_bytes: usize,
        whose: &'static str,
        per: &'static str,
    },
    /// This node has left the cluster and handed its hints and anti-entropy
    /// records over (`Hints::seal_if_handed_over`), so it stores none any
    /// more. Raised only once a write was minted or sent (a hint or record
    /// is what follows one), so never "nothing applied".
    #[error("this node has left the cluster and handed its hints and anti-entropy records over, so it stores no more; the write may have been applied")]
    HintsSealed,
    /// This node refuses calls on a link cut by fault injection (from the
    /// peer named, or on a stream); nothing was applied.
    #[error("link {from}cut (fault injection)")]
    LinkCut {
        /// "from dc1-n2 " or "" when the stream names no peer.
        from: String,
    },
    /// An internode caller is not who it says; nothing was done.
    #[error("{0}")]
    NotPermitted(String),
    /// A batched replica write whose deadline passed before it was
    /// applied: refused, nothing applied.
    #[error("the entry's deadline passed before it was applied")]
    Expired,
    /// A batched replica read whose deadline passed before it was read:
    /// refused, nothing read.
    #[error("the entry's deadline passed before it was read")]
    ReadExpired,
    /// A batched replica read past the batch's answer budget: refused,
    /// nothing read; the caller reads it alone.
    #[error("over the batch's answer budget: read it alone")]
    OverAnswerBudget,
    /// A layout pushed by a peer that this node does not take.
    #[error("layout refused: {0}")]
    LayoutRefused(String),
    /// This node is stopping and took no more writes (nothing was written).
    #[error("this node is shutting down; nothing was written")]
    ShuttingDown,
    /// The level can never be met for this keyspace from this datacenter.
    #[error(transparent)]
    Consistency(#[from] ConsistencyError),
    #[error("unknown keyspace '{0}'")]
    UnknownKeyspace(String),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("malformed causal context: {0}")]
    BadContext(#[from] DecodeError),
    #[error(transparent)]
    Siblings(#[from] SiblingError),
    #[error("storage: {0}")]
    Engine(#[from] EngineError),
    /// The answer of the replica a write was forwarded to, passed through
    /// with its code; `nothing_applied` when that replica said so.
    #[error("{message}")]
    Peer {
        code: PeerCode,
        message: String,
        nothing_applied: bool,
    },
    #[error("internal: {0}")]
    Internal(String),
}

impl GeokvError {
    /// Timeout error for `level`.
    pub fn timeout(
        level: ConsistencyLevel,
        received: u32,
        required: u32,
        timeout_ms: u64,
        detail: String,
        write: bool,
    ) -> Self {
        GeokvError::Timeout {
            level: level.name().to_string(),
            received,
            required,
            timeout_ms,
            detail,
            write,
        }
    }
}

fn maybe_applied(write: &bool) -> &'static str {
    if *write {
        "; the write may have been applied"
    } else {
        ""
    }
}

impl From<GeokvError> for Status {
    fn from(e: GeokvError) -> Status {
        metrics::counter!("geokv_errors_total", "code" => format!("{:?}", e.code())).increment(1);
        let mut status = Status::new(e.code(), e.to_string());
        let applied = if e.nothing_applied() { "no" } else { "maybe" };
        status.metadata_mut().insert(
            crate::proto::APPLIED_METADATA,
            tonic::metadata::MetadataValue::from_static(applied),
        );
        if let GeokvError::Overloaded { retry_after_ms, .. }
        | GeokvError::OverByteBudget { retry_after_ms, .. }
        | GeokvError::AddressOverShare { retry_after_ms, .. } = e
        {
            status.metadata_mut().insert(
                crate::proto::RETRY_AFTER_METADATA,
                tonic::metadata::MetadataValue::from(retry_after_ms),
            );
        }
        if let GeokvError::StaleView {
            replica_version, ..
        } = e
        {
            status.metadata_mut().insert(
                crate::proto::LAYOUT_VERSION_METADATA,
                tonic::metadata::MetadataValue::from(replica_version),
            );
        }
        status
    }
}

mod codes;
mod not_serving;
pub use not_serving::NotServing;
#[cfg(test)]
mod tests;
