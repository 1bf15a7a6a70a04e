//! This node's own leave as its views show it, on its [`Control`]
//! (review-cancel33 L1): a leave of this node that the layout in force
//! shows, not being cancelled, while no decommission runs here, is resumed
//! ([`Control::resume`]): at start-up (the layout on disk) and at every
//! view installed later. A leave chosen while the node was down (it
//! crashed after proposing it, before installing it) reaches it through
//! the layout sync after a start on a Normal layout; a proposal that
//! failed here (a timeout) may be applied later too. A leave whose cancel
//! is half done (past the switch) when the node starts is ended as the
//! cancel handler ends one, so the status shows the cancel, not `idle`.
//!
//! Must not begin a leave (propose) nor drive one (`Control::run` does;
//! a cancel's end is `Control::cancelled`).

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
            if !*self.running.lock() {
                self.on_view(&layout, &me).await;
            }
            tokio::select! {
                r = views.changed() => if r.is_err() { return },
                _ = shutdown.wait_for(|v| *v) => return,
            }
        }
    }

    /// What a view `layout` asks of a node running no decommission: a
    /// leave of its own to resume; or, cancelled past the switch (step one
    /// of two: the layout says so) while the status knows of no leave (a
    /// restart in between), its end, as the cancel handler's: push cursors
    /// forgotten, `cancelling` shown, then `cancelled` once the second
    /// step arrives (`Control::status`).
    async fn on_view(self: &Arc<Self>, layout: &Layout, me: &str) {
        if !mine(layout, me) {
            return;
        }
        if leave::cancelled(layout, me) {
            if self.status().phase == "idle" {
                self.cancelled(me, false).await;
            }
            return;
        }
        match self.resume().await {
            Ok(_) => {}
            // Cancelled meanwhile (review-cancel32b M1).
            Err(e @ LeaveError::NotLeaving(_)) => {
                tracing::info!(error = %e, "no decommission to resume")
            }
            Err(e) => tracing::error!(error = %e, "resuming the decommission"),
        }
    }
}

/// Whether `layout` shows a leave of `me` (being cancelled or not).
fn mine(layout: &Layout, me: &str) -> bool {
    let leave = |m: &Movement| matches!(m, Movement::Leave { node } if node == me);
    layout.movements.values().any(leave)
}
