//! Wires the subsystems of one node and owns its start-up and shutdown, in
//! three steps: `storage` (engine, layout, generation, incarnation) →
//! `wiring` (replica, TLS, peers, gossip, hints, coordinator, repair) →
//! `serve` (client gRPC, internode gRPC `internode`, admin HTTP, and the
//! background loops: gossip, hint delivery, anti-entropy, a join, the
//! layout's followers), all in one task set `tasks`, which also owns the
//! order of a graceful shutdown. A node that has left starts in `drain` instead
//! (hint delivery only). Must not contain request logic.

mod auth_sync;
#[cfg(test)]
mod decoders;
// Public only for the fuzz target; its functions panic where a property
// fails (review-tidy31 L), so they are no API.
#[doc(hidden)]
pub mod decoding;
mod drain;
mod health;
mod internode;
pub mod limits;
mod serve;
mod storage;
mod tasks;
mod wiring;

use crate::coordinator::CoordinatorConfig;
use crate::engine::{incarnation, EngineError, EngineOptions};
use crate::error::GeokvError;
use crate::hints::HintsConfig;
use crate::membership::MembershipConfig;
use crate::repair::RepairConfig;
use crate::topology::Topology;
use crate::transport::tls::TlsSetting;
use crate::version::DEFAULT_MAX_SIBLINGS;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::watch;

/// Everything one node needs to start.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub topology: Topology,
    pub node_id: String,
    pub data_dir: PathBuf,
    /// Allow `/faults` on the admin port (tests, `geokv dev`).
    pub fault_injection: bool,
    pub engine: EngineOptions,
    pub coordinator: CoordinatorConfig,
    pub hints: HintsConfig,
    pub membership: MembershipConfig,
    pub repair: RepairConfig,
    pub max_siblings: usize,
    /// TLS on the gRPC ports (`transport::tls`); plaintext by default here,
    /// the CLI requires `--tls-dir` or an explicit `--insecure`.
    pub tls: TlsSetting,
    /// Authentication and permissions (`security::auth`); off by default.
    pub auth: crate::security::auth::AuthConfig,
    /// Bounds of the gRPC ports and of client requests in flight.
    pub limits: limits::ServerLimits,
    /// The cap on the bytes per second this node's range movements stream
    /// together, MiB/s; 0 means none (`movement::throughput`).
    pub stream_throughput_mib: f64,
}

impl NodeConfig {
    /// Defaults for `node_id` of `topology`, data under `data_dir`.
    pub fn new(topology: Topology, node_id: &str, data_dir: PathBuf) -> Self {
        NodeConfig {
            topology,
            node_id: node_id.to_string(),
            data_dir,
            fault_injection: false,
            engine: EngineOptions::default(),
            coordinator: CoordinatorConfig::default(),
            hints: HintsConfig::default(),
            membership: MembershipConfig::default(),
            repair: RepairConfig::default(),
            max_siblings: DEFAULT_MAX_SIBLINGS,
            tls: TlsSetting::Insecure,
            auth: Default::default(),
            limits: Default::default(),
            stream_throughput_mib: crate::movement::throughput::DEFAULT_MIB_PER_SEC,
        }
    }
}

