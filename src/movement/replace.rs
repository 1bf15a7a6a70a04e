//! Replacing a dead node: the new node takes over the dead one's tokens
//! (`Layout::begin_replace`, proposed before the node starts by
//! [`super::replace_bootstrap`]), so nobody else's ownership changes; it is
//! a pending replica of exactly the dead node's ranges while it copies them
//! from the survivors ([`super::rereplicate`], sources chosen by
//! [`super::survivors`]: never the dead node, enough live survivors of the
//! datacenter that every LOCAL_QUORUM write is among them), then proposes
//! `finish_replace` (new Normal, dead Removed) after the switch of reads
//! (`switch`), and forgets its cursors.
//!
//! Owns [`replace`] and the running node's [`run_replace`] loop. Every step
//! is idempotent, so a restart resumes. Must not serve requests.

use std::sync::Arc;
use std::time::Duration;

use super::cursor;
use super::ops::{LayoutHandle, ProposeError};
use super::rereplicate::{rereplicate, RereplicateError, Target};
use super::stream::{Progress, RangeSource, StreamConfig};
use crate::engine::{Engine, EngineError};
use crate::layout::{Layout, LayoutError, Movement, NodeState};

/// A replacement that did not complete (running it again resumes it),
/// or, for [`ReplaceError::Forget`], one that did and left its cursors
/// behind.
#[derive(Debug, thiserror::Error)]
pub enum ReplaceError {
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error(transparent)]
    Rereplicate(#[from] RereplicateError),
    #[error(transparent)]
    Propose(#[from] ProposeError),
    #[error("the replacement's finish stopped (run it again to resume): {0}")]
    Finish(#[from] super::switch::FinishError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("node '{0}' is not replacing anyone in the layout")]
    NotReplacing(String),
    /// The replacement finished, then its stream cursors could not be
    /// forgotten (review-cancel6 L2); running it again answers that it is
    /// a member.
    #[error("the replacement finished (this node is a member); only forgetting its stream cursors failed: {0}")]
    Forget(super::stream::StreamError),
    #[error("{}", super::ops::abandoned_text(.0))]
    Abandoned(String),
}

impl ReplaceError {
    /// Retrying cannot help: the node is not (or no longer) replacing.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            ReplaceError::Abandoned(_) | ReplaceError::NotReplacing(_)
        )
    }
}

/// How a [`replace`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replaced {
    /// The node copied the dead node's ranges and is Normal; the dead one Removed.
    Replaced,
    /// It was already Normal: nothing to do.
    AlreadyMember,
}

/// The dead node `new` replaces in `layout`'s movement, if any.
pub fn replacing(layout: &Layout, new: &str) -> Option<String> {
    let (dc, _, _) = layout.node(new)?;
    match layout.movements.get(dc) {
        Some(Movement::Replace { dead, new: n, .. }) if n == new => Some(dead.clone()),
        _ => None,
    }
}

/// Whether `layout`'s replacement by `new` is forced
/// ([`Layout::force_replace`]): each range is copied from the survivors
/// that are up even where too few are; writes only the dead held may be
/// missing until a repair.
pub fn forced(layout: &Layout, new: &str) -> bool {
    let Some((dc, _, _)) = layout.node(new) else {
        return false;
    };
    matches!(layout.movements.get(dc), Some(Movement::Replace { new: n, force: true, .. }) if n == new)
}

/// Whether the movement moving `node` is past its copy: it reads from its
/// new owners (the switch is proposed only once the copy is done).
pub(crate) fn copied(layout: &Layout, node: &str) -> bool {
    layout
        .node(node)
        .is_some_and(|(dc, _, _)| layout.reads_new(dc))
}

/// The stream id (cursor prefix) of `new`'s replacement.
fn stream_id(new: &str) -> String {
    cursor::Pull::Replace.id(new)
}

