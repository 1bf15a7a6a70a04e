//! The membership operations built on the plan and the streaming driver:
//! join (the joiner pulls its ranges) and its resumption after a restart.
//!
//! Owns [`join`] and the [`LayoutHandle`] seam through which it reads the
//! current layout and proposes the next version (the node's live cluster
//! view in production, a plain layout in tests). A join is: allocate
//! balanced tokens and propose `begin_join` (the node becomes Joining and
//! receives writes as a pending replica), wait until every live member is
//! on that layout (`announce`), stream every range it gains from the owner
//! losing it (strict; the nearest owner only for ranges nobody loses),
//! end the movement in steps (switch reads to the joiner, then
//! `finish_join`, each once every live member is on the step before:
//! `switch`), forget the cursors. Every step is idempotent, so running it again after
//! a crash resumes where it stopped. Must not serve requests or spread
//! layouts itself.

use std::future::Future;
use std::sync::Arc;

use super::cursor;
use super::plan::{gains, PlanError};
use super::stream::{Progress, RangeSource, StreamConfig, StreamError, Streamer};
use crate::engine::{Engine, EngineError};
use crate::layout::{Layout, LayoutError, NewNode, NodeState};
use crate::ring::{allocate_tokens, allocation_rf, AllocateError};

/// A proposal the cluster did not accept.
#[derive(Debug, Clone, thiserror::Error)]
#[error("layout proposal refused: {0}")]
pub struct ProposeError(pub String);

/// Where the operations read and change the layout.
pub trait LayoutHandle: Send + Sync {
    /// The newest layout this node knows.
    fn current(&self) -> Arc<Layout>;

    /// Installs `next` (one version above the current one) and spreads it.
    fn propose(&self, next: Layout) -> impl Future<Output = Result<(), ProposeError>> + Send;

    /// Returns once every live member is on `version` (or newer): what a
    /// step at the end of a movement waits for (`switch`). No default: a
    /// handle that skipped the wait would bring back the one-step switch
    /// (audit W2; review of the switch, L3).
    fn announced(&self, version: u64) -> impl Future<Output = Result<(), ProposeError>> + Send;

    /// Whether every member up (but `except`, the node the step is about,
    /// and the nodes moved out) runs a build that reads the layout fields
    /// of a movement's switch and abort steps (`upgrade`): asked before
    /// proposing a switch. No default, like [`LayoutHandle::announced`].
    fn upgraded(&self, except: &str) -> Result<(), super::upgrade::NotUpgraded>;
}

/// A join that did not complete (running it again resumes it), or, for
/// [`JoinError::Forget`], one that did and left its cursors behind.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// Refused by the layout: among others a second movement in the
    /// datacenter ([`LayoutError::MovementInProgress`] names the one in progress).
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error(transparent)]
    Allocate(#[from] AllocateError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("streaming stopped (run the join again to resume): {0}")]
    Stream(#[from] StreamError),
    /// The join finished, then its stream cursors could not be forgotten
    /// (review-cancel6 L2); running it again answers that it is a member.
    #[error(
        "the join finished (this node is a member); only forgetting its stream cursors failed: {0}"
    )]
    Forget(StreamError),
    #[error(transparent)]
    Propose(#[from] ProposeError),
    #[error("the join's finish stopped (run the join again to resume): {0}")]
    Finish(#[from] super::switch::FinishError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("node '{id}' is {state:?} in the layout; it cannot join")]
    WrongState { id: String, state: NodeState },
    #[error("{}", abandoned_text(.0))]
    Abandoned(String),
}

impl JoinError {
    /// Retrying cannot help: the node is not (or no longer) joining.
    pub fn is_final(&self) -> bool {
        matches!(self, JoinError::Abandoned(_) | JoinError::WrongState { .. })
    }
}

/// Why node `id`, removed while it was away, cannot go on. Its task
/// fails, so the node exits 1 and a supervisor starts it again: that
/// start hands its queues over and exits 3 'was removed', the only point
/// where wiping it loses nothing (review-recover2-31 N1).
pub(crate) fn abandoned_text(id: &str) -> String {
    format!("node '{id}' was removed from the cluster while it was down: its movement was abandoned (`geokv removenode {id}`). It cannot rejoin under this id: it stops; start it again (a supervisor does) to hand its queued hints, inter-DC entries and anti-entropy records over, and wipe its data directory only after it exits with 'was removed', then join it again under a new id")
}

/// What a node joins as.
#[derive(Clone, Debug)]
pub struct JoinRequest {
    pub node: NewNode,
    pub dc: String,
    pub rack: String,
    /// Tokens to allocate (the layout's vnodes per weight × the weight).
    pub tokens: usize,
}

/// How a [`join`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Joined {
    /// The node streamed its ranges and is Normal now.
    Joined,
    /// It was already Normal: nothing to do (a member's restart).
    AlreadyMember,
}