/// Why a node could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("node '{0}' is not in the topology ({1})")]
    UnknownNode(String, String),
    #[error("opening the engine at {path}: {source}")]
    Engine { path: String, source: EngineError },
    #[error(transparent)]
    Request(#[from] GeokvError),
    #[error("cluster layout: {0}")]
    Layout(String),
    #[error("TLS: {0}")]
    Tls(#[from] crate::transport::tls::TlsError),
    #[error("auth: {0}")]
    Auth(String),
    #[error("membership: {0}")]
    Membership(String),
    #[error("recording ranges for anti-entropy: {0}")]
    Repair(#[from] crate::repair::RepairError),
    #[error("gRPC reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("node tasks failed: {0}")]
    Tasks(String),
    #[error("replica writes were still running {0:?} after the replica closed (an engine stall or a hung disk?): stopped without the clean-shutdown marker, the next start recovers in full")]
    WritesStuck(Duration),
    #[error("the drain stopped with {left} hinted entries and anti-entropy records still to hand over ({queues}); start the node again to hand them over")]
    DrainUnfinished { left: u64, queues: String },
    /// `geokv removenode` removed this node (its decommission became a
    /// removal while it was unreachable): it handed its queues over and
    /// stops; exit code [`EXIT_REMOVED`].
    #[error("node '{0}' was removed from the cluster (`geokv removenode {0}`; the survivors re-replicated its ranges): it stops. To use the machine again, wipe its data directory and join it under a new id")]
    Removed(String),
    /// The removal of this node is decided, but it stopped (SIGTERM, or
    /// before its end task ran) before handing its queues over: exit code
    /// [`EXIT_REMOVED`] too (no automatic restart), but its queues are
    /// still to hand over (review-recover31 M1).
    #[error("node '{0}' is being removed from the cluster (`geokv removenode {0}`) and stopped before handing its queued hints, inter-DC entries and anti-entropy records over: start it again to hand its queues over; wipe its data directory only after it exits with 'was removed'")]
    RemovedBeforeHandOver(String),
    #[error("cannot serve {what} on {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: std::net::SocketAddr,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// The exit code of a node that stopped because it was removed
/// ([`NodeError::Removed`], or [`NodeError::RemovedBeforeHandOver`]), so a supervisor can tell it from a failure
/// (systemd: `RestartPreventExitStatus=3`). Any other error exits 1.
pub const EXIT_REMOVED: i32 = 3;

impl NodeError {
    /// The process's exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            NodeError::Removed(_) | NodeError::RemovedBeforeHandOver(_) => EXIT_REMOVED,
            _ => 1,
        }
    }
}

/// Closes the replica, then syncs everything and writes the clean-shutdown
/// marker that lets the next start keep the incarnation. With writes still
/// running after `within` (a stalled engine write), the marker is skipped
/// and the reason logged: the next start then does its full recovery (a
/// new incarnation), since a write committing after the marker could lose
/// a dot the next start would mint again. Whether the marker was written.
fn close_storage(
    replica: &crate::replica::Replica,
    engine: &dyn crate::engine::Engine,
    within: Duration,
) -> Result<bool, EngineError> {
    match replica.close(within) {
        Ok(()) => incarnation::on_clean_shutdown(engine).map(|()| true),
        Err(stuck) => {
            tracing::warn!(%stuck, "replica writes still running at shutdown: no clean-shutdown marker, \
                 the next start recovers in full (a new incarnation)");
            Ok(false)
        }
    }
}

/// Turns `stop` on when `outer` turns true; ends with the node's own
/// `shutdown` (a decommission that ended stops the node by itself).
async fn forward_stop(
    mut outer: watch::Receiver<bool>,
    stop: watch::Sender<bool>,
    mut shutdown: watch::Receiver<bool>,
) {
    tokio::select! {
        _ = outer.wait_for(|v| *v) => {
            let _ = stop.send(true);
        }
        _ = shutdown.wait_for(|v| *v) => {}
    }
}

/// Runs a node until `shutdown` turns true: storage, then the subsystems,
/// then the servers and loops in one task set ([`tasks`]). On shutdown
/// (the signal, a decommission that ended, or a task that failed) the
/// client port stops accepting, requests in flight finish within a bound,
/// the loops end, then the internode server stops accepting and finishes
/// its calls in flight; the replica closes (every later write, from a
/// connection still open, is refused as not applied), the engine syncs
/// and the clean-shutdown marker is written last. `Err` when the node's
/// removal is decided ([`NodeError::Removed`] or
/// [`NodeError::RemovedBeforeHandOver`], exit 3), or a task failed or
/// panicked ([`NodeError::Tasks`], exit 1): [`at_stop`].
pub async fn run(cfg: NodeConfig, outer: watch::Receiver<bool>) -> Result<(), NodeError> {
    // Before any metric handle is taken and kept (hint gauges, peer
    // links): a handle taken with no recorder stays a no-op (review-perf27 L1).
    crate::admin::install_metrics();
    // The node stops on `outer`, or by itself once decommissioned.
    let (stop, shutdown) = watch::channel(false);
    let s = storage::open(&cfg)?;
    let mut tasks = tasks::TaskSet::default();
    tasks.spawn_loop(
        "stop forwarder",
        forward_stop(outer, stop.clone(), shutdown.clone()),
    );
    if s.drain_only {
        // Killed while draining after its decommission: hand over, stop.
        let drained = drain::run(&cfg, &s, tasks, &stop, shutdown).await?;
        incarnation::on_clean_shutdown(&*s.engine).map_err(|e| s.engine_err(e))?;
        // A removed node says so once its queues are handed over.
        return drained.and_then(|()| match s.removed {
            true => Err(NodeError::Removed(s.me.id.clone())),
            false => Ok(()),
        });
    }
    let p = wiring::build(&cfg, &s, &shutdown, stop.clone(), tasks.spawner())?;
    serve::servers(&mut tasks, &s, &p, &shutdown).await?;
    let gossip_interval = Duration::from_millis(cfg.membership.gossip_interval_ms);
    serve::loops(&mut tasks, &s, &p, gossip_interval, &shutdown);
    let me = &s.me;
    tracing::info!(node = %me.id, dc = %me.dc, rack = %me.rack,
        client = %me.client_address, peer = %me.peer_address, admin = %me.admin_address,
        tls = p.tls.is_on(), "node started");

    let outcome = tasks.run(&stop, shutdown, tasks::GRACE).await;
    // Nothing commits after the final sync and the marker: writes still
    // running finish first; later ones (a peer's batch on a connection the
    // aborted server left open) are refused as not applied, and their
    // senders keep them.
    let gate = crate::replica::gate::CLOSE_WITHIN;
    let clean = close_storage(&p.replica, &*s.engine, gate).map_err(|e| s.engine_err(e))?;
    tracing::info!(node = %me.id, aborted = ?outcome.aborted, "node stopped");
    let at = AtStop {
        ended: p.control.ended(),
        decided: removal_decided(&s.cluster, &me.id),
        failed: &outcome.failed,
        clean,
    };
    at_stop(at, &me.id)
}

/// What [`run`] read once its tasks ended.
struct AtStop<'a> {
    /// How this node's removal end went (`Control::ended`).
    ended: Option<crate::movement::control::Ended>,
    /// The layout in force decides this node's removal.
    decided: bool,
    /// The tasks that failed.
    failed: &'a [String],
    /// The clean-shutdown marker was written.
    clean: bool,
}

