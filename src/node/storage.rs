//! The first step of a node's start: its engine, its cluster layout (the
//! persisted one, or the topology file's seed), this node's place in it
//! (a member, or out: Left or Removed, a drain-only start), the gossip
//! generation and the clock incarnation, and the recovery after a start
//! that may have lost the unsynced WAL tail. Must not start any task or
//! open any socket.

use super::{NodeConfig, NodeError};
use crate::engine::{boot, incarnation, Cf, Engine, EngineError, RocksEngine, WriteBatch};
use crate::layout::{Layout, NodeState};
use crate::topology::NodeInfo;
use crate::view::store::Origin;
use crate::view::{Cluster, ClusterView};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// What a node starts from.
pub(super) struct Storage {
    pub engine: Arc<dyn Engine>,
    pub db_path: PathBuf,
    pub cluster: Cluster,
    /// This node in the layout it starts with.
    pub me: NodeInfo,
    pub generation: u64,
    /// The clock incarnation survived a clean shutdown.
    pub after_clean_shutdown: bool,
    /// The stored layout says this node is out of the cluster (Left, or
    /// Removed): it starts only to hand its queued hints over (`drain`).
    pub drain_only: bool,
    /// It is out because it was removed: the drain ends with
    /// [`NodeError::Removed`].
    pub removed: bool,
}

impl Storage {
    /// An engine error at `db_path`.
    pub fn engine_err(&self, source: EngineError) -> NodeError {
        engine_err(&self.db_path, source)
    }
}

fn engine_err(path: &std::path::Path, source: EngineError) -> NodeError {
    NodeError::Engine {
        path: path.display().to_string(),
        source,
    }
}

/// Opens the engine and the layout, and takes a new generation and, after
/// an unclean stop, a new incarnation.
pub(super) fn open(cfg: &NodeConfig) -> Result<Storage, NodeError> {
    let db_path = cfg.data_dir.join("db");
    let err = |source| engine_err(&db_path, source);
    let engine: Arc<dyn Engine> =
        Arc::new(RocksEngine::open(&db_path, cfg.engine.clone()).map_err(err)?);
    let cluster = open_cluster(cfg, &engine)?;
    let view = cluster.current();
    let (me, out) = place(&view, &cfg.node_id, &cfg.topology.source)?;
    let (previous_generation, generation) = next_generation(&*engine).map_err(err)?;
    let starting = Starting {
        view: &view,
        me: &me,
        drain_only: out.is_some(),
        durability: (&cfg.engine.durability).into(),
        previous_generation,
        generation,
        record: cfg.repair.after_unclean_start,
    };
    let start = start_engine(&*engine, &starting, &err)?;
    Ok(Storage {
        engine,
        db_path,
        cluster,
        me,
        generation,
        after_clean_shutdown: start.kept,
        drain_only: out.is_some(),
        removed: out == Some(NodeState::Removed),
    })
}

/// This node in the layout of `view`, and, when it is out of the cluster
/// (Left or Removed: a drain-only start), how it went.
pub(super) fn place(
    view: &ClusterView,
    id: &str,
    topology: &str,
) -> Result<(NodeInfo, Option<NodeState>), NodeError> {
    if let Some(me) = view.me() {
        return Ok((me.clone(), None));
    }
    let (me, state) = out(view, id)
        .ok_or_else(|| NodeError::UnknownNode(id.to_string(), topology.to_string()))?;
    if state == NodeState::Removed {
        tracing::error!(
            node = %id,
            "node '{id}' was removed from the cluster: it starts only to hand its queued hints, inter-DC entries and anti-entropy records over, then stops with 'was removed' (do not wipe its data directory before that)"
        );
    }
    Ok((me, Some(state)))
}

/// What [`start_engine`] needs to know of the start.
pub(super) struct Starting<'a> {
    pub view: &'a ClusterView,
    pub me: &'a NodeInfo,
    /// Out of the cluster: nothing to recover for.
    pub drain_only: bool,
    /// How the run this start begins acknowledges writes (its
    /// `Durability`). Noted for the next start, which decides on it
    /// (`engine::boot`); this start decides on the previous run's.
    pub durability: boot::RunDurability,
    /// The generation stored before this start took its own: the note of
    /// the previous run counts only if that start made it.
    pub previous_generation: u64,
    /// This start's generation, which its note is tagged with.
    pub generation: u64,
    /// Record ranges for anti-entropy (`--repair-after-unclean-start`).
    pub record: bool,
}

