//! Removing a dead node (`geokv removenode ID`): `begin_remove` makes it
//! Leaving, and every node that gains one of its ranges waits until every
//! live member is on that layout (`announce`) and copies it from the
//! survivors ([`super::rereplicate`], sources chosen by
//! [`super::survivors`]; the dead node is never asked), then reports
//! `done` on its [`super::progress`] board (`GET /movement`). The
//! *finisher* — the first gainer that is up, else the first Normal node
//! up — waits until every gainer reports done (none once it reads new)
//! and ends it in steps (`switch`, refused if the movement changed since
//! the reports were checked; then `finish_remove`: the nodes become
//! Removed). Every node
//! runs [`follow`]; every step is idempotent, so a restart of any gainer
//! or of the finisher resumes (cursors per source, as for a replacement).
//!
//! A gainer short of survivors ([`super::survivors::Shortfall`]) retries
//! for [`SHORTFALL_PATIENCE`], then reports `failed: …` (the CLI exits
//! with it) while it keeps trying, until the survivors come up or the
//! removal is forced (`geokv removenode --force`,
//! [`Layout::force_remove`]): forced, each range is copied from
//! the survivors that are up, and the ranges short of a quorum-meeting set
//! are logged and listed in the board's warnings as possibly missing writes.
//!
//! Owns [`begin`] (the refusal of a live node), [`gainers`], [`finisher`],
//! [`duties`] (every datacenter's removal is followed, one per datacenter),
//! [`Patience`] and [`follow`]; a gainer's copy is `remove_copy`'s. Must
//! not serve requests.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::cursor;
use super::plan::gains;
use crate::engine::Engine;
use crate::layout::{Layout, LayoutError, Movement, NodeState};
use crate::view::Cluster;

/// A removal that cannot begin.
#[derive(Debug, thiserror::Error)]
pub enum RemoveError {
    #[error("node '{0}' is alive per this node's failure detector; only a dead node can be removed (decommission a live one)")]
    Alive(String),
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// A dead gainer of a removal in a datacenter too small to lose both
    /// (rf+1 nodes, two dead: review-cancel31 H1): the way out is named.
    #[error("{why}: '{node}' cannot be removed with the {removal}, which waits for '{node}' to copy its share. If '{node}' can come back, start it again (on its data directory): it copies and the removal finishes. If not: withdraw the removal (`geokv removenode {first} --withdraw`), then replace '{node}' (`geokv node --replace {node}` on a new machine, then `geokv removenode {node} --force`: its ranges '{first}' also held have one survivor), then remove '{first}' again (README, Removing a dead node)")]
    GainerTooFewLeft {
        node: String,
        first: String,
        removal: String,
        why: Box<LayoutError>,
    },
}

/// The layout with `dead`'s removal begun; refused while `is_up(dead)`.
/// A dead node that is not Normal (joining, leaving or replacing) has its
/// movement aborted instead ([`Layout::abort`]): a joiner or replacement
/// is dropped, a leaving node's removal goes on as for a Normal one. A
/// dead Normal node that gains in its datacenter's movement in progress
/// would hold it up for good (audit11 D1): in a removal it is removed
/// with the node being removed ([`Layout::join_removal`]); in a
/// decommission it is refused naming `decommission --cancel`.
pub fn begin(
    layout: &Layout,
    dead: &str,
    is_up: &dyn Fn(&str) -> bool,
) -> Result<Layout, RemoveError> {
    let Some((dc, _, n)) = layout.node(dead) else {
        return Err(LayoutError::UnknownNode(dead.into()).into());
    };
    if is_up(dead) {
        return Err(RemoveError::Alive(dead.into()));
    }
    let gainer = gains(layout, dead).is_ok_and(|g| !g.is_empty());
    match (n.state, layout.movements.get(dc)) {
        (NodeState::Joining | NodeState::Leaving, _) => Ok(layout.abort(dead)?),
        (NodeState::Normal, Some(m @ Movement::Remove { node: first, .. })) if gainer => {
            layout.join_removal(dead).map_err(|e| match e {
                LayoutError::TooFewNodes { .. } => RemoveError::GainerTooFewLeft {
                    node: dead.into(),
                    first: first.clone(),
                    removal: m.to_string(),
                    why: Box::new(e),
                },
                e => e.into(),
            })
        }
        (NodeState::Normal, Some(Movement::Leave { node })) if gainer => {
            let (node, leaver, cancelling) = (dead.into(), node.clone(), layout.cancelling(dc));
            let dc = dc.to_string();
            Err(match cancelling {
                Some(_) => LayoutError::GainerOfCancelledLeave { node, dc, leaver },
                None => LayoutError::GainerOfLeave { node, dc, leaver },
            }
            .into())
        }
        _ => Ok(layout.begin_remove(dead)?),
    }
}

