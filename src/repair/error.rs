//! Why a repair session or pass failed. A failed session leaves its range
//! (and any record for it) to the next pass; nothing is lost.
//!
//! Must not: decide what a failure means for a pass (the scheduler does).

use super::diff::DiffError;
use crate::engine::EngineError;
use crate::error::GeokvError;
use crate::replica::handle::HandleError;
use crate::ring::RingError;
use crate::transport::TransportError;

/// A failed repair step.
#[derive(Debug, thiserror::Error)]
pub enum RepairError {
    /// Unknown keyspace or empty ring: fatal for the request.
    #[error(transparent)]
    Ring(#[from] RingError),
    /// Reading our engine (leaves, scans, records) failed.
    #[error("local storage: {0}")]
    Engine(#[from] EngineError),
    /// Merging a row into our replica failed.
    #[error("local apply: {0}")]
    Apply(#[from] GeokvError),
    /// A peer did not answer or refused.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// A peer answered something we cannot use (bad record, leaf count).
    #[error("{peer}: {detail}")]
    BadReply { peer: String, detail: String },
    /// Two trees of different shapes.
    #[error(transparent)]
    Diff(#[from] DiffError),
    /// A blocking task panicked or was cancelled.
    #[error("repair task: {0}")]
    Task(String),
    /// This node is not a member of the layout in force (joining before
    /// its first layout, or removed): it replicates nothing to repair.
    #[error("this node is not a member of layout v{version}: nothing to repair")]
    NotAMember { version: u64 },
    /// A `--dc` repair sent to a node of another datacenter (as Cassandra,
    /// the node repairing must be in the datacenter repaired).
    #[error(
        "this node is in datacenter {mine}, not {dc}: send a repair of {dc} to one of its nodes"
    )]
    OtherDc { dc: String, mine: String },
    /// A record for a keyspace whose name does not fit a record key.
    #[error(transparent)]
    KeyspaceTooLong(#[from] super::plan::KeyspaceTooLong),
}

impl From<HandleError> for RepairError {
    fn from(e: HandleError) -> Self {
        match e {
            HandleError::Local(e) => RepairError::Apply(e),
            HandleError::Storage(e) => RepairError::Engine(e),
            HandleError::Peer(e) => RepairError::Transport(e),
            HandleError::BadReply { peer, detail } => RepairError::BadReply { peer, detail },
            HandleError::Task(e) => RepairError::Task(e),
        }
    }
}

impl RepairError {
    /// True when the next pass may succeed (peer down, timeouts, busy disk).
    pub fn is_retriable(&self) -> bool {
        match self {
            RepairError::Transport(_) | RepairError::Task(_) => true,
            RepairError::Engine(e) => e.is_retriable(),
            RepairError::Apply(_) | RepairError::NotAMember { .. } => true,
            RepairError::Ring(_)
            | RepairError::BadReply { .. }
            | RepairError::Diff(_)
            | RepairError::OtherDc { .. }
            | RepairError::KeyspaceTooLong(_) => false,
        }
    }
}
