//! Anti-entropy: Merkle trees over token ranges, compared between replicas
//! so only ranges that differ are streamed (the seeds' Merkle-tree repair,
//! Cassandra's `nodetool repair`, Riak's AAE).
//!
//! ```text
//! scheduler ── recorded ranges (meta "repair/…"), then every range we replicate
//!    │ plan:    which ranges, which pairs of replicas (local DC first, targets last)
//!    ▼
//! session ── Merkle leaves of both sides ─▶ diff: differing leaves → token sub-ranges
//!    │                                         (pure)
//!    ▼
//!  join ── merge join of both sides' pages ─▶ rows each side lacks ─▶ apply / ReplicaWrite
//! ```
//!
//! # Layout
//!
//! | file | owns | I/O |
//! |---|---|---|
//! | [`diff`] | leaf geometry, leaves → differing token sub-ranges (the leaves are hashed by `replica::merkle`) | no |
//! | [`join`] | the paged merge join deciding what each side lacks | no |
//! | [`plan`] | ranges to sweep, recorded-range records, session pairs | no |
//! | [`records`] | repair records and when each range was last swept (meta CF) | engine |
//! | [`session`] | one pairwise session: leaves, scans, merges | yes |
//! | [`scheduler`] (+ `recorded`: the recorded pass) | passes, the background schedule, metrics, `POST /repair` | yes |
//!
//! Must not: choose replicas for client requests or touch hint queues
//! (beyond deleting the repair records they leave).

pub mod diff;
pub mod error;
pub mod join;
pub mod plan;
pub mod records;
#[cfg(test)]
mod records_pending_tests;
pub mod scheduler;
pub mod session;

pub use diff::MAX_DEPTH;
pub use error::RepairError;
pub use scheduler::{Repair, RepairConfig, Summary};
pub use session::{SessionIo, SessionLimits};
