//! The second step of a node's start: the subsystems built over its
//! storage — replica, TLS, peers, gossip and liveness, hints, coordinator,
//! repair, the layout's sync — and the two gRPC services over them. Must
//! not open a socket or spawn a request-serving task (certificate reload
//! aside).

use super::internode::InternodeService;
use super::storage::Storage;
use super::{NodeConfig, NodeError};
use crate::api::{KvService, RequestLimits};
use crate::coordinator::{Coordinator, Liveness};
use crate::hints::receive::Receiver;
use crate::hints::Hints;
use crate::membership::{Gossiper, MonotonicClock};
use crate::repair::{Repair, SessionIo};
use crate::replica::Replica;
use crate::security::auth::Auth;
use crate::tasks::Spawner;
use crate::topology::NodeInfo;
use crate::transport::faults::Faults;
use crate::transport::tls::Tls;
use crate::transport::Peers;
use crate::view::sync::LayoutSync;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Liveness from gossip, by node id.
struct GossipLiveness {
    gossiper: Gossiper,
}

impl Liveness for GossipLiveness {
    fn is_up(&self, id: &str) -> bool {
        self.gossiper.is_up(id)
    }
    fn is_ready(&self, id: &str) -> bool {
        self.gossiper.is_ready(id)
    }
}

/// The subsystems of one node.
pub(super) struct Parts {
    pub replica: Arc<Replica>,
    pub faults: Arc<Faults>,
    pub tls: Tls,
    pub peers: Arc<Peers>,
    pub gossiper: Gossiper,
    pub liveness: Arc<dyn Liveness>,
    pub hints: Arc<Hints>,
    pub coordinator: Arc<Coordinator>,
    pub repair: Arc<Repair>,
    pub layout_sync: Arc<LayoutSync>,
    /// Decommission and cleanup (`movement::control`).
    pub control: Arc<crate::movement::Control>,
    pub auth: Arc<Auth>,
    /// Who may use the admin port.
    pub admin_guard: crate::admin::Guard,
    /// Port bounds and the client admission gate.
    pub limits: super::limits::ServerLimits,
    pub admission: Arc<crate::api::admission::Admission>,
}

/// Builds every subsystem over `s`.
pub(super) fn build(
    cfg: &NodeConfig,
    s: &Storage,
    shutdown: &watch::Receiver<bool>,
    stop: watch::Sender<bool>,
    spawner: Spawner,
) -> Result<Parts, NodeError> {
    let me = &s.me;
    let replica = Arc::new(Replica::new(s.engine.clone(), &me.id, cfg.max_siblings));
    tracing::info!(node = %me.id, actor = %replica.actor_name(), after_clean_shutdown = s.after_clean_shutdown, "clock actor");
    let faults = Arc::new(Faults::new(cfg.fault_injection));
    let tls = Tls::load(&cfg.tls, &me.id)?;
    tls.spawn_reload(Duration::from_secs(5), shutdown.clone());
    let peers = Arc::new(Peers::new(me.clone(), faults.clone(), &tls).lanes_in(spawner.clone()));
    let (gossiper, liveness) = gossip(cfg, s, s.cluster.current().ring.nodes().to_vec())?;
    let hints = Arc::new(
        Hints::open(
            s.engine.clone(),
            s.cluster.clone(),
            me.clone(),
            cfg.hints.clone(),
        )?
        // A hint's copy bound for this node is a replica write.
        .with_replica(replica.clone()),
    );
    let coordinator = Arc::new(
        Coordinator::new(
            s.cluster.clone(),
            me.clone(),
            peers.clone(),
            replica.clone(),
            liveness.clone(),
            hints.clone(),
            cfg.coordinator.clone(),
        )
        .stopping_on(shutdown.clone()),
    );
    let repair = repair(cfg, s, &replica, &peers, &liveness);
    let layout_sync = layout_sync(s, &peers, spawner.clone());
    let live = liveness.clone();
    let control = crate::movement::Control::new(
        s.cluster.clone(),
        // Movement writes (stream pages, cleanup) pass the replica's gate,
        // which the node's close shuts before the final sync and marker.
        replica.gated(),
        peers.clone(),
        Arc::new(move |id: &str| live.is_up(id)),
        hints.clone(),
        crate::movement::control::NodeHooks {
            stop,
            spawner: spawner.clone(),
        },
        Arc::new(crate::movement::Throughput::new(cfg.stream_throughput_mib)),
    );
    let auth = open_auth(cfg, s, &peers, spawner)?;
    Ok(Parts {
        control,
        replica,
        faults,
        tls,
        peers,
        gossiper,
        liveness,
        hints,
        coordinator,
        repair,
        layout_sync,
        admin_guard: crate::admin::Guard {
            auth: Some(auth.clone()),
            open_metrics: cfg.auth.open_metrics,
        },
        auth,
        limits: cfg.limits,
        admission: crate::api::admission::Admission::new(cfg.limits.admission),
    })
}

