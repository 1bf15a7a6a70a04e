//! [`Liveness`]: the question every request path asks of membership, "is
//! this node up?", as a trait so the coordinator, hints and repair can be
//! tested without gossip. Must not decide anything itself: the node answers
//! it from the gossiper's φ verdicts.

/// Answers "is this node up?"; fed by gossip and the failure detector.
pub trait Liveness: Send + Sync + 'static {
    /// Whether the node called `id` is believed alive now.
    fn is_up(&self, id: &str) -> bool;
}

/// Every node is believed up (single-node tools and tests).
pub struct AlwaysUp;
impl Liveness for AlwaysUp {
    fn is_up(&self, _: &str) -> bool {
        true
    }
}
