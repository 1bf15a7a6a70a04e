//! The single mapping's table ([`super`]): the gRPC code of each
//! [`GeokvError`] and whether it provably applied nothing (which decides
//! `geokv-applied: no`). Must not: build a `Status` (`super`'s `From`) or
//! decide when an error happens.

use super::GeokvError;
use crate::engine::EngineError;
use crate::version::SiblingError;
use tonic::Code;

impl GeokvError {
    /// The gRPC code this error maps to.
    pub fn code(&self) -> Code {
        match self {
            // NotAReplica: the two nodes' views differ (a layout change in
            // flight); another replica may take the write, so the forwarder
            // tries the next one (it does for UNAVAILABLE + applied: no).
            GeokvError::Unavailable { .. }
            | GeokvError::ShuttingDown
            | GeokvError::NotReady(_)
            | GeokvError::NotAReplica(_)
            | GeokvError::LinkCut { .. } => Code::Unavailable,
            GeokvError::NotPermitted(_) => Code::PermissionDenied,
            GeokvError::Timeout { .. }
            | GeokvError::HandlerTimedOut { .. }
            | GeokvError::BodyTimedOut { .. }
            | GeokvError::BodyUnfinished { .. }
            | GeokvError::Expired
            | GeokvError::ReadExpired => Code::DeadlineExceeded,
            GeokvError::Overloaded { .. }
            | GeokvError::OverByteBudget { .. }
            | GeokvError::AddressOverShare { .. }
            | GeokvError::OverAnswerBudget => Code::ResourceExhausted,
            GeokvError::Siblings(SiblingError::ContextAhead { .. }) => Code::InvalidArgument,
            GeokvError::QuorumFailed { .. }
            | GeokvError::MaybeApplied(_)
            | GeokvError::HintsSealed => Code::Aborted,
            GeokvError::Consistency(_)
            | GeokvError::Siblings(_)
            | GeokvError::StaleView { .. }
            | GeokvError::LayoutRefused(_) => Code::FailedPrecondition,
            GeokvError::UnknownKeyspace(_) => Code::NotFound,
            GeokvError::InvalidArgument(_)
            | GeokvError::BadContext(_)
            | GeokvError::RequestOverByteBudget { .. } => Code::InvalidArgument,
            GeokvError::Engine(e) => engine_code(e),
            GeokvError::Peer { code, .. } => code.grpc(),
            GeokvError::Internal(_) => Code::Internal,
        }
    }

    /// Provably nothing was written anywhere: the request failed before it
    /// was sent to a replica, or a replica refused it before writing. Only
    /// then may a write be sent again (elsewhere) without creating a second
    /// version.
    pub fn nothing_applied(&self) -> bool {
        match self {
            GeokvError::Unavailable { .. }
            | GeokvError::ShuttingDown
            | GeokvError::NotReady(_)
            | GeokvError::Consistency(_)
            | GeokvError::UnknownKeyspace(_)
            | GeokvError::InvalidArgument(_)
            | GeokvError::BadContext(_)
            | GeokvError::Siblings(_)
            | GeokvError::StaleView { .. }
            | GeokvError::Overloaded { .. }
            | GeokvError::OverByteBudget { .. }
            | GeokvError::RequestOverByteBudget { .. }
            | GeokvError::AddressOverShare { .. }
            | GeokvError::BodyTimedOut { .. }
            | GeokvError::BodyUnfinished { .. }
            | GeokvError::NotAReplica(_)
            | GeokvError::LinkCut { .. }
            | GeokvError::NotPermitted(_)
            | GeokvError::Expired
            | GeokvError::ReadExpired
            | GeokvError::OverAnswerBudget
            | GeokvError::LayoutRefused(_) => true,
            GeokvError::Engine(e) => matches!(
                e,
                EngineError::KeyTooLarge { .. } | EngineError::ValueTooLarge { .. }
            ),
            GeokvError::Peer {
                nothing_applied, ..
            } => *nothing_applied,
            GeokvError::Timeout { .. }
            | GeokvError::HandlerTimedOut { .. }
            | GeokvError::QuorumFailed { .. }
            | GeokvError::MaybeApplied(_)
            | GeokvError::HintsSealed
            | GeokvError::Internal(_) => false,
        }
    }
}

/// The gRPC code of a storage failure, the same at the client API and the
/// internode (replica) port. Only the client's own oversized input is its
/// fault; corruption is data loss; everything else, a stall or a closing
/// engine included, stays INTERNAL as before the engine errors were typed
/// (the client treats INTERNAL as "may have been applied").
fn engine_code(e: &EngineError) -> Code {
    match e {
        EngineError::KeyTooLarge { .. } | EngineError::ValueTooLarge { .. } => {
            Code::InvalidArgument
        }
        EngineError::Corrupt { .. } => Code::DataLoss,
        EngineError::InvalidKeyspace { .. }
        | EngineError::InvalidRecord { .. }
        | EngineError::Busy(_)
        | EngineError::Closed(_)
        | EngineError::InvalidArgument(_)
        | EngineError::Backend(_)
        | EngineError::SyncFailed(_)
        | EngineError::Io(_) => Code::Internal,
    }
}
