//! [`Liveness`]: the question every request path asks of membership, "is
//! this node up?", as a trait so the coordinator, hints and repair can be
//! tested without gossip; and "does it take writes?". Must not decide
//! anything itself: the node answers them from the gossiper's φ verdicts
//! and the not-ready bits nodes gossip.

/// Answers "is this node up?"; fed by gossip and the failure detector.
pub trait Liveness: Send + Sync + 'static {
    /// Whether the node called `id` is believed alive now.
    fn is_up(&self, id: &str) -> bool;

    /// Whether the node called `id`, if up, takes writes: `false` once it
    /// gossiped that it refuses them until a restart (its storage latched
    /// a failed write or sync). Such a node still serves reads; writes
    /// count it out (review-tidy34 L4). Ready unless told otherwise.
    fn is_ready(&self, _id: &str) -> bool {
        true
    }
}

/// Every node is believed up (single-node tools and tests).
pub struct AlwaysUp;
impl Liveness for AlwaysUp {
    fn is_up(&self, _: &str) -> bool {
        true
    }
}
