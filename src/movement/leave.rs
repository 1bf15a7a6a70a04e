//! Decommission: a Normal node hands its ranges over and leaves.
//!
//! Owns the three steps of a leave over a [`LayoutHandle`], each
//! idempotent so running them again after a crash resumes: [`begin`]
//! proposes `begin_leave` (the node becomes Leaving, still an owner; the
//! gainers become pending replicas and get every write from then on —
//! refused naming the movement in progress if its datacenter has one;
//! before it, on the same snapshot, the push cursors a cancelled leave may
//! have left are forgotten; [`resume`], at a restart or at a later view
//! showing the leave (`Control::follow_own_leave`), never proposes it),
//! [`hand_over`] pushes every range it loses to the nodes that gain it
//! ([`super::push`]), [`finish`] ends the movement in steps (reads switch
//! to the gainers, then `finish_leave`: Left, no tokens; `switch`) and
//! forgets the push cursors. Between `begin` and `hand_over` the caller
//! waits until every live member is on the leaving layout (see
//! `announce`); after `finish` it delivers what its queues still hold
//! (`control`). [`cancel`] proposes the next step of a cancel
//! (`Layout::cancel_leave`, `geokv decommission --cancel`), and a running
//! leave stops without a switch once [`cancelled`] holds
//! ([`until_cancelled`], also in the retry pause: [`cancelled_within`]).
//! Must not serve requests or spread layouts itself.

use std::sync::Arc;

use super::ops::{LayoutHandle, ProposeError};
use super::plan::{losses, PlanError};
use super::push::{self, push_losses, RangeSink};
use super::stream::{Progress, StreamConfig, StreamError};
use crate::engine::{Engine, EngineError};
use crate::layout::{Layout, LayoutError, Movement, NodeState};