/// The first node of every removal in progress, one per datacenter at
/// most (movements are per datacenter), in datacenter order.
pub fn removals(layout: &Layout) -> Vec<String> {
    (layout.movements.values())
        .filter_map(|m| match m {
            Movement::Remove { node, .. } => Some(node.clone()),
            _ => None,
        })
        .collect()
}

/// What one node does for one removal in progress ([`duties`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Duty {
    /// The dead node being removed.
    pub dead: String,
    /// This node gains ranges of it: it copies them.
    pub copy: bool,
    /// This node is its [`finisher`].
    pub finish: bool,
}

/// What `me` does for every removal in progress in `layout` (a removal in
/// one datacenter does not hold another datacenter's back).
pub fn duties(layout: &Layout, me: &str) -> Vec<Duty> {
    duties_up(layout, me, &|_| true)
}

/// [`duties`], the finisher chosen among the nodes `is_up` ([`finisher_up`]).
pub fn duties_up(layout: &Layout, me: &str, is_up: &dyn Fn(&str) -> bool) -> Vec<Duty> {
    (removals(layout).into_iter())
        .map(|dead| Duty {
            copy: gainers(layout, &dead).iter().any(|g| g == me),
            finish: finisher_up(layout, &dead, me, is_up).as_deref() == Some(me),
            dead,
        })
        .filter(|d| d.copy || d.finish)
        .collect()
}

/// Whether a removal of `node` is in progress in `layout`, in whichever
/// datacenter (`node` its first node or one removed with it).
pub fn is_removing(layout: &Layout, node: &str) -> bool {
    (layout.movements.values())
        .any(|m| matches!(m, Movement::Remove { .. }) && m.declared_dead().contains(&node))
}

/// The members that gain a range in `layout`'s removal of `dead`, by id:
/// members of its datacenter only (another datacenter's movement has its
/// own gainers).
pub fn gainers(layout: &Layout, dead: &str) -> Vec<String> {
    let Some((dc, _, _)) = layout.node(dead) else {
        return Vec::new();
    };
    let mut out: Vec<String> = layout
        .nodes()
        .filter(|(d, _, n)| *d == dc && n.state.is_member() && n.id != dead)
        .filter(|(_, _, n)| gains(layout, &n.id).is_ok_and(|g| !g.is_empty()))
        .map(|(_, _, n)| n.id.clone())
        .collect();
    out.sort();
    out
}

/// Who proposes `finish_remove`: the first gainer, else the first Normal
/// node of the dead node's datacenter.
pub fn finisher(layout: &Layout, dead: &str) -> Option<String> {
    finisher_up(layout, dead, "", &|_| true)
}

