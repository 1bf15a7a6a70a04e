//! Actor identities and dots: who advanced a clock, and which event it was.
//!
//! Owns [`ActorId`] (a storage node, hashed to 64 bits) and [`Dot`] (one
//! event of one actor). Must not know about clocks, siblings or encodings.

use xxhash_rust::xxh3::xxh3_64;

/// A node that coordinates writes. Actors are storage NODES, never clients:
/// the number of actors in a clock is bounded by the replicas of a key.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ActorId(pub u64);

impl ActorId {
    /// The actor of a node: xxh3-64 of its node id (stable across restarts).
    pub fn from_node_id(id: &str) -> ActorId {
        ActorId(xxh3_64(id.as_bytes()))
    }
}

impl From<u64> for ActorId {
    fn from(v: u64) -> Self {
        ActorId(v)
    }
}

impl std::fmt::Display for ActorId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// One event: the `counter`-th write coordinated by `actor` (counters start at 1).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Dot {
    pub actor: ActorId,
    pub counter: u64,
}

impl Dot {
    pub fn new(actor: ActorId, counter: u64) -> Dot {
        Dot { actor, counter }
    }
}

impl std::fmt::Display for Dot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "({}, {})", self.actor, self.counter)
    }
}
