//! This node's own leave as its views show it, on its [`Control`]
//! (review-cancel33 L1): a leave of this node that the layout in force
//! shows, not being cancelled, while no decommission runs here, is resumed
//! ([`Control::resume`]): at start-up (the layout on disk) and at every
//! view installed later. A leave chosen while the node was down (it
//! crashed after proposing it, before installing it) reaches it through
//! the layout sync after a start on a Normal layout; a proposal that
//! failed here (a timeout) may be applied later too.
//!
//! Must not begin a leave (propose) nor drive one: `Control::run` does.

use std::sync::Arc;

use tokio::sync::watch;

use super::leave::{self, LeaveError};
use super::{Control, Status};
use crate::layout::{Layout, Movement};

impl Control {
    /// On a layout that shows this node's leave: resumes it in the
    /// background, and never begins one (`leave::resume`): a cancel chosen
    /// while the node was down may have reached it since
    /// (review-cancel32b M1), then it is [`LeaveError::NotLeaving`].
    pub async fn resume(self: &Arc<Self>) -> Result<Status, LeaveError> {
        let began = leave::resume(&self.cluster, self.cluster.me())?;
        Ok(self.run(began))
    }

    /// Resumes this node's leave at each view that shows it, as the module
    /// doc says, until `shutdown`. Proposes nothing.
    pub async fn follow_own_leave(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let me = self.cluster.me().to_string();
        let mut views = self.cluster.subscribe();
        loop {
            let layout = views.borrow_and_update().layout.clone();
            if to_resume(&layout, &me) && !*self.running.lock() {
                match self.resume().await {
                    Ok(_) => {}
                    // Cancelled meanwhile (review-cancel32b M1).
                    Err(e @ LeaveError::NotLeaving(_)) => {
                        tracing::info!(error = %e, "no decommission to resume")
                    }
                    Err(e) => tracing::error!(error = %e, "resuming the decommission"),
                }
            }
            tokio::select! {
                r = views.changed() => if r.is_err() { return },
                _ = shutdown.wait_for(|v| *v) => return,
            }
        }
    }
}

/// Whether `layout` shows `me`'s leave, not being cancelled (a cancel's
/// end is the running loop's or the cancel handler's).
fn to_resume(layout: &Layout, me: &str) -> bool {
    let mine = |m: &Movement| matches!(m, Movement::Leave { node } if node == me);
    layout.movements.values().any(mine) && !leave::cancelled(layout, me)
}
