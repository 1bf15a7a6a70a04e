//! [`Mutation`]: one write (a put or a delete) as it travels api →
//! coordinator → replica → stream: the key, its keyspace, the value or
//! tombstone and the client's causal context. Once the coordinating replica
//! has advanced the key's clock, [`Minted`] carries it on with the record
//! that resulted, its encoding and the write's dot. [`Along`] is what the
//! coordinating replica commits in the same atomic batch as the update
//! (`hints::commit` owns that batch): an entry in the stream of every
//! remote datacenter (urgent for the [`Awaited`] ones) and an intent for
//! each other local replica.
//!
//! Must not: do I/O, or decide where a write goes (the coordinator does).

use crate::topology::NodeIdx;
use crate::version::{CausalContext, Dot, SiblingSet};
use bytes::Bytes;

/// A put (`value: Some`) or delete (`value: None`) of one key.
#[derive(Debug, Clone)]
pub struct Mutation {
    pub keyspace: String,
    pub key: Bytes,
    /// The new value; `None` writes a tombstone.
    pub value: Option<Bytes>,
    /// What the client had seen of the key: the siblings it replaces.
    pub context: CausalContext,
}

impl Mutation {
    /// Whether this writes a tombstone.
    pub fn is_delete(&self) -> bool {
        self.value.is_none()
    }
}

/// A mutation as its coordinating replica minted it: the key's full record
/// after the update (what every other replica merges) and the write's dot.
#[derive(Debug, Clone)]
pub struct Minted {
    pub mutation: Mutation,
    /// The key's record after the update.
    pub record: SiblingSet,
    /// `record` in its binary format (sent to the other replicas: one
    /// buffer shared by every replica's request).
    pub encoded: bytes::Bytes,
    /// The dot the update minted.
    pub dot: Dot,
}

impl Minted {
    /// `mutation` minted as `dot`, with the key's `record` after it.
    pub fn new(mutation: Mutation, record: SiblingSet, dot: Dot) -> Self {
        let mut encoded = Vec::with_capacity(record.encoded_len());
        record.encode(&mut encoded);
        Minted {
            mutation,
            record,
            encoded: encoded.into(),
            dot,
        }
    }

    pub fn keyspace(&self) -> &str {
        &self.mutation.keyspace
    }

    pub fn key(&self) -> &[u8] {
        &self.mutation.key
    }
}

/// What commits atomically with a mutation on its coordinating replica.
#[derive(Debug, Clone, Default)]
pub struct Along {
    /// The other replicas of our datacenter the record is sent to directly:
    /// each gets an intent (a node hint deleted when it acknowledges).
    pub local: Vec<(NodeIdx, String)>,
    /// Every remote datacenter: its stream gets the record.
    pub remote_dcs: Vec<String>,
    /// The remote datacenters whose acknowledgement the level waits for:
    /// their entry goes to the urgent lane.
    pub wait_for: Vec<Awaited>,
}

/// A remote datacenter whose acknowledgement a write waits for, and how
/// many of its replicas must have applied the entry before the receiver
/// acknowledges it (the level's count there; the receiver caps it at the
/// datacenter's replicas).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Awaited {
    pub dc: String,
    pub need: u32,
    /// The pending replicas of the key there that `need` counts (the
    /// coordinator's view); `None`: no adjustment by the receiver.
    pub pending: Option<u32>,
}

/// Whether `dc` is among the awaited datacenters.
pub fn awaits(wait_for: &[Awaited], dc: &str) -> bool {
    wait_for.iter().any(|w| w.dc == dc)
}