/// A leave that did not complete: running it again resumes it; but for
/// [`LeaveError::Stale`] nothing began, and for [`LeaveError::Forget`] it
/// did complete.
#[derive(Debug, thiserror::Error)]
pub enum LeaveError {
    /// Refused by the layout: among others a second movement in the
    /// datacenter ([`LayoutError::MovementInProgress`] names the one in
    /// progress), or too few nodes left for a keyspace's replication.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("handing ranges over stopped (run the decommission again to resume): {0}")]
    Stream(#[from] StreamError),
    /// [`begin`] could not forget the push cursors a cancelled leave left,
    /// before its proposal (review-cancel6 L2).
    #[error("forgetting the push cursors a cancelled decommission left failed, so none began (nothing was proposed; run the decommission again, after restarting the node if its storage refuses writes): {0}")]
    Stale(StreamError),
    /// [`finish`] ended the leave, then could not forget its push cursors
    /// (the next decommission's [`begin`] forgets them; review-cancel6 L2).
    #[error("the decommission finished (this node has left); only forgetting its push cursors failed: {0}")]
    Forget(StreamError),
    #[error(transparent)]
    Propose(#[from] ProposeError),
    #[error("the decommission's finish stopped (run it again to resume): {0}")]
    Finish(#[from] super::switch::FinishError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("node '{id}' is {state:?} in the layout and not decommissioning; it cannot leave")]
    WrongState { id: String, state: NodeState },
    #[error("node '{0}' is not in the layout")]
    Unknown(String),
    /// `decommission --cancel` of a Normal node with no leave of its own.
    #[error("node '{0}' is not decommissioning (it never began, or its decommission was cancelled already): nothing to cancel")]
    NotLeaving(String),
    /// The cancel was made, then a decommission begun again before its end.
    #[error("node '{0}': the decommission was cancelled, then begun again before the cancel ended; the new decommission goes on (run `geokv decommission --cancel` again to stop it)")]
    BegunAgain(String),
    /// The first step of a cancel past the switch waits for every build.
    #[error(transparent)]
    NotUpgraded(#[from] super::upgrade::NotUpgraded),
    /// Also the end of a node that was not decommissioning
    /// (`Control::on_removed`): the text presumes no leave
    /// (review-final32 L5).
    #[error("node '{0}' was removed from the cluster (`geokv removenode {0}`, which also ends a decommission it was in; the survivors re-replicate its ranges). It hands its queued hints, inter-DC entries and anti-entropy records over to another node of its datacenter, then stops with 'was removed' (exit 3); wipe its data directory only after that, then join it under a new id")]
    Removed(String),
}

impl LeaveError {
    /// Retrying cannot help: the node was removed.
    pub fn is_final(&self) -> bool {
        matches!(self, LeaveError::Removed(_))
    }
}

/// Whether `me` still decommissions in `layout`:
/// [`LeaveError::Removed`] once a `removenode` turned its leave into a
/// removal, or ended it (review-elastic28 L3).
pub fn still_leaving(layout: &Layout, me: &str) -> Result<(), LeaveError> {
    match layout.node(me).map(|(_, _, n)| n.state) {
        Some(NodeState::Removed) => Err(LeaveError::Removed(me.into())),
        _ if super::remove::is_removing(layout, me) => Err(LeaveError::Removed(me.into())),
        _ => Ok(()),
    }
}

/// How [`begin`] found the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Began {
    /// It was Normal and is Leaving now.
    Began,
    /// It was already Leaving (a decommission run again, or after a restart).
    Resumed,
    /// It has left already: nothing to do.
    AlreadyLeft,
}

/// Makes `me` Leaving (or finds it leaving already). A Normal node first
/// forgets its push cursors (review-cancel32 H1): a cancelled leave's can
/// survive its cancel (a stop in the retry pause, a failed forget, a
/// crash, a view that lagged) while its gainers drop their copies, and
/// `check_in` keeps them while a gainer's incarnation holds, so a leave
/// begun on them would skip ranges. The forget is decided on the snapshot
/// the proposal is made on (review-final32 L2), and done before it, so a
/// crash leaves none stale either; a failed forget fails the begin. It
/// costs only a re-push.
pub async fn begin<L: LayoutHandle>(
    layout: &L,
    engine: &Arc<dyn Engine>,
    me: &str,
) -> Result<Began, LeaveError> {
    begin_after(layout, engine, me, async {}).await
}

/// [`begin`], running `first` once the begin is accepted (the node was
/// Normal, no refusal) and before the forget: `Control` bumps its leave
/// count there (`push::LeaveEpoch`), so a cursor save of an earlier leave
/// either finished before the forget or is `Superseded`; none lands after
/// it (review-elastic35 M3).
pub async fn begin_after<L, F>(
    layout: &L,
    engine: &Arc<dyn Engine>,
    me: &str,
    first: F,
) -> Result<Began, LeaveError>
where
    L: LayoutHandle,
    F: std::future::Future<Output = ()>,
{
    let now = layout.current();
    let (_, _, n) = now.node(me).ok_or_else(|| LeaveError::Unknown(me.into()))?;
    still_leaving(&now, me)?;
    if n.state != NodeState::Normal {
        return found(&now, me);
    }
    // Refused (another movement, too few nodes) before anything is
    // forgotten; accepted, the node has no leave of its own in `now`.
    let next = now.begin_leave(me)?;
    first.await;
    (forget_cursors(engine, &now, me).await).map_err(LeaveError::Stale)?;
    tracing::info!(node = me, version = next.version, "decommissioning");
    layout.propose(next).await?;
    Ok(Began::Began)
}

/// At a restart, or at a later view showing the leave
/// (`Control::follow_own_leave`): continues the leave of `me` that the
/// layout in force shows, and never begins one (review-cancel32b M1). A cancel chosen
/// while the node was down (it crashed after proposing it, before
/// installing it) may reach it before this runs: a Normal node is
/// [`LeaveError::NotLeaving`], and nothing is proposed.
pub fn resume<L: LayoutHandle>(layout: &L, me: &str) -> Result<Began, LeaveError> {
    found(&layout.current(), me)
}

/// How `now` shows `me`'s leave when nothing is to be proposed.
fn found(now: &Layout, me: &str) -> Result<Began, LeaveError> {
    let (dc, _, n) = now.node(me).ok_or_else(|| LeaveError::Unknown(me.into()))?;
    still_leaving(now, me)?;
    match n.state {
        NodeState::Leaving if is_my_leave(now.movements.get(dc), me) => Ok(Began::Resumed),
        NodeState::Left => Ok(Began::AlreadyLeft),
        NodeState::Normal => Err(LeaveError::NotLeaving(me.into())),
        state => Err(LeaveError::WrongState {
            id: me.into(),
            state,
        }),
    }
}

fn is_my_leave(m: Option<&Movement>, me: &str) -> bool {
    matches!(m, Some(Movement::Leave { node }) if node == me)
}

/// Pushes every range `me` loses in the current layout from `engine` to
/// its gainers through `sink`.
pub async fn hand_over<L: LayoutHandle, S: RangeSink>(
    layout: &L,
    engine: Arc<dyn Engine>,
    sink: &S,
    me: &str,
    cfg: &StreamConfig,
    progress: &Progress,
) -> Result<(), LeaveError> {
    let now = layout.current();
    if now.node(me).map(|(_, _, n)| n.state) == Some(NodeState::Left) {
        return Ok(());
    }
    still_leaving(&now, me)?;
    let plan = losses(&now, me)?;
    push_losses(engine, sink, me, &plan, cfg, progress).await?;
    Ok(())
}

/// Ends the leave of `me` in steps (`switch`), unless it is Left
/// already, and forgets the push cursors.
pub async fn finish<L: LayoutHandle>(
    layout: &L,
    engine: &Arc<dyn Engine>,
    me: &str,
) -> Result<(), LeaveError> {
    let now = layout.current();
    let state = now.node(me).map(|(_, _, n)| n.state);
    if state == Some(NodeState::Left) {
        return Ok(());
    }
    // Not the removal's steps: those wait for its gainers' copies.
    still_leaving(&now, me)?;
    let gainers: std::collections::BTreeSet<String> = losses(&now, me)?
        .into_iter()
        .flat_map(|l| l.new_owners)
        .collect();
    let version = super::switch::finish_movement(layout, me).await?;
    tracing::info!(node = me, version, "left the cluster");
    (push::forget(engine, me, gainers).await).map_err(LeaveError::Forget)
}

/// Whether `me`'s decommission is cancelled in `layout`: it is Normal with
/// no leave of its own, or its leave is being cancelled (the second step
/// pending, `Layout::cancelling`). A running leave then stops.
pub fn cancelled(layout: &Layout, me: &str) -> bool {
    let Some((dc, _, n)) = layout.node(me) else {
        return false;
    };
    let leaving = is_my_leave(layout.movements.get(dc), me);
    (n.state == NodeState::Normal && !leaving) || layout.cancelling(dc) == Some(me)
}

/// Returns once `me`'s decommission is cancelled in `cluster`'s view.
pub async fn until_cancelled(cluster: &crate::view::Cluster, me: &str) {
    let mut views = cluster.subscribe();
    let _ = views.wait_for(|v| cancelled(&v.layout, me)).await;
}

/// Waits `pause` (a failed leave's retry pause) unless `me`'s decommission
/// is cancelled first; whether it was. A cancel in the pause ends the
/// leave at once (review-cancel32 H1): the node forgets its push cursors
/// before a stop can interrupt it, and a repeated cancel finds it done,
/// not 409.
pub async fn cancelled_within(
    cluster: &crate::view::Cluster,
    me: &str,
    pause: std::time::Duration,
) -> bool {
    tokio::select! {
        () = tokio::time::sleep(pause) => false,
        () = until_cancelled(cluster, me) => true,
    }
}

/// Proposes the next step of cancelling `me`'s decommission (none when its
/// cancel waits for the abort driver's second step); the layout version
/// it is at. A node that is not decommissioning is refused
/// ([`LeaveError::NotLeaving`], review-cancel31 L3). A proposal that lost
/// to a step of the leave itself (its switch or finish) is evaluated once
/// more on the layout in force: a two-step cancel, or `AlreadyLeft`
/// (review-cancel31 L4).
pub async fn cancel<L: LayoutHandle>(layout: &L, me: &str) -> Result<u64, LeaveError> {
    match cancel_once(layout, me).await {
        Err(LeaveError::Propose(e)) => {
            // A proposal that failed may have been applied (a timeout,
            // `NotInstalled`): the cancel is done (review-cancel2-31 L5).
            if let Some(done) = applied(layout, me) {
                return Ok(done);
            }
            tracing::info!(node = me, error = %e, "cancel lost to another step; once more");
            match cancel_once(layout, me).await {
                Err(e @ (LeaveError::Propose(_) | LeaveError::NotLeaving(_))) => {
                    applied(layout, me).ok_or(e)
                }
                r => r,
            }
        }
        r => r,
    }
}

/// The version of `layout` when it shows `me`'s decommission cancelled
/// (after a proposal of this cancel failed: a node that was leaving then).
fn applied<L: LayoutHandle>(layout: &L, me: &str) -> Option<u64> {
    let now = layout.current();
    cancelled(&now, me).then_some(now.version)
}

async fn cancel_once<L: LayoutHandle>(layout: &L, me: &str) -> Result<u64, LeaveError> {
    let now = layout.current();
    still_leaving(&now, me)?;
    let (dc, _, n) = now.node(me).ok_or_else(|| LeaveError::Unknown(me.into()))?;
    if now.cancelling(dc) == Some(me) {
        return Ok(now.version);
    }
    if n.state == NodeState::Normal && !is_my_leave(now.movements.get(dc), me) {
        return Err(LeaveError::NotLeaving(me.into()));
    }
    let next = now.cancel_leave(me)?;
    // Past the switch the first step puts `aborting` on a Leave, which a
    // build without `REMOVE_SETS` reads as no cancel (review-cancel31 M2).
    if next.aborting != now.aborting {
        let needed = super::upgrade::LAYOUT_STEPS | super::upgrade::REMOVE_SETS;
        super::upgrade::here_needing(me, &now, me, needed)?;
    }
    let version = next.version;
    tracing::info!(node = me, version, "decommission cancelled");
    layout.propose(next).await?;
    Ok(version)
}

/// Forgets `me`'s push cursors towards every node of `layout` (a cancelled
/// leave: a decommission begun again later pushes from the start), in one
/// write on the engine's call site (`push::forget`).
pub async fn forget_cursors(
    engine: &Arc<dyn Engine>,
    layout: &Layout,
    me: &str,
) -> Result<(), StreamError> {
    let ids: Vec<String> = layout.nodes().map(|(_, _, n)| n.id.clone()).collect();
    push::forget(engine, me, ids).await
}

/// A leave's finish steps on `inner`, stopped once `epoch`'s leave is not
/// the latest (review-elastic35 L1): a pass whose cancel and re-begin it
/// missed would otherwise propose the new leave's switch with no push for
/// it. Checked after the step's snapshot is read and announced, before its
/// proposal: the count moves before a new leave is proposed
/// ([`begin_after`]), so a snapshot showing that leave is refused.
pub struct Epoched<'a, L> {
    pub inner: &'a L,
    pub epoch: &'a push::LeaveEpoch,
}

impl<L: LayoutHandle> Epoched<'_, L> {
    fn latest(&self) -> Result<(), ProposeError> {
        match *self.epoch.count.borrow() == self.epoch.mine {
            true => Ok(()),
            false => Err(ProposeError(
                "this decommission was begun again: its pass stops".into(),
            )),
        }
    }
}

impl<L: LayoutHandle> LayoutHandle for Epoched<'_, L> {
    fn current(&self) -> Arc<Layout> {
        self.inner.current()
    }

    async fn propose(&self, next: Layout) -> Result<(), ProposeError> {
        self.latest()?;
        self.inner.propose(next).await
    }

    async fn announced(&self, version: u64) -> Result<(), ProposeError> {
        self.inner.announced(version).await?;
        self.latest()
    }

    fn upgraded(&self, except: &str) -> Result<(), super::upgrade::NotUpgraded> {
        self.inner.upgraded(except)
    }
}