/// Joins `req.node` (or resumes its join), streaming into `engine` from
/// `source`; `progress` is updated as ranges stream.
pub async fn join<L: LayoutHandle, S: RangeSource>(
    layout: &L,
    engine: Arc<dyn Engine>,
    source: S,
    req: &JoinRequest,
    cfg: StreamConfig,
    progress: Arc<Progress>,
) -> Result<Joined, JoinError> {
    let id = req.node.id.as_str();
    let now = layout.current();
    match now.node(id).map(|(_, _, n)| n.state) {
        None => {
            let rf = allocation_rf(&now, &req.dc);
            let tokens = allocate_tokens(&now, &req.dc, &req.rack, req.tokens, rf)?;
            let next = now.begin_join(req.node.clone(), &req.dc, &req.rack, &tokens)?;
            tracing::info!(node = id, version = next.version, "joining");
            layout.propose(next).await?;
        }
        Some(NodeState::Joining) => tracing::info!(node = id, "resuming the join"),
        Some(NodeState::Normal) => return Ok(Joined::AlreadyMember),
        Some(NodeState::Removed) => return Err(JoinError::Abandoned(id.into())),
        Some(state) => {
            return Err(JoinError::WrongState {
                id: id.into(),
                state,
            })
        }
    }
    let plan = gains(&layout.current(), id)?;
    let stream_id = cursor::Pull::Join.id(id);
    // Past the switch of reads the stream is done (review of the switch, M2).
    if !super::replace::copied(&layout.current(), id) {
        let streamer =
            Streamer::new(engine.clone(), source, &stream_id, cfg).with_progress(progress);
        // Between ranges: a joiner that came back on its persisted layout
        // learns of its removal by gossip while it streams (review-elastic28 L1).
        let stop = || not_joining(&layout.current(), id).map(|e| e.to_string());
        let streamed = streamer.run_while(&plan, stop);
        if let Err(e) = streamed.await {
            return Err(not_joining(&layout.current(), id).unwrap_or_else(|| e.into()));
        }
    }
    let version = super::switch::finish_movement(layout, id).await?;
    tracing::info!(node = id, version, "joined");
    (cursor::forget_all(&engine, [stream_id]).await).map_err(JoinError::Forget)?;
    Ok(Joined::Joined)
}

/// Why joiner `id` cannot go on in `layout`, if it cannot: removed
/// ([`JoinError::Abandoned`]) or no longer joining.
fn not_joining(layout: &Layout, id: &str) -> Option<JoinError> {
    match layout.node(id).map(|(_, _, n)| n.state) {
        None | Some(NodeState::Joining) => None,
        Some(NodeState::Removed) => Some(JoinError::Abandoned(id.into())),
        Some(state) => Some(JoinError::WrongState {
            id: id.into(),
            state,
        }),
    }
}

/// The node's live view is where production joins read and propose.
impl LayoutHandle for crate::view::Cluster {
    fn current(&self) -> Arc<Layout> {
        crate::view::Cluster::current(self).layout.clone()
    }

    async fn propose(&self, next: Layout) -> Result<(), ProposeError> {
        crate::view::Cluster::propose(self, next)
            .await
            .map(|_| ())
            .map_err(|e| ProposeError(e.to_string()))
    }

    fn upgraded(&self, except: &str) -> Result<(), super::upgrade::NotUpgraded> {
        let layout = LayoutHandle::current(self);
        super::upgrade::here(self.me(), &layout, except)
    }

    /// The bare view cannot ask its peers: a movement's end goes through
    /// [`super::switch::Announcing`], so this refuses rather than skip.
    async fn announced(&self, version: u64) -> Result<(), ProposeError> {
        Err(ProposeError(format!(
            "cannot wait for every live member to reach layout v{version} without the peers (movement::switch::Announcing)"
        )))
    }
}

