//! Membership's metrics and transition logs: the metric names live here and
//! nowhere else. Must not decide anything; callers pass the verdicts in.
//! Without an installed `metrics` recorder these calls are no-ops.

use tracing::{info, warn};

/// Gauge, 1 if `node` is believed up, else 0.
pub const UP: &str = "geokv_membership_up";
/// Gauge, the current φ of `node`.
pub const PHI: &str = "geokv_membership_phi";
/// Counter of verdict changes of `node`, labelled `to` = "up" | "down".
pub const TRANSITIONS: &str = "geokv_membership_transitions_total";

/// Publishes the current verdict and φ of one node.
pub(super) fn publish(node: &str, up: bool, phi: f64) {
    metrics::gauge!(UP, "node" => node.to_owned()).set(if up { 1.0 } else { 0.0 });
    metrics::gauge!(PHI, "node" => node.to_owned()).set(phi);
}

/// Counts and logs one verdict change.
pub(super) fn transition(node: &str, up: bool, phi: f64) {
    let to = if up { "up" } else { "down" };
    metrics::counter!(TRANSITIONS, "node" => node.to_owned(), "to" => to).increment(1);
    if up {
        info!(node, phi, "membership: node is up");
    } else {
        warn!(node, phi, "membership: node is down");
    }
}