/// Anti-entropy over the replica and the peers.
fn repair(
    cfg: &NodeConfig,
    s: &Storage,
    replica: &Arc<Replica>,
    peers: &Arc<Peers>,
    liveness: &Arc<dyn Liveness>,
) -> Arc<Repair> {
    let io = SessionIo::new(
        s.cluster.clone(),
        replica.clone(),
        peers.clone(),
        cfg.repair.session.clone(),
    );
    Arc::new(Repair::new(
        io,
        s.engine.clone(),
        liveness.clone(),
        cfg.repair.clone(),
    ))
}

/// The layout's sync, wired into the cluster view: its pushes on change
/// and the peers its consensus talks to.
fn layout_sync(s: &Storage, peers: &Arc<Peers>, spawner: Spawner) -> Arc<LayoutSync> {
    let layout_sync = LayoutSync::new(s.cluster.clone(), peers.clone(), spawner);
    s.cluster.set_push(layout_sync.push_hook());
    s.cluster
        .set_net(Arc::new(crate::view::cas::PeersNet(peers.clone())));
    layout_sync
}

/// The node's auth state, pushed to peers on change; the admin role is
/// created from the admin token when there is one.
fn open_auth(
    cfg: &NodeConfig,
    s: &Storage,
    peers: &Arc<Peers>,
    spawner: Spawner,
) -> Result<Arc<Auth>, NodeError> {
    let auth = Arc::new(
        Auth::open(cfg.auth.enabled, s.engine.clone())
            .map_err(|e| NodeError::Auth(e.to_string()))?,
    );
    auth.set_push(super::auth_sync::push_hook(
        &auth,
        s.cluster.clone(),
        peers.clone(),
        spawner,
    ));
    let cluster = s.cluster.clone();
    auth.set_members(Arc::new(move || {
        let view = cluster.current();
        (view.members().iter())
            .filter(|n| n.id != view.me_id())
            .map(|n| n.id.to_string())
            .collect()
    }));
    if let Some(token) = &cfg.auth.admin_token {
        if auth
            .bootstrap(token)
            .map_err(|e| NodeError::Auth(e.to_string()))?
        {
            tracing::info!(role = %token.role, "auth: created the admin role from the admin token");
        }
    }
    if !cfg.auth.enabled && !matches!(cfg.tls, crate::transport::tls::TlsSetting::Insecure) {
        tracing::warn!("auth: off on a TLS node (--auth=false / --no-auth): every client call and admin route is open to whoever reaches the ports");
    }
    if cfg.auth.enabled && auth.state().roles().is_empty() {
        tracing::warn!("auth: enforcing with no role yet; the state arrives from peers, or start one node with --admin-token-file / GEOKV_ADMIN_TOKEN");
    }
    Ok(auth)
}

/// The gossiper over `nodes` (this node among them), and liveness from it;
/// for a full node and for a drain-only restart (`drain.rs`).
pub(super) fn gossip(
    cfg: &NodeConfig,
    s: &Storage,
    nodes: Vec<NodeInfo>,
) -> Result<(Gossiper, Arc<dyn Liveness>), NodeError> {
    let gossiper = Gossiper::new(
        cfg.membership.clone(),
        nodes,
        &s.me.id,
        s.generation,
        Arc::new(MonotonicClock::new()),
    )
    .map_err(|e| NodeError::Membership(e.to_string()))?;
    // Peers learn that this node refuses writes (review-tidy34 L4).
    let cluster = s.cluster.clone();
    gossiper.report_readiness(Arc::new(move || cluster.serving().is_ok()));
    let liveness: Arc<dyn Liveness> = Arc::new(GossipLiveness {
        gossiper: gossiper.clone(),
    });
    Ok((gossiper, liveness))
}

impl Parts {
    /// The internode gRPC service.
    pub fn internode(&self, s: &Storage) -> InternodeService {
        InternodeService {
            cluster: s.cluster.clone(),
            layout: self.layout_sync.clone(),
            replica: self.replica.clone(),
            coordinator: self.coordinator.clone(),
            receiver: Receiver {
                hints: self.hints.clone(),
                peers: self.peers.clone(),
                cluster: s.cluster.clone(),
                replica: self.replica.clone(),
                liveness: self.liveness.clone(),
                me: s.me.clone(),
                permits: Arc::new(tokio::sync::Semaphore::new(
                    crate::hints::receive::REPLAY_PERMITS,
                )),
            },
            gossiper: self.gossiper.clone(),
            faults: self.faults.clone(),
            auth: self.auth.clone(),
        }
    }

    /// The client gRPC service.
    pub fn kv(&self, s: &Storage) -> KvService {
        let engine = s.engine.limits();
        KvService {
            coordinator: self.coordinator.clone(),
            gossiper: self.gossiper.clone(),
            limits: RequestLimits {
                max_key_bytes: engine.max_key_bytes,
                max_value_bytes: engine.max_value_bytes,
            },
            local_id: s.me.id.clone(),
            auth: self.auth.clone(),
        }
    }
}
