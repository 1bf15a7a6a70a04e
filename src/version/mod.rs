//! Causality for geokv: dotted version vectors with full-state replication
//! (Riak 2.0's `dvv_enabled`). Pure: no I/O, no clocks, no locks.
//!
//! # Model
//! A key's stored state is a [`SiblingSet`]: a downward-closed
//! [`VersionVector`] (`actor → n` = dots `(actor, 1..=n)` seen) and the
//! concurrent [`Sibling`]s, each tagged with the [`Dot`] of the write that
//! made it. Actors are storage NODES ([`ActorId::from_node_id`]), never
//! clients, so clocks stay as small as the replica set.
//!
//! * **Write** — one replica, the coordinating replica, runs
//!   [`SiblingSet::update`] under a per-key lock (read-modify-write), so its
//!   own counter is contiguous. It drops the siblings the client's context
//!   covers and adds one new sibling.
//! * **Replicate** — the full resulting set is shipped to the other replicas,
//!   which [`SiblingSet::merge`] it (commutative, associative, idempotent:
//!   order and duplicates of deliveries do not matter; repair uses it too).
//! * **Read** — the client gets every sibling and [`SiblingSet::context`];
//!   writing back with that context resolves the siblings it saw.
//! * **Write's context** — a write returns [`CausalContext::after_write`]:
//!   the client's context plus the write's own dot, never the replica's
//!   whole clock (which also covers concurrent siblings the client was not
//!   shown). Writing again with it replaces exactly the client's own write.
//!
//! # Sibling cap
//! The coordinating replica REJECTS a write that would leave more than
//! `max_siblings` ([`DEFAULT_MAX_SIBLINGS`]) siblings, with
//! [`SiblingError::TooMany`] telling the client to resolve with a read's
//! context. An acknowledged write is never dropped: `merge` never applies the
//! cap, so concurrent writes at different replicas may briefly leave more
//! siblings than the cap; callers count that (metric), they don't truncate.
//!
//! # Tombstones
//! A delete is a sibling whose value is `None`. It takes part in causality
//! like any value (it overwrites what its context covers, and is concurrent
//! with what it doesn't), and it is KEPT: a key whose siblings are all
//! tombstones ([`SiblingSet::is_tombstone_only`]) reads as not found, but its
//! clock must survive so a stale replica cannot resurrect the old value.
//! Tombstone GC is future work, tied to repair (only safe once every replica
//! is known to have the tombstone).
//!
//! # Files
//! `actor.rs` ids and dots · `clock.rs` version vectors · `context.rs` the
//! client's causal context · `siblings.rs` update/merge · `codec.rs` the
//! versioned binary formats.
//!
//! Must not: do I/O, read clocks or take locks.

mod actor;
mod clock;
mod codec;
mod context;
mod context_codec;
mod siblings;

#[cfg(test)]
mod tests;

pub use actor::{ActorId, Dot};
pub use clock::{Causality, VersionVector};
pub use codec::{DecodeError, CONTEXT_FORMAT_VERSION, MAX_CONTEXT_COUNTER, RECORD_FORMAT_VERSION};
pub use context::CausalContext;
pub use context_codec::{key_fingerprint, MAX_CONTEXT_ACTORS, MAX_CONTEXT_DOTS};
pub use siblings::{Sibling, SiblingError, SiblingSet};

/// Default cap on siblings per key (see "Sibling cap" above).
pub const DEFAULT_MAX_SIBLINGS: usize = 64;
