//! The first step of a node's start: its engine, its cluster layout (the
//! persisted one, or the topology file's seed), this node's place in it,
//! the gossip generation and the clock incarnation. Must not start any
//! task or open any socket.

use super::{NodeConfig, NodeError};
use crate::engine::{incarnation, Cf, Engine, EngineError, RocksEngine, WriteBatch};
use crate::layout::Layout;
use crate::topology::NodeInfo;
use crate::view::store::Origin;
use crate::view::Cluster;
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
    /// The stored layout says this node has decommissioned (Left): it
    /// starts only to hand its queued hints over (`drain`).
    pub drain_only: bool,
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
    let (me, drain_only) = match view.me() {
        Some(me) => (me.clone(), false),
        None => (
            left(&view, &cfg.node_id).ok_or_else(|| {
                NodeError::UnknownNode(cfg.node_id.clone(), cfg.topology.source.clone())
            })?,
            true,
        ),
    };
    let generation = next_generation(&*engine).map_err(err)?;
    // A new incarnation after any start that did not follow a clean
    // shutdown, so dots lost with a WAL tail are never minted again.
    let start = incarnation::on_start(&*engine).map_err(err)?;
    let rebooted = crate::engine::boot::rebooted_since_last_start(&*engine).map_err(err)?;
    let synced = matches!(cfg.engine.durability, crate::engine::Durability::Sync);
    if !drain_only
        && !start.kept
        && !start.first
        && rebooted
        && !synced
        && cfg.repair.after_unclean_start
    {
        // The replicas' acknowledgements of writes lost with this node's
        // unsynced WAL tail were not fsynced here: the others hold them.
        let ranges = crate::repair::records::record_every_range(&*engine, &view.ring, me.idx)?;
        tracing::warn!(node = %me.id, ranges,
            "start after an unclean shutdown and an OS restart: every range this node replicates is recorded for anti-entropy");
    }
    Ok(Storage {
        engine,
        db_path,
        cluster,
        me,
        generation,
        after_clean_shutdown: start.kept,
        drain_only,
    })
}

/// Node `id` as the layout of `view` still describes it, when it has left
/// by decommission (Left; not Removed: a removed node was dead, and its
/// data is not to be trusted): not a member, so with no index in the ring.
fn left(view: &crate::view::ClusterView, id: &str) -> Option<NodeInfo> {
    let (dc, rack, n) = view.layout.node(id)?;
    (n.state == crate::layout::NodeState::Left).then(|| NodeInfo {
        idx: crate::view::NOT_A_MEMBER,
        id: n.id.clone(),
        dc: dc.to_string(),
        rack: rack.to_string(),
        client_address: n.client_address,
        peer_address: n.peer_address,
        admin_address: n.admin_address,
        vnodes: 0,
    })
}

/// A generation that grows across restarts (gossip uses it to tell a
/// restarted node from a stale one).
fn next_generation(engine: &dyn Engine) -> Result<u64, EngineError> {
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
    Ok(gen)
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