/// Runs (or resumes) this node's join in the background of a running node:
/// streams from peers through `peers`, skipping those `is_up` says are
/// down, and retries after a pause until the join is done or `shutdown`;
/// an error retrying cannot mend ([`JoinError::is_final`]: the join was
/// abandoned by `removenode` while the node was down) ends it, and the
/// node with it.
pub async fn run_join(
    cluster: crate::view::Cluster,
    engine: Arc<dyn Engine>,
    peers: Arc<crate::transport::Peers>,
    is_up: Arc<dyn Fn(&str) -> bool + Send + Sync>,
    progress: Arc<Progress>,
    throughput: Arc<super::Throughput>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<(), JoinError> {
    let me = cluster.me().to_string();
    let began = std::time::Instant::now();
    let Some(req) = request_of(&LayoutHandle::current(&cluster), &me) else {
        return Ok(());
    };
    // `GET /movement` and `geokv ring` show the join like a replacement.
    let (board, name) = (super::progress::board(&me), format!("join of {me}"));
    board.start(&name, cluster.current().version(), progress.clone());
    warn_if_unbalanced(&board, &LayoutHandle::current(&cluster), &req);
    loop {
        // Every live member must make this node a pending replica before
        // it streams (see `announce`).
        let version = cluster.current().version();
        let announced = super::announce::until_announced(
            &cluster,
            &peers,
            &*is_up,
            version,
            std::time::Duration::from_secs(30),
        );
        let announced = tokio::select! {
            r = announced => r,
            _ = shutdown.wait_for(|v| *v) => return Ok(()),
        };
        if let Err(e) = announced {
            board.status(&format!("waiting: {e}"));
            tracing::warn!(node = %me, error = %e, "join waits for its layout to reach every live member");
            continue;
        }
        board.status("streaming");
        let run = stream_once(
            &cluster,
            &engine,
            &peers,
            &is_up,
            &req,
            &progress,
            &throughput,
        );
        let outcome = tokio::select! {
            r = run => r,
            _ = shutdown.wait_for(|v| *v) => return Ok(()),
        };
        match outcome {
            Ok(_) => {
                board.status("done");
                joined(&me, began, &progress);
                return Ok(());
            }
            Err(e) if e.is_final() => {
                board.status(&format!("failed: {e}"));
                tracing::error!(node = %me, error = %e, "join cannot go on; the node stops");
                return Err(e);
            }
            Err(e) => {
                board.status(&format!("waiting: {e}"));
                tracing::warn!(node = %me, error = %e, "join not finished; retrying in 2 s");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(2)) => {}
            _ = shutdown.wait_for(|v| *v) => return Ok(()),
        }
    }
}

/// One try at the streams and switch of `req`'s join, once its layout
/// reached every live member ([`run_join`] retries it).
async fn stream_once(
    cluster: &crate::view::Cluster,
    engine: &Arc<dyn Engine>,
    peers: &Arc<crate::transport::Peers>,
    is_up: &Arc<dyn Fn(&str) -> bool + Send + Sync>,
    req: &JoinRequest,
    progress: &Arc<Progress>,
    throughput: &Arc<super::Throughput>,
) -> Result<(), JoinError> {
    let source = peer_source(cluster, peers, is_up);
    let handle = super::switch::Announcing {
        cluster: cluster.clone(),
        peers: peers.clone(),
        is_up: is_up.clone(),
        timeout: std::time::Duration::from_secs(30),
    };
    join(
        &handle,
        engine.clone(),
        source,
        req,
        StreamConfig::capped(throughput.clone()),
        progress.clone(),
    )
    .await
    .map(|_| ())
}

/// Logs a join's end with its figures.
fn joined(me: &str, began: std::time::Instant, progress: &Progress) {
    let p = progress.snapshot();
    let secs = began.elapsed().as_secs_f64();
    tracing::info!(node = %me, keys = p.keys, bytes = p.bytes, ranges = p.ranges_total,
        secs, keys_per_sec = p.keys as f64 / secs, mb_per_sec = p.bytes as f64 / secs / 1e6,
        "join complete: node is normal");
}

/// Says, in the log and on the movement board (`GET /movement`, `geokv
/// ring`), when the join's datacenter cannot be balanced whatever its
/// tokens (`ring::balance_warning`): the join goes on.
fn warn_if_unbalanced(board: &super::progress::Board, layout: &Layout, req: &JoinRequest) {
    let rf = allocation_rf(layout, &req.dc);
    let id = &req.node.id;
    if let Some(w) = crate::ring::balance_warning(layout, &req.dc, &req.rack, rf, id) {
        tracing::warn!(node = %id, "{w}");
        board.warn(vec![w]);
    }
}

/// Peers' `RangeScan` as a stream source, members resolved in the view in
/// force, liveness from `is_up`.
pub(crate) fn peer_source(
    cluster: &crate::view::Cluster,
    peers: &Arc<crate::transport::Peers>,
    is_up: &Arc<dyn Fn(&str) -> bool + Send + Sync>,
) -> super::peer::PeerSource {
    let (view, up) = (cluster.clone(), is_up.clone());
    let resolve: Arc<super::peer::Resolve> = Arc::new(move |id: &str| {
        let node = view.current().node(id).cloned()?;
        let alive = up(id);
        Some((node, alive))
    });
    super::peer::PeerSource::new(peers.clone(), resolve, std::time::Duration::from_secs(10))
}

/// The join request of a node already in `layout` (for resuming it).
fn request_of(layout: &Layout, id: &str) -> Option<JoinRequest> {
    let (dc, rack, n) = layout.node(id)?;
    Some(JoinRequest {
        node: NewNode {
            id: n.id.clone(),
            client_address: n.client_address,
            peer_address: n.peer_address,
            admin_address: n.admin_address,
        },
        dc: dc.into(),
        rack: rack.into(),
        tokens: n.tokens.len(),
    })
}
