//! [`Liveness`]: the question every request path asks of membership, "is
//! this node up?", as a trait so the coordinator, hints and repair can be
//! tested without gossip. Must not decide anything itself: the node answers
//! it from the gossiper's φ verdicts.

use crate::topology::NodeIdx;

/// Answers "is this node up?"; fed by gossip and the failure detector.
pub trait Liveness: Send + Sync + 'static {
    /// Whether `node` is believed alive now.
    fn is_up(&self, node: NodeIdx) -> bool;
}

/// Every node is believed up (single-node tools and tests).
pub struct AlwaysUp;
impl Liveness for AlwaysUp {
    fn is_up(&self, _: NodeIdx) -> bool {
        true
    }
}
