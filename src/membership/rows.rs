//! The types the membership table speaks in: who a peer is
//! ([`PeerInfo`]), what a snapshot row, an up/down change and a digest
//! merge report, and why a table cannot be built. Plain data: must not hold
//! state or decide anything (that is `state.rs`).

use thiserror::Error;

use super::config::ConfigError;
use crate::topology::NodeInfo;

/// Who a node is and where it lives: the part of the topology membership
/// needs. Index order is the order given to [`Membership::new`]; the
/// [`Gossiper`](super::Gossiper) keeps it equal to `NodeIdx`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    /// Unique node id, as in the topology file and on the wire.
    pub id: String,
    /// Datacenter: decides which φ threshold applies.
    pub dc: String,
    /// Rack, reported in snapshots.
    pub rack: String,
}

impl From<&NodeInfo> for PeerInfo {
    fn from(n: &NodeInfo) -> Self {
        Self {
            id: n.id.clone(),
            dc: n.dc.clone(),
            rack: n.rack.clone(),
        }
    }
}

/// The table could not be built. Fatal: fix the topology or configuration.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum MembershipError {
    /// The knobs are invalid.
    #[error("invalid membership config: {0}")]
    Config(#[from] ConfigError),
    /// Our own id is not in the topology.
    #[error("node {0:?} is not in the topology")]
    SelfNotInTopology(String),
    /// Two nodes share an id.
    #[error("node id {0:?} appears twice in the topology")]
    DuplicateNode(String),
    /// Generation 0 means "never heard of" on the wire.
    #[error("generation must be > 0 (use the start time in ms)")]
    ZeroGeneration,
    /// The node list is not `Topology::nodes()` in order, so table indices
    /// and `NodeIdx` would disagree.
    #[error("node {id:?} has index {idx} but is at position {position}")]
    IndexMismatch {
        /// The misplaced node.
        id: String,
        /// Its `NodeIdx`.
        idx: u32,
        /// Where it was in the list.
        position: usize,
    },
}

/// One row of [`Membership::snapshot`]. `generation == 0` means the node was
/// never heard from since we started.
#[derive(Clone, Debug, PartialEq)]
pub struct PeerStatus {
    /// Node id.
    pub id: String,
    /// Datacenter.
    pub dc: String,
    /// Rack.
    pub rack: String,
    /// The verdict at the snapshot's `now`.
    pub up: bool,
    /// φ at the snapshot's `now` (0 for ourselves).
    pub phi: f64,
    /// Highest heartbeat seen in `generation`.
    pub heartbeat: u64,
    /// Highest generation seen (its start time in ms), 0 if never heard.
    pub generation: u64,
}

/// An up/down change found by [`Membership::evaluate`].
#[derive(Clone, Debug, PartialEq)]
pub struct Transition {
    /// Node id.
    pub node: String,
    /// The new verdict.
    pub up: bool,
    /// φ when the verdict changed.
    pub phi: f64,
}

/// What one [`Membership::apply_digest`] changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MergeOutcome {
    /// Entries whose heartbeat advanced within the same generation.
    pub advanced: usize,
    /// Entries with a newer generation (restarts and first sightings).
    pub restarted: usize,
    /// Entries naming nodes not in our topology (ignored).
    pub unknown: usize,
}
