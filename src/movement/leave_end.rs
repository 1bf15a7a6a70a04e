//! How a leave ends on the node that leaves: what it queued (hints for
//! peers, the inter-DC streams, its anti-entropy records) is handed over
//! before it stops, whether it left (Left) or its decommission became a
//! removal (`geokv removenode` while it was unreachable: audit11 D4), in
//! which case the node then stops with [`LeaveError::Removed`].
//!
//! Owns [`Queues`] (the seam over `Hints`), [`hand_queues_over`],
//! [`after_removal`] and [`follow_removal`], which ends a node whose
//! removal the layout decided that way whether or not a decommission runs
//! on it. Must not change the layout or deliver anything itself: hint
//! delivery, running beside it, does.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::control::Control;
use super::leave::{self, LeaveError};
use crate::hints::Hints;
use crate::view::Cluster;

/// What is left to hand over, as the end of a leave sees it (`Hints` on a
/// node).
pub trait Queues: Send + Sync {
    /// Entries (and, once the node is out, records) left; 0 also seals
    /// the queues once the node is out (nothing is taken after that).
    fn seal_if_handed_over(&self) -> impl Future<Output = u64> + Send;
    /// Entries left per queue label, for the status line.
    fn left_per_queue(&self) -> Vec<(String, u64)>;
}

impl Queues for Hints {
    fn seal_if_handed_over(&self) -> impl Future<Output = u64> + Send {
        Hints::seal_if_handed_over(self)
    }
    fn left_per_queue(&self) -> Vec<(String, u64)> {
        Hints::left_per_queue(self)
    }
}

/// How often the queues are looked at.
const POLL: Duration = Duration::from_millis(200);

/// Returns once nothing `queues` hold is left to hand over (sealed: a
/// record or hint a request still in flight writes after this is refused,
/// not left behind). With `until_out`, not before `cluster`'s view shows
/// this node out of the cluster (Left or Removed): a removal in progress
/// still has to finish, and only then are its records counted and handed
/// over and its queues sealed. `report` gets what it waits for.
pub async fn hand_queues_over(
    queues: &impl Queues,
    cluster: &Cluster,
    until_out: bool,
    report: &(dyn Fn(String) + Sync),
) {
    loop {
        // `out` first: a removal finishing between the two would otherwise
        // end this with the queues unsealed and the records not counted
        // (review-elastic2-30 M2). Out stays out, so the seal sees it too.
        let out = !until_out || cluster.current().has_left();
        let queued = queues.seal_if_handed_over().await;
        if queued == 0 && out {
            return;
        }
        let per: Vec<String> = (queues.left_per_queue().into_iter())
            .filter(|(_, n)| *n > 0)
            .map(|(q, n)| format!("{q}={n}"))
            .collect();
        report(match out {
            true => format!("{queued} left to hand over: {}", per.join(" ")),
            false => format!(
                "waiting for the removal of {} to finish; {queued} queued",
                cluster.me()
            ),
        });
        tokio::time::sleep(POLL).await;
    }
}

/// The end of a leave that became a removal (`removed`, the error the
/// leave met): hands the queues over as a node that has left does, so
/// nothing it queued is lost, then returns the error the node stops with.
/// `report` gets each phase and its detail (`draining`, then `failed`).
pub async fn after_removal(
    queues: &impl Queues,
    cluster: &Cluster,
    removed: LeaveError,
    report: &(dyn Fn(&str, String) + Sync),
) -> LeaveError {
    tracing::error!(node = %cluster.me(), error = %removed,
        "this node was removed: handing the queues over, then the node stops");
    hand_queues_over(queues, cluster, true, &|d| report("draining", d)).await;
    report("failed", removed.to_string());
    removed
}

/// Ends the node once the layout in force decides its removal
/// ([`leave::still_leaving`]: `Remove{me}`, or me Removed), whether it
/// learnt it at its start's catch-up (restarted while its removal was in
/// progress) or later: [`Control::on_removed`] (review-elastic2-30 M1).
pub async fn follow_removal(control: Arc<Control>, mut shutdown: watch::Receiver<bool>) {
    let mut views = control.cluster.subscribe();
    loop {
        let layout = views.borrow_and_update().layout.clone();
        if leave::still_leaving(&layout, control.cluster.me()).is_err() {
            return control.on_removed().await;
        }
        tokio::select! {
            r = views.changed() => if r.is_err() { return },
            _ = shutdown.wait_for(|v| *v) => return,
        }
    }
}

#[cfg(test)]
#[path = "tests_leave_end.rs"]
mod tests;
