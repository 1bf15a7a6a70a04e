//! [`NotServing`]: why this node takes no requests (`Cluster::serving`:
//! its storage refuses writes, it has left, a peer's seed differs), which
//! the client port answers UNAVAILABLE, `geokv-applied: no`, through
//! [`GeokvError::NotReady`]. Here, not in `view`, so the error stays typed
//! without an import cycle (review-tidy34 L5). Must not decide when a node
//! is not serving (`view::Cluster::serving` does).

use super::GeokvError;
use crate::layout::NodeState;

/// Why this node takes no requests (`Cluster::serving`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotServing {
    /// It has left the cluster (decommissioned or removed): clients go to
    /// another node while it drains its queues.
    #[error("node {node} has left the cluster ({state:?}) and takes no more requests; send them to another node")]
    Left { node: String, state: NodeState },
    /// It is on its seed layout and `peer` advertised another seed: the
    /// two were started from different topology files.
    #[error("not ready: peer {peer} was started from another topology file (its seed layout v1 differs from this node's); start every node from the same file, or propose a layout change (e.g. create a keyspace) so one version supersedes both")]
    SeedMismatch { peer: String },
    /// Its storage latched a failed write or sync to disk
    /// (`EngineError::SyncFailed`: a WAL write or fsync, a flush, a
    /// corruption RocksDB stops writes for) and refuses every write until
    /// the process restarts (`geokv_engine_writes_refused`): clients go to
    /// another node, and peers, told by gossip, send it no writes.
    #[error("not ready: engine writes refused: restart the node once its disk is fixed or has room (a write or sync to disk failed: {reason}); send requests to another node")]
    WritesRefused { reason: String },
}

/// The client port's answer: UNAVAILABLE naming why, `geokv-applied: no`
/// (refused before anything was sent).
impl From<NotServing> for GeokvError {
    fn from(e: NotServing) -> Self {
        GeokvError::NotReady(e)
    }
}
