//! Typed failures of the hint subsystem's background hand-overs: stray
//! hints redirected to their new owners (`orphans`), anti-entropy records
//! handed to an adopter (`adopt::records`), the delivery tasks
//! (`deliver::Delivery::run_all`). What went wrong, for the log and the
//! node's task set.
//!
//! Must not: decide what a failure means for a queue (the callers keep the
//! entries and back off, or stop the node), or reach a client: none of
//! these runs on a request.

use crate::engine::EngineError;
use crate::error::GeokvError;
use crate::repair::RepairError;
use crate::transport::TransportError;

/// Why a hand-over pass stopped early. Whatever it had not taken out of
/// its queue stays there for the next pass.
#[derive(Debug, thiserror::Error)]
pub enum HandOverError {
    /// This node's hint store refused (sealed, stale view), or its
    /// blocking task failed.
    #[error(transparent)]
    Local(#[from] GeokvError),
    /// Reading or writing this node's engine failed.
    #[error(transparent)]
    Storage(#[from] EngineError),
    /// Loading the anti-entropy records failed.
    #[error(transparent)]
    Records(#[from] RepairError),
    /// The adopter could not be reached, or broke the stream.
    #[error(transparent)]
    Peer(#[from] TransportError),
    /// The adopter did not acknowledge the batch in time.
    #[error("no acknowledgement from {0}")]
    NoAck(String),
    /// No node to hand the records to.
    #[error("no live adopter")]
    NoAdopter,
    /// The adopter acknowledged the batch but took none of it.
    #[error("{to} took none of {offered} records")]
    NoneTaken { to: String, offered: usize },
    /// A delivery task panicked (the node's task set then stops the node).
    #[error("a delivery task {0}")]
    Panicked(#[from] tokio::task::JoinError),
}
