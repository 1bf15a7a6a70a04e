//! `decommission --cancel` on the node's [`Control`] (audit11 D1): the
//! cancel's next step (`leave::cancel`), the phase a cancelled leave shows
//! (it follows the layout: the second step past the switch is the abort
//! driver's), and the running leave's end once it sees the cancel (its
//! push cursors forgotten). Also the leave count (`push::LeaveEpoch`): bumped
//! when a new leave is accepted, before its forget, and a pass of an
//! earlier leave `superseded` (its cancel missed) forgets again.
//!
//! Must not decide the cancel's steps (`leave::cancel`,
//! `Layout::cancel_leave`) nor drive the second one (`abort`).

use std::sync::atomic::Ordering;

use super::leave::{self, LeaveError};
use super::{Control, Status};

impl Control {
    /// `POST /decommission/cancel`: the next step of cancelling this
    /// node's decommission (`leave::cancel`); its running leave stops.
    pub async fn cancel(&self) -> Result<Status, LeaveError> {
        let me = self.cluster.me().to_string();
        match leave::cancel(&self.cluster, &me).await {
            // This node's own cancel, asked again: done already.
            Err(LeaveError::NotLeaving(_)) if self.status().phase == "cancelled" => {
                return Ok(self.status())
            }
            r => r?,
        };
        // A running leave sees it and stops (`leave_until_done`).
        let running = *self.running.lock();
        if !running && !self.cancelled(&me, false).await {
            // Removed meanwhile (its replacement finished, its removal
            // began: review-final33 L1), or begun again: that one goes
            // on; the answer must not say "cancelled" (review-final33 L4).
            leave::still_leaving(&self.cluster.current().layout, &me)?;
            return Err(LeaveError::BegunAgain(me));
        }
        // After the end's await: the layout the operator is shown.
        let (phase, detail) = self.cancel_phase(&me);
        Ok(Status {
            phase,
            detail,
            progress: self.progress.snapshot(),
            allow_old_gainers: self.allow_old_gainers.load(Ordering::SeqCst),
        })
    }

    /// The phase and detail of a cancelled decommission.
    pub(super) fn cancel_phase(&self, me: &str) -> (String, String) {
        let layout = self.cluster.current().layout.clone();
        let v = layout.version;
        match layout.node(me).and_then(|(dc, _, _)| layout.cancelling(dc)) {
            Some(_) => ("cancelling".into(), format!("reads went back to this node at layout v{v}; the next version drops the decommission once every live member is on it")),
            None => ("cancelled".into(), format!("the node stays a member (layout v{v})")),
        }
    }

    /// A new leave is accepted (`leave::begin_after`, before its
    /// forget, review-elastic35 M3): a pass of an earlier one still
    /// running (its cancel missed) stops writing cursors and starts over.
    /// The bump waits for a cursor save in flight (it holds the count's
    /// read lock across its write), so it runs on the blocking pool, not
    /// on a runtime worker (review-elastic35 L2). The operator's
    /// `--allow-old-gainers` of an earlier leave (its cancel missed, so
    /// `cancelled` never cleared it) ends here: the new leave's comes only
    /// from its own request, set once the begin is accepted (review-elastic35
    /// L5). Cleared before the bump, so no pass of the new leave reads it.
    pub(super) async fn new_leave(self: std::sync::Arc<Self>) {
        self.allow_old_gainers.store(false, Ordering::SeqCst);
        let me = self.clone();
        let bumped = super::super::push::blocking(move || {
            me.leaves.send_modify(|n| *n += 1);
            Ok(())
        })
        .await;
        if let Err(e) = bumped {
            tracing::warn!(error = %e, "decommission begun: bumping the leave count on the blocking pool; bumped here");
            self.leaves.send_modify(|n| *n += 1);
        }
    }

    /// The pass of a leave begun again while it ran (its cancel missed,
    /// review-final33 L5) is dropped: the push cursors it saved after the
    /// new begin's forget are forgotten (none lands later: the leave count
    /// moved first, `push::LeaveEpoch`), and the loop pushes from the start.
    pub(super) async fn superseded(&self, me: &str) {
        tracing::info!(node = %me, "decommission begun again while its pass ran: starting over");
        let layout = self.cluster.current().layout.clone();
        if let Err(e) = leave::forget_cursors(&self.engine, &layout, me).await {
            tracing::warn!(error = %e, "decommission begun again: forgetting push cursors");
        }
    }

    /// The leave stopped by a cancel: its push cursors forgotten, the node
    /// Normal (or, past the switch, Leaving until the abort driver's
    /// second step). The operator's `--allow-old-gainers` ends with the
    /// leave it was given for: a decommission begun again checks older
    /// gainers unless asked again (review-final32 M1).
    ///
    /// Whether the leave ended: the forget awaits a write, and a
    /// decommission begun again meanwhile (`begin` proposes it, `run`
    /// finds a leave running and spawns none) goes on instead: `false`,
    /// and the running loop drives it (review-cancel33 M2), as it ends a
    /// node removed meanwhile (review-final33 L1). Only the loop
    /// (`owner`) gives up `running`; the cancel handler never writes it, so
    /// it cannot clear the flag of a leave begun meanwhile.
    pub(super) async fn cancelled(&self, me: &str, owner: bool) -> bool {
        // First: a decommission begun again meanwhile sets its own flag
        // after its `begin`, so a flag set now is the cancelled leave's.
        self.allow_old_gainers.store(false, Ordering::SeqCst);
        let layout = self.cluster.current().layout.clone();
        if let Err(e) = leave::forget_cursors(&self.engine, &layout, me).await {
            tracing::warn!(error = %e, "decommission cancelled: forgetting push cursors");
        }
        let mut running = self.running.lock();
        // A node removed meanwhile (its replacement finished, its removal
        // begun) is not cancelled either: the loop's top ends it as
        // removed (review-final33 L1).
        if !leave::cancelled(&self.cluster.current().layout, me) {
            tracing::info!(node = %me, "decommission begun again, or the node removed, while its cancel ended: it goes on");
            return false;
        }
        tracing::info!(node = %me, version = layout.version, "decommission cancelled: the node stays");
        let (phase, detail) = self.cancel_phase(me);
        self.set(&phase, detail);
        if owner {
            *running = false;
        }
        true
    }
}