/// Finishes (or resumes) the replacement `me` has begun: copies the dead
/// node's ranges from the survivors into `engine`, then `finish_replace`.
pub async fn replace<L: LayoutHandle, S: RangeSource>(
    layout: &L,
    engine: Arc<dyn Engine>,
    source: S,
    me: &str,
    cfg: StreamConfig,
    progress: Arc<Progress>,
) -> Result<Replaced, ReplaceError> {
    let now = layout.current();
    match now.node(me).map(|(_, _, n)| n.state) {
        Some(NodeState::Normal) => return Ok(Replaced::AlreadyMember),
        Some(NodeState::Joining) => {}
        Some(NodeState::Removed) => return Err(ReplaceError::Abandoned(me.into())),
        _ => return Err(ReplaceError::NotReplacing(me.into())),
    }
    let dead = replacing(&now, me).ok_or_else(|| ReplaceError::NotReplacing(me.into()))?;
    let id = stream_id(me);
    let target = Target {
        layout: &now,
        gainer: me,
        dead: &dead,
        stream_id: &id,
        // `removenode DEAD --force` (audit11 D3): from the survivors up.
        force: forced(&now, me),
    };
    // At the switch of reads the copy is done (the switch is proposed only
    // after it): copying again would make the finish wait on survivors that
    // may be down by now (review of the switch, M2).
    if !copied(&now, me) {
        let short = rereplicate(target, engine.clone(), Arc::new(source), &cfg, progress).await?;
        // Forced: the ranges copied from too few survivors, for the
        // operator (`GET /movement`, `geokv ring`; review-withdraw34 M2).
        super::progress::board(me).warn(short.iter().map(|s| s.to_string()).collect());
    }
    let version = super::switch::finish_movement(layout, me).await?;
    tracing::info!(node = me, dead = %dead, version, "replaced");
    (cursor::forget_all(&engine, [id]).await).map_err(ReplaceError::Forget)?;
    Ok(Replaced::Replaced)
}

/// Runs (or resumes) this node's replacement in the background of the
/// running node, like [`super::run_join`]: waits until every live member is
/// on the layout that makes it a pending replica, streams, retries after a
/// pause until done or `shutdown`, or until an error retrying cannot mend
/// ([`ReplaceError::is_final`]: abandoned by `removenode` while the node
/// was down), which ends it and the node. Progress goes to this node's
/// [`super::progress::board`].
pub async fn run_replace(
    cluster: crate::view::Cluster,
    engine: Arc<dyn Engine>,
    peers: Arc<crate::transport::Peers>,
    is_up: Arc<dyn Fn(&str) -> bool + Send + Sync>,
    throughput: Arc<super::Throughput>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<(), ReplaceError> {
    let me = cluster.me().to_string();
    let began = std::time::Instant::now();
    let Some(dead) = replacing(&LayoutHandle::current(&cluster), &me) else {
        return Ok(());
    };
    let board = super::progress::board(&me);
    let progress = Arc::new(Progress::default());
    let name = format!("replacement of {dead} by {me}");
    board.start(&name, cluster.current().version(), progress.clone());
    loop {
        let (version, wait) = (cluster.current().version(), Duration::from_secs(30));
        let announced = super::announce::until_announced(&cluster, &peers, &*is_up, version, wait);
        let announced = tokio::select! {
            r = announced => r,
            _ = shutdown.wait_for(|v| *v) => return Ok(()),
        };
        let outcome = match announced {
            Err(e) => Err(e.to_string()),
            Ok(()) => {
                board.status("streaming");
                let source = super::ops::peer_source(&cluster, &peers, &is_up);
                let handle = super::switch::Announcing {
                    cluster: cluster.clone(),
                    peers: peers.clone(),
                    is_up: is_up.clone(),
                    timeout: Duration::from_secs(30),
                };
                let run = replace(
                    &handle,
                    engine.clone(),
                    source,
                    &me,
                    StreamConfig::capped(throughput.clone()),
                    progress.clone(),
                );
                tokio::select! {
                    r = run => match r {
                        Err(e) if e.is_final() => {
                            board.status(&format!("failed: {e}"));
                            tracing::error!(node = %me, error = %e, "replacement cannot go on; the node stops");
                            return Err(e);
                        }
                        r => r.map_err(|e| e.to_string()),
                    },
                    _ = shutdown.wait_for(|v| *v) => return Ok(()),
                }
            }
        };
        match outcome {
            Ok(_) => {
                board.status("done");
                let p = progress.snapshot();
                let secs = began.elapsed().as_secs_f64();
                tracing::info!(node = %me, dead = %dead, keys = p.keys, bytes = p.bytes,
                    ranges = p.ranges_total, secs, "replacement complete: node is normal");
                return Ok(());
            }
            Err(e) => {
                board.status(&format!("waiting: {e}"));
                tracing::warn!(node = %me, error = %e, "replacement not finished; retrying in 2 s");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = shutdown.wait_for(|v| *v) => return Ok(()),
        }
    }
}
