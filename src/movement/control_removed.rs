//! The end of a node whose removal the layout decided, on its
//! [`Control`] (review-elastic2-30 M1, review-recover31 M1): with no
//! decommission running, [`Control::on_removed`] hands the queues over
//! (`leave_end::after_removal`) and stops the node; a decommission or an
//! end that the node's stop interrupts is recorded as such
//! (`until_stopped`), and [`Control::ended`] tells the node's exit how far
//! it got.
//!
//! Must not decide the removal nor change the layout.

use std::future::Future;
use std::sync::Arc;

use super::leave::{self, LeaveError};
use super::{Control, Ended};
use crate::movement::leave_end::after_removal;

impl Control {
    /// How this node ended after its removal was decided, if it did: the
    /// node then exits with `NodeError::Removed` ([`Ended::HandedOver`])
    /// or `NodeError::RemovedBeforeHandOver` ([`Ended::Stopped`]).
    pub fn ended(&self) -> Option<Ended> {
        *self.ended.lock()
    }

    /// The end of a node whose removal the layout decided (`removenode`:
    /// `Remove{me}`, or me Removed) while no decommission runs here (one
    /// that runs ends so itself): hands the queues over, then stops the
    /// node, which exits with `NodeError::Removed` (review-elastic2-30 M1).
    pub async fn on_removed(self: Arc<Self>) {
        if std::mem::replace(&mut *self.running.lock(), true) {
            return;
        }
        let removed = LeaveError::Removed(self.cluster.me().to_string());
        self.clone().until_stopped(self.end_removed(removed)).await
    }

    /// Runs `work` until it ends or the node stops. Stopped before its
    /// end, a leave resumes on the next start; but once the removal of
    /// this node is decided, the node still ends as removed (exit 3, not
    /// 0): [`Ended::Stopped`] unless its queues were handed over, so its
    /// error says to start it again, which hands them over and stops.
    pub(super) async fn until_stopped(self: Arc<Self>, work: impl Future<Output = ()>) {
        let mut stopping = self.stop.subscribe();
        tokio::select! {
            () = work => {}
            _ = stopping.wait_for(|v| *v) => {
                *self.running.lock() = false;
                let me = self.cluster.me();
                if self.ended() == Some(Ended::HandedOver) {
                    tracing::info!(node = %me, "the node is stopping: removed, its queues handed over");
                } else if leave::still_leaving(&self.cluster.current().layout, me).is_err() {
                    tracing::error!(node = %me, "the node is stopping before its queues were handed over after its removal (exit 3, or 1 when a task failed first): start it again to hand them over, before wiping it");
                    *self.ended.lock() = Some(Ended::Stopped);
                    self.status.lock().detail = "removed; stopped before its queues were handed over".into();
                } else {
                    tracing::warn!("the node is stopping: decommission interrupted; it resumes on the next start");
                    self.status.lock().detail = "interrupted by the node's shutdown".into();
                }
            }
        }
    }

    /// Hands the queues over after the removal (`removed`, the error the
    /// leave met), marks the node removed and stops it.
    pub(super) async fn end_removed(self: Arc<Self>, removed: LeaveError) {
        let report = |phase: &str, detail: String| self.set(phase, detail);
        let e = after_removal(&*self.hints, &self.cluster, removed, &report).await;
        tracing::error!(node = %self.cluster.me(), error = %e, "queues handed over: the node stops (exit 3)");
        *self.ended.lock() = Some(Ended::HandedOver);
        self.stop_after_a_while().await
    }
}
