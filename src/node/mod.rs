//! Wires the subsystems of one node and owns its start-up and shutdown:
//! engine → replica → hints → membership → coordinator → servers
//! (client gRPC, internode gRPC, admin HTTP) → background loops (gossip,
//! hint delivery, anti-entropy). Must not contain request logic.

mod internode;

use crate::admin;
use crate::api::KvService;
use crate::coordinator::{Coordinator, CoordinatorConfig, Liveness};
use crate::engine::{incarnation, Cf, Engine, EngineError, EngineOptions, RocksEngine, WriteBatch};
use crate::error::GeokvError;
use crate::hints::deliver::Delivery;
use crate::hints::receive::Receiver;
use crate::hints::{Hints, HintsConfig};
use crate::layout::Layout;
use crate::membership::{Gossiper, MembershipConfig, MonotonicClock};
use crate::proto::v1::internode::internode_server::InternodeServer;
use crate::proto::v1::kv_server::KvServer;
use crate::repair::{Repair, RepairConfig, SessionIo};
use crate::replica::Replica;
use crate::topology::Topology;
use crate::transport::faults::Faults;
use crate::transport::tls::{Port, Tls, TlsSetting};
use crate::transport::Peers;
use crate::version::DEFAULT_MAX_SIBLINGS;
use crate::view::store::Origin;
use crate::view::sync::LayoutSync;
use crate::view::Cluster;
use internode::InternodeService;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
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
    #[error("membership: {0}")]
    Membership(String),
    #[error("recording ranges for anti-entropy: {0}")]
    Repair(#[from] crate::repair::RepairError),
    #[error("cannot serve {what} on {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: std::net::SocketAddr,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Liveness from gossip, by node id.
struct GossipLiveness {
    gossiper: Gossiper,
}

impl Liveness for GossipLiveness {
    fn is_up(&self, id: &str) -> bool {
        self.gossiper.is_up(id)
    }
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

/// Runs a node until `shutdown` turns true.
pub async fn run(cfg: NodeConfig, shutdown: watch::Receiver<bool>) -> Result<(), NodeError> {
    let db_path = cfg.data_dir.join("db");
    let engine: Arc<dyn Engine> = Arc::new(
        RocksEngine::open(&db_path, cfg.engine.clone()).map_err(|source| NodeError::Engine {
            path: db_path.display().to_string(),
            source,
        })?,
    );
    let cluster = open_cluster(&cfg, &engine)?;
    let view = cluster.current();
    let ring = view.ring.clone();
    let me = view
        .me()
        .ok_or_else(|| NodeError::UnknownNode(cfg.node_id.clone(), cfg.topology.source.clone()))?
        .clone();
    let generation = next_generation(&*engine).map_err(|source| NodeError::Engine {
        path: db_path.display().to_string(),
        source,
    })?;
    // A new incarnation after any start that did not follow a clean
    // shutdown, so dots lost with a WAL tail are never minted again.
    let start = incarnation::on_start(&*engine).map_err(|source| NodeError::Engine {
        path: db_path.display().to_string(),
        source,
    })?;
    let rebooted = crate::engine::boot::rebooted_since_last_start(&*engine).map_err(|source| {
        NodeError::Engine {
            path: db_path.display().to_string(),
            source,
        }
    })?;
    let synced = matches!(cfg.engine.durability, crate::engine::Durability::Sync);
    if !start.kept && !start.first && rebooted && !synced && cfg.repair.after_unclean_start {
        // The replicas' acknowledgements of writes lost with this node's
        // unsynced WAL tail were not fsynced here: the others hold them.
        let ranges = crate::repair::records::record_every_range(&*engine, &ring, me.idx)?;
        tracing::warn!(node = %me.id, ranges,
            "start after an unclean shutdown and an OS restart: every range this node replicates is recorded for anti-entropy");
    }
    let replica = Arc::new(Replica::new(engine.clone(), &me.id, cfg.max_siblings));
    tracing::info!(node = %me.id, actor = %replica.actor_name(), after_clean_shutdown = start.kept, "clock actor");
    let faults = Arc::new(Faults::new(cfg.fault_injection));
    let tls = Tls::load(&cfg.tls, &me.id)?;
    tls.spawn_reload(Duration::from_secs(5), shutdown.clone());
    let peers = Arc::new(Peers::new(me.clone(), faults.clone(), &tls));
    let gossiper = Gossiper::new(
        cfg.membership.clone(),
        ring.nodes().to_vec(),
        &me.id,
        generation,
        Arc::new(MonotonicClock::new()),
    )
    .map_err(|e| NodeError::Membership(e.to_string()))?;
    let liveness: Arc<dyn Liveness> = Arc::new(GossipLiveness {
        gossiper: gossiper.clone(),
    });
    let hints = Arc::new(Hints::open(
        engine.clone(),
        cluster.clone(),
        me.clone(),
        cfg.hints.clone(),
    )?);
    let coordinator = Arc::new(Coordinator::new(
        cluster.clone(),
        me.clone(),
        peers.clone(),
        replica.clone(),
        liveness.clone(),
        hints.clone(),
        cfg.coordinator.clone(),
    ));

    let repair = Arc::new(Repair::new(
        SessionIo::new(
            cluster.clone(),
            replica.clone(),
            peers.clone(),
            cfg.repair.session.clone(),
        ),
        liveness.clone(),
        cfg.repair.clone(),
    ));

    let layout_sync = LayoutSync::new(cluster.clone(), peers.clone());
    cluster.set_push(layout_sync.push_hook());
    let internode = InternodeService {
        cluster: cluster.clone(),
        layout: layout_sync.clone(),
        replica: replica.clone(),
        coordinator: coordinator.clone(),
        receiver: Receiver {
            hints: hints.clone(),
            peers: peers.clone(),
            cluster: cluster.clone(),
            replica: replica.clone(),
            liveness: liveness.clone(),
            me: me.clone(),
            permits: Arc::new(tokio::sync::Semaphore::new(
                crate::hints::receive::REPLAY_PERMITS,
            )),
        },
        gossiper: gossiper.clone(),
        faults: faults.clone(),
    };
    let kv = KvService {
        coordinator,
        gossiper: gossiper.clone(),
        limits: engine.limits().clone(),
        local_id: me.id.clone(),
    };

    let internode_listener = bind("internode gRPC", me.peer_address).await?;
    let client_listener = bind("client gRPC", me.client_address).await?;
    let mut tasks = tokio::task::JoinSet::new();
    {
        let mut sd = shutdown.clone();
        let (layer, incoming) = (
            tls.guard(Port::Internode),
            tls.incoming(internode_listener, Port::Internode),
        );
        tasks.spawn(async move {
            tonic::transport::Server::builder()
                .layer(layer)
                .add_service(
                    InternodeServer::new(internode)
                        .max_decoding_message_size(64 << 20)
                        .max_encoding_message_size(64 << 20),
                )
                .serve_with_incoming_shutdown(incoming, async move {
                    let _ = sd.wait_for(|v| *v).await;
                })
                .await
                .map_err(|e| e.to_string())
        });
    }
    {
        let mut sd = shutdown.clone();
        let (layer, incoming) = (
            tls.guard(Port::Client),
            tls.incoming(client_listener, Port::Client),
        );
        tasks.spawn(async move {
            tonic::transport::Server::builder()
                .layer(layer)
                .add_service(
                    KvServer::new(kv)
                        .max_decoding_message_size(8 << 20)
                        .max_encoding_message_size(64 << 20),
                )
                .serve_with_incoming_shutdown(incoming, async move {
                    let _ = sd.wait_for(|v| *v).await;
                })
                .await
                .map_err(|e| e.to_string())
        });
    }
    {
        let (addr, id, f, r, sd) = (
            me.admin_address,
            me.id.clone(),
            faults.clone(),
            repair.clone(),
            shutdown.clone(),
        );
        let c = cluster.clone();
        tasks.spawn(async move {
            admin::serve(addr, id, f, Some(r), Some(c), sd)
                .await
                .map_err(|e| e.to_string())
        });
    }
    {
        let (me, e, sd) = (me.clone(), engine.clone(), shutdown.clone());
        tasks.spawn(async move {
            admin::collect::run(&me, e, sd).await;
            Ok(())
        });
    }
    {
        let peers = peers.clone();
        let g = gossiper.clone();
        let sd = shutdown.clone();
        let interval = Duration::from_millis(cfg.membership.gossip_interval_ms);
        tasks.spawn(async move {
            g.run(
                move |peer, mut digest| {
                    let (peers, sync) = (peers.clone(), layout_sync.clone());
                    sync.stamp(&mut digest);
                    async move {
                        let reply = peers
                            .gossip(&peer, digest, interval)
                            .await
                            .map_err(|e| e.to_string())?;
                        sync.observe(&reply);
                        Ok(reply)
                    }
                },
                sd,
            )
            .await;
            Ok(())
        });
    }
    {
        let (r, sd) = (repair.clone(), shutdown.clone());
        tasks.spawn(async move {
            r.run(sd).await;
            Ok(())
        });
    }
    Delivery {
        hints: hints.clone(),
        peers: peers.clone(),
        cluster: cluster.clone(),
        liveness: liveness.clone(),
        me: me.clone(),
    }
    .spawn_all(shutdown.clone());
    if view.layout.node(&me.id).map(|(_, _, n)| n.state) == Some(crate::layout::NodeState::Joining)
    {
        // A joining node (new, or restarted mid-join) streams its ranges
        // and then proposes itself Normal.
        let live = liveness.clone();
        tokio::spawn(crate::movement::run_join(
            cluster.clone(),
            engine.clone(),
            peers.clone(),
            Arc::new(move |id: &str| live.is_up(id)),
            Arc::default(),
            shutdown.clone(),
        ));
    }
    tokio::spawn(crate::view::sync::follow(
        cluster.clone(),
        peers.clone(),
        gossiper.clone(),
        shutdown.clone(),
    ));
    tracing::info!(node = %me.id, dc = %me.dc, rack = %me.rack,
        client = %me.client_address, peer = %me.peer_address, admin = %me.admin_address,
        tls = tls.is_on(), "node started");

    while let Some(res) = tasks.join_next().await {
        match res {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "a server stopped"),
            Err(e) => tracing::error!(error = %e, "a server task panicked"),
        }
        if *shutdown.borrow() {
            break;
        }
    }
    tasks.shutdown().await;
    // No update commits after the marker (updates still running finish
    // first; later ones are refused as not applied).
    replica.close();
    // Everything synced, then the marker that lets the next start keep the
    // incarnation.
    incarnation::on_clean_shutdown(&*engine).map_err(|source| NodeError::Engine {
        path: db_path.display().to_string(),
        source,
    })?;
    tracing::info!(node = %me.id, "node stopped");
    Ok(())
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

async fn bind(
    what: &'static str,
    addr: std::net::SocketAddr,
) -> Result<tokio::net::TcpListener, NodeError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| NodeError::Bind {
            what,
            addr,
            source: Box::new(e),
        })
}