/// Decides this start's incarnation and, when the previous run may have
/// lost acknowledged writes (a new incarnation after an OS restart, and
/// that run did not sync each write: its durability as it noted it, not
/// this start's, review-final30 M2; or any new incarnation after a run
/// with no WAL), recovers from that ([`after_lost_tail`]).
pub(super) fn start_engine(
    engine: &dyn Engine,
    s: &Starting<'_>,
    err: &dyn Fn(EngineError) -> NodeError,
) -> Result<incarnation::Start, NodeError> {
    // A new incarnation after any start that did not follow a clean
    // shutdown, so dots lost with a WAL tail are never minted again.
    let start = incarnation::on_start(engine).map_err(err)?;
    let previous = boot::previous_run(engine, s.previous_generation).map_err(err)?;
    if !s.drain_only && !start.kept && !start.first && previous.may_have_lost() {
        after_lost_tail(engine, s).map_err(|e| match e {
            Lost::Engine(e) => err(e),
            Lost::Repair(e) => NodeError::Repair(e),
        })?;
    }
    // Only once the recovery is durable: a failure or a kill before this
    // leaves the old boot id and durability, so the next start (again not
    // after a clean shutdown) recovers again (review-elastic2-30 M3).
    boot::note_start(engine, s.durability, s.generation).map_err(err)?;
    Ok(start)
}

enum Lost {
    Engine(EngineError),
    Repair(crate::repair::RepairError),
}

/// After a start that may have lost the unsynced WAL tail: the pulls'
/// cursors may be past pages, and past writes this node acknowledged as a
/// pending replica, that are gone, and a leave's push cursors may be back
/// from a lost forget: they are all forgotten, so each copy runs again
/// from its start (audit11 D2, review-cancel33 M1). With `record`, every range this node
/// replicates or gains is recorded for anti-entropy: the replicas'
/// acknowledgements of writes lost here were not fsynced here, the others
/// hold them.
fn after_lost_tail(engine: &dyn Engine, s: &Starting<'_>) -> Result<(), Lost> {
    let me = s.me;
    if crate::movement::cursor::forget_after_lost_tail(engine).map_err(Lost::Engine)? {
        tracing::warn!(node = %me.id,
            "start after an unclean shutdown and an OS restart (or a run with no WAL): this node's join, replacement, removal or leave streams copy again from their start");
    }
    if !s.record {
        return Ok(());
    }
    let owned = crate::repair::records::record_every_range(engine, &s.view.ring, me.idx)
        .map_err(Lost::Repair)?;
    let after = crate::ring::Ring::from_layout(&s.view.layout.also_written());
    let pending = crate::repair::records::record_pending_ranges(
        engine,
        &s.view.ring,
        &after,
        &s.view.pending,
        me.idx,
    )
    .map_err(Lost::Repair)?;
    tracing::warn!(node = %me.id, ranges = owned, pending,
        "start after an unclean shutdown and an OS restart (or a run with no WAL): every range this node replicates or gains is recorded for anti-entropy");
    Ok(())
}

/// Node `id` as the layout of `view` still describes it, when it is out of
/// the cluster: Left (decommissioned) or Removed (`removenode`; its data
/// is not to be trusted, but the hints it queued are writes it
/// coordinated, still to hand over). Not a member, so with no index in
/// the ring.
fn out(view: &ClusterView, id: &str) -> Option<(NodeInfo, NodeState)> {
    let (dc, rack, n) = view.layout.node(id)?;
    matches!(n.state, NodeState::Left | NodeState::Removed)
        .then(|| (NodeInfo::from_layout(dc, rack, n), n.state))
}

/// A generation that grows across restarts (gossip uses it to tell a
/// restarted node from a stale one), and the one stored before it (0 if
/// none): every build takes one at every start, so the durability note
/// is tagged with it (`engine::boot`).
fn next_generation(engine: &dyn Engine) -> Result<(u64, u64), EngineError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(1);
    let prev = engine
        .get_raw(Cf::Meta, b"generation")?
        .and_then(|v| v.try_into().ok().map(u64::from_le_bytes))
        .unwrap_or(0);
    let gen = now.max(prev.saturating_add(1));
    let mut b = WriteBatch::new();
    b.put_raw(Cf::Meta, b"generation", &gen.to_le_bytes());
    engine.write(b)?;
    Ok((prev, gen))
}

/// The layout this node starts with: the persisted one when it is newer
/// than the topology file's seed (the file is only the seed).
fn open_cluster(cfg: &NodeConfig, engine: &Arc<dyn Engine>) -> Result<Cluster, NodeError> {
    let seed = Layout::seed(&cfg.topology);
    let (layout, origin) =
        crate::view::store::open(&**engine, seed).map_err(|e| NodeError::Layout(e.to_string()))?;
    match origin {
        Origin::Persisted => tracing::info!(version = layout.version, file = %cfg.topology.source,
            "layout: using the persisted layout, newer than the topology file's (the file is only the seed)"),
        _ => {
            tracing::info!(version = layout.version, file = %cfg.topology.source, "layout: seeded from the topology file")
        }
    }
    Cluster::new(layout, &cfg.node_id, Some(engine.clone()))
        .map_err(|e| NodeError::Layout(e.to_string()))
}

#[cfg(test)]
#[path = "storage_tests.rs"]
mod tests;
