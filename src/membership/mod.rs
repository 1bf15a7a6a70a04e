//! Gossip membership and the φ-accrual failure detector: which nodes are up.
//!
//! Owns heartbeats, their propagation by gossip, and the up/down verdicts
//! the coordinator and hints consult. Must not own transport (the node wires
//! `Gossiper::run`'s `exchange` to the internode client) or topology (a
//! static input; membership never adds or removes nodes).
//!
//! ```text
//!   every interval:  Gossiper::run ─▶ Membership::tick (own heartbeat += 1, verdicts, gauges)
//!                                 ─▶ select::choose (1 local + 1 remote + maybe 1 down)
//!                                 ─▶ exchange(peer, digest) ─▶ peer's handle_digest ─▶ reply
//!                                 ─▶ Membership::apply_digest (max (generation, heartbeat))
//!                                         └▶ PhiDetector::heartbeat for each advance
//!   is_up(node)  ─▶ φ(now) ≤ phi_local | phi_remote
//!   is_ready(node) ─▶ its entry's not-ready bit (set from `Cluster::serving`)
//! ```
//!
//! | file | owns | pure? |
//! |---|---|---|
//! | `phi.rs` | one peer's inter-arrival window and φ | yes |
//! | `config.rs` | knobs, defaults, validation, derived values | yes |
//! | `rows.rs` | the table's plain types: peer info, snapshot rows, transitions, errors | yes |
//! | `state.rs` | the table: merge rule, digest, verdicts, snapshot | yes (time is an input) |
//! | `select.rs` | who to gossip with this round | yes (rng is an input) |
//! | `observe.rs` | metric names, gauges, transition counter and logs | — |
//! | `gossip.rs` | `Gossiper` handle, the round loop, the clock seam | no |
//! | `features.rs` | the feature bits a node advertises with its heartbeat | yes |

mod config;
pub mod features;
mod gossip;
mod liveness;
mod observe;
mod phi;
mod rows;
mod select;
mod state;

#[cfg(test)]
mod tests;

pub use config::{ConfigError, MembershipConfig};
pub use gossip::{Clock, Gossiper, ManualClock, MonotonicClock, ReadyProbe};
pub use liveness::{AlwaysUp, Liveness};
pub use observe::{PHI as PHI_GAUGE, TRANSITIONS as TRANSITIONS_COUNTER, UP as UP_GAUGE};
pub use phi::{phi_for_silence, silence_for_phi, PhiDetector, PhiParams};
pub use state::{Membership, MembershipError, MergeOutcome, PeerInfo, PeerStatus, Transition};