/// Whether the layout in force decides the removal of `me` (`Remove{me}`
/// or me Removed), even if no task saw it (a stop racing the layout's
/// install, review-recover31 L2).
fn removal_decided(cluster: &crate::view::Cluster, me: &str) -> bool {
    crate::movement::leave::still_leaving(&cluster.current().layout, me).is_err()
}

/// The node's result: its removal error ([`removal_error`]), else the
/// tasks' failures ([`NodeError::Tasks`], exit 1: a decided removal whose
/// queues were not handed over is started again by its supervisor, and
/// that start hands them over, then exits 3 'was removed';
/// review-recover2-31 N1), else a stuck write, else `Ok`.
fn at_stop(at: AtStop<'_>, me: &str) -> Result<(), NodeError> {
    let failed = !at.failed.is_empty();
    if let Some(removed) = removal_error(at.ended, at.decided, failed, me) {
        if failed || !at.clean {
            tracing::error!(failed = ?at.failed, clean = at.clean, "the node also stopped with these failures");
        }
        return Err(removed);
    }
    if failed && (at.decided || at.ended.is_some()) {
        tracing::error!(node = %me, "the removal of this node is decided, but a task failed before its queues were handed over: \
             it exits 1 (not 3), so that its supervisor starts it again; that start hands its queues over, then it exits 3 'was removed'");
    }
    if failed {
        Err(NodeError::Tasks(at.failed.join("; ")))
    } else if !at.clean {
        Err(NodeError::WritesStuck(crate::replica::gate::CLOSE_WITHIN))
    } else {
        Ok(())
    }
}

/// The node's removal error, if the removal of `me` was decided: how its
/// end task ended, or, if that task never saw it, the layout in force
/// (`decided`): it is not handed over. Not when a task `failed` before
/// the hand-over: exit 3 would keep a supervisor from starting it again
/// to hand its queues over (review-recover2-31 N1).
fn removal_error(
    ended: Option<crate::movement::control::Ended>,
    decided: bool,
    failed: bool,
    me: &str,
) -> Option<NodeError> {
    use crate::movement::control::Ended;
    match ended {
        Some(Ended::HandedOver) => Some(NodeError::Removed(me.to_string())),
        _ if failed => None,
        Some(Ended::Stopped) => Some(NodeError::RemovedBeforeHandOver(me.to_string())),
        None => decided.then(|| NodeError::RemovedBeforeHandOver(me.to_string())),
    }
}

#[cfg(test)]
mod close_tests {
    use super::*;
    use crate::engine::{Engine, Limits, MemoryEngine};
    use crate::replica::Replica;
    use std::sync::Arc;

    /// A replica write stuck past the bound does not hold the shutdown,
    /// and the next start does not trust the incarnation (review Low of
    /// stop 23); without one, the marker is written and kept.
    #[test]
    fn a_write_stuck_past_the_bound_skips_the_clean_shutdown_marker() {
        for stuck in [true, false] {
            let engine: Arc<dyn Engine> = Arc::new(MemoryEngine::new(Limits::default()));
            incarnation::on_start(&*engine).expect("first start");
            let replica = Replica::new(engine.clone(), "n1", 64);
            let pass = stuck.then(|| replica.open().expect("open"));
            let within = Duration::from_millis(50);
            let marked = close_storage(&replica, &*engine, within).expect("storage");
            assert_eq!(marked, !stuck, "marker written only without a stuck write");
            drop(pass);
            let next = incarnation::on_start(&*engine).expect("next start");
            assert_eq!(next.kept, !stuck, "a full recovery after a stuck write");
        }
    }
}