/// [`finisher`] among the nodes `is_up` (`me` counts as up), so a dead
/// gainer does not hold the finish up once the copies are done (audit11
/// D1, L3). Two nodes that disagree on liveness both propose the same
/// step; the CAS takes one.
pub fn finisher_up(
    layout: &Layout,
    dead: &str,
    me: &str,
    is_up: &dyn Fn(&str) -> bool,
) -> Option<String> {
    let up = |id: &String| id == me || is_up(id);
    if let Some(first) = gainers(layout, dead).into_iter().find(up) {
        return Some(first);
    }
    let (dc, _, _) = layout.node(dead)?;
    let mut normal: Vec<String> = layout
        .nodes()
        .filter(|(d, _, n)| *d == dc && n.state == NodeState::Normal)
        .map(|(_, _, n)| n.id.clone())
        .filter(up)
        .collect();
    normal.sort();
    normal.into_iter().next()
}

/// The movement name a gainer's board shows for the removal of `dead` in
/// `layout`: every node it removes and its attempt (`removal of a, b
/// (attempt v7)`; no attempt from an older build), so a node added to it
/// makes every gainer copy again for the new plan, and an attempt begun
/// after a withdraw is another movement.
pub fn movement_name(layout: &Layout, dead: &str) -> String {
    (layout.movements.values())
        .find(|m| matches!(m, Movement::Remove { .. }) && m.declared_dead().contains(&dead))
        .map_or_else(|| format!("removal of {dead}"), |m| m.to_string())
}

/// The stream id (cursor prefix) of this node's pulls for `layout`'s
/// removal of `dead`: per attempt (`Movement::Remove`'s `began`), so an
/// attempt after a withdraw starts over (writes made between the two went
/// to the pending gainer only while the first ran) and never resumes the
/// first's cursors; an older build's removal (`began` 0) keeps its id.
pub(super) fn stream_id(layout: &Layout, dead: &str) -> String {
    let began = (layout.movements.values()).find_map(|m| match m {
        Movement::Remove { began, .. } if m.declared_dead().contains(&dead) => Some(*began),
        _ => None,
    });
    match began {
        None | Some(0) => cursor::Pull::Remove.id(dead),
        Some(v) => cursor::Pull::Remove.id(&format!("{dead}@v{v}")),
    }
}

/// The stream ids among `copied` whose removal is no longer in `layout`
/// (finished, or withdrawn: review-cancel31 H1): their cursors are forgotten.
pub(super) fn over(copied: &BTreeSet<String>, layout: &Layout) -> Vec<String> {
    let going: Vec<String> = (removals(layout).iter())
        .map(|d| stream_id(layout, d))
        .collect();
    (copied.iter())
        .filter(|id| !going.contains(id))
        .cloned()
        .collect()
}

/// Whether a board report of `movement` is of a removal `layout` no longer
/// runs and did not finish: withdrawn (or replaced by a new plan of it).
/// A finished removal's report stays (its warnings name the ranges a
/// forced copy left short; `removenode` run again shows them).
pub(super) fn withdrawn(movement: &str, layout: &Layout) -> bool {
    let Some(rest) = movement.strip_prefix("removal of ") else {
        return false;
    };
    let first = rest.split([',', ' ']).next().unwrap_or(rest);
    let running = (removals(layout).iter()).any(|d| movement_name(layout, d) == movement);
    !running
        && layout
            .node(first)
            .is_some_and(|(_, _, n)| n.state != NodeState::Removed)
}

/// What this node keeps for a removal `layout` no longer runs is dropped: a
/// withdrawn attempt's report on `board`, so its stale `done` never counts
/// for a later attempt under the same name (a member up without
/// REMOVE_SETS: `began` 0; review-withdraw34 M3), and the cursors of each
/// stream id in `copied` that is over (its pull duty is gone with it).
async fn forget_over(
    engine: &Arc<dyn Engine>,
    board: &super::progress::Board,
    copied: &mut BTreeSet<String>,
    layout: &Layout,
) {
    board.clear_if(|m| withdrawn(m, layout));
    for id in over(copied, layout) {
        copied.remove(&id);
        if let Err(e) = cursor::forget_all(engine, [id]).await {
            tracing::warn!(error = %e, "removal: forgetting cursors");
        }
    }
}

