//! Typed errors of a node and the **single** mapping to `tonic::Status`.
//!
//! Every error a client can see is built here, so codes stay consistent:
//! too few live replicas known up front → `UNAVAILABLE`; acknowledgements not
//! received in time → `DEADLINE_EXCEEDED`; a level impossible for the keyspace
//! → `FAILED_PRECONDITION`; unknown keyspace → `NOT_FOUND`; oversized or
//! malformed input → `INVALID_ARGUMENT`. Messages name the numbers and the
//! datacenter. This module must not decide *when* an error happens.

use crate::coordinator::consistency::{ConsistencyError, ConsistencyLevel};
use crate::engine::EngineError;
use crate::version::{DecodeError, SiblingError};
use tonic::{Code, Status};

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
    #[error("{level}: timed out after {timeout_ms} ms with {received} of {required} required acknowledgement(s){detail}")]
    Timeout {
        level: String,
        received: u32,
        required: u32,
        timeout_ms: u64,
        detail: String,
    },
    /// Enough replicas failed that the level can no longer be met.
    #[error(
        "{level}: {received} of {required} required acknowledgement(s); replicas failed: {detail}"
    )]
    QuorumFailed {
        level: String,
        received: u32,
        required: u32,
        detail: String,
    },
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
    /// A replica refused the request; its code is passed through.
    #[error("{message}")]
    Refused { code: Code, message: String },
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
    ) -> Self {
        GeokvError::Timeout {
            level: level.name().to_string(),
            received,
            required,
            timeout_ms,
            detail,
        }
    }

    /// The gRPC code this error maps to.
    pub fn code(&self) -> Code {
        match self {
            GeokvError::Unavailable { .. } | GeokvError::QuorumFailed { .. } => Code::Unavailable,
            GeokvError::Timeout { .. } => Code::DeadlineExceeded,
            GeokvError::Siblings(SiblingError::ContextAhead { .. }) => Code::InvalidArgument,
            GeokvError::Consistency(_) | GeokvError::Siblings(_) => Code::FailedPrecondition,
            GeokvError::UnknownKeyspace(_) => Code::NotFound,
            GeokvError::InvalidArgument(_) | GeokvError::BadContext(_) => Code::InvalidArgument,
            GeokvError::Engine(e) => match e {
                EngineError::KeyTooLarge { .. } | EngineError::ValueTooLarge { .. } => {
                    Code::InvalidArgument
                }
                EngineError::Corrupt { .. } => Code::DataLoss,
                _ => Code::Internal,
            },
            GeokvError::Refused { code, .. } => *code,
            GeokvError::Internal(_) => Code::Internal,
        }
    }
}

impl From<GeokvError> for Status {
    fn from(e: GeokvError) -> Status {
        metrics::counter!("geokv_errors_total", "code" => format!("{:?}", e.code())).increment(1);
        Status::new(e.code(), e.to_string())
    }
}