/// How long a gainer waits for enough survivors to come up before it
/// fails its part of the removal (until the removal is forced).
pub const SHORTFALL_PATIENCE: Duration = Duration::from_secs(60);

/// Whether the removal of `dead` in progress is forced.
pub fn forced(layout: &Layout, dead: &str) -> bool {
    (layout.movements.values()).any(|m| {
        matches!(m, Movement::Remove { force: true, .. }) && m.declared_dead().contains(&dead)
    })
}

/// How long a gainer has been short of survivors. Pure: time is an input.
#[derive(Debug, Default)]
pub struct Patience {
    since: Option<Instant>,
}

impl Patience {
    /// A shortfall seen at `now`: whether the gainer has waited `limit`
    /// since the first one after the last [`Patience::reset`].
    pub fn short(&mut self, now: Instant, limit: Duration) -> bool {
        let since = *self.since.get_or_insert(now);
        now.duration_since(since) >= limit
    }

    /// The copy went on: the next shortfall starts a new wait.
    pub fn reset(&mut self) {
        self.since = None;
    }
}

/// Runs on every node: takes part in any removal in progress (copies what
/// this node gains; the finisher finishes it) until `shutdown`. A gainer
/// short of survivors for [`SHORTFALL_PATIENCE`] reports `failed: …` and
/// keeps trying: survivors coming up, or the removal forced, end it.
pub async fn follow(
    cluster: Cluster,
    engine: Arc<dyn Engine>,
    peers: Arc<crate::transport::Peers>,
    is_up: Arc<dyn Fn(&str) -> bool + Send + Sync>,
    throughput: Arc<super::Throughput>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let me = cluster.me().to_string();
    let mut views = cluster.subscribe();
    let mut gainer = super::remove_copy::Gainer {
        cluster: cluster.clone(),
        engine: engine.clone(),
        peers,
        is_up,
        me: me.clone(),
        patience: Patience::default(),
        throughput,
    };
    // The removals this node's part is done for, and the stream ids (one
    // per attempt) whose cursors to forget once they are over.
    let mut settled = super::settled::Settled::default();
    let mut copied: BTreeSet<String> = BTreeSet::new();
    loop {
        // The second step of an abort after the switch (`abort`).
        let (peers, is_up) = (&gainer.peers, &gainer.is_up);
        tokio::select! {
            _ = super::abort::follow_step(&cluster, peers, is_up) => {}
            _ = shutdown.wait_for(|v| *v) => return,
        }
        let layout = cluster.current().layout.clone();
        for duty in duties_up(&layout, &me, &*gainer.is_up) {
            let (name, dead) = (movement_name(&layout, &duty.dead), duty.dead.clone());
            if duty.copy && !settled.contains(&name) {
                let done = tokio::select! {
                    d = gainer.copy(&layout, &dead) => d,
                    _ = shutdown.wait_for(|v| *v) => return,
                };
                copied.insert(stream_id(&layout, &dead));
                if done {
                    settled.insert(&name);
                }
            }
            if duty.finish {
                let handle = super::switch::Announcing {
                    cluster: cluster.clone(),
                    peers: gainer.peers.clone(),
                    is_up: gainer.is_up.clone(),
                    timeout: Duration::from_secs(30),
                };
                let tls = gainer.peers.tls();
                super::remove_finish::try_finish(&handle, tls, &layout, &dead, &me).await;
            }
        }
        let board = super::progress::board(&me);
        super::remove_finish::forget_stale_holds(&board, &layout, &me, &*gainer.is_up);
        let going = removals(&layout);
        settled.retain(
            &going
                .iter()
                .map(|d| movement_name(&layout, d))
                .collect::<Vec<_>>(),
        );
        forget_over(&engine, &board, &mut copied, &layout).await;
        tokio::select! {
            _ = views.changed() => {}
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = shutdown.wait_for(|v| *v) => return,
        }
    }
}
