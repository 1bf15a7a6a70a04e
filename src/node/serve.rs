//! The third step of a node's start: its servers (internode and client
//! gRPC — the client port also serves `grpc.health.v1` and reflection —
//! admin HTTP) and its background loops (metrics collection, gossip,
//! anti-entropy, hint delivery, a join in progress, following the layout).
//! Must not build subsystems (that is `wiring`).

use super::limits::oversize_status;
use super::storage::Storage;
use super::wiring::Parts;
use super::NodeError;
use crate::admin;
use crate::api::auth::layer::AuthLayer;
use crate::api::shed::{ByteBudget, Shares, ShedLayer, Timeouts};
use crate::hints::deliver::Delivery;
use crate::layout::NodeState;
use crate::proto::v1::internode::internode_server::InternodeServer;
use crate::proto::v1::kv_server::KvServer;
use crate::transport::tls::Port;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tower::Layer;

/// The node's long-running tasks ([`super::tasks`]).
pub(super) type Tasks = super::tasks::TaskSet;

/// The longest an internode handler may take to answer. Replica calls
/// carry no `grpc-timeout` (the coordinator times them out itself), so
/// this is the server's own backstop: a handler stuck (a stalled engine, a
/// lock) is cut, its task and its permits freed, rather than held forever
/// by a caller that gave up. Generous: above every deadline a caller
/// sets on an internode call (the longest: repair's Merkle tree of a
/// whole range, 120 s; a forwarded write, up to the client API's 60 s),
/// so it only ever cuts a handler nobody waits for any more. It bounds
/// the handler until its response starts, not a response stream: a hint stream's acknowledgements flow for as
/// long as the stream is open (`tonic`'s timeout wraps the response
/// future only).
pub(super) const PEER_HANDLER_TIMEOUT: Duration = Duration::from_secs(180);

/// The internode server's builder, with [`PEER_HANDLER_TIMEOUT`].
pub(super) fn peer_server() -> tonic::transport::Server {
    peer_server_with(PEER_HANDLER_TIMEOUT)
}

fn peer_server_with(timeout: Duration) -> tonic::transport::Server {
    tonic::transport::Server::builder().timeout(timeout)
}

/// Binds the gRPC ports and spawns the three servers.
pub(super) async fn servers(
    tasks: &mut Tasks,
    s: &Storage,
    p: &Parts,
    shutdown: &watch::Receiver<bool>,
) -> Result<(), NodeError> {
    let internode_listener = bind("internode gRPC", s.me.peer_address).await?;
    let client_listener = bind("client gRPC", s.me.client_address).await?;
    internode_server(tasks, s, p, internode_listener);
    catch_up(s, p, shutdown).await;
    client_server(tasks, s, p, client_listener, shutdown)?;
    admin_server(tasks, s, p, shutdown);
    Ok(())
}

/// Before the client port serves, the layout in force catches up with a
/// majority of the members (issue 11, W4: `view::catch_up`, bounded), or
/// until the node is told to stop. The internode port already serves, so
/// nodes starting together answer each other.
async fn catch_up(s: &Storage, p: &Parts, shutdown: &watch::Receiver<bool>) {
    use crate::view::catch_up::{catch_up, PeersSource, CATCH_UP_WITHIN};
    let source = PeersSource(p.peers.clone());
    let mut stop = shutdown.clone();
    tokio::select! {
        _ = catch_up(&s.cluster, &source, CATCH_UP_WITHIN) => {}
        _ = stop.wait_for(|v| *v) => {}
    }
}

/// Spawns the internode gRPC server on `listener`.
fn internode_server(tasks: &mut Tasks, s: &Storage, p: &Parts, listener: tokio::net::TcpListener) {
    let internode = p.internode(s);
    let peer_limits = p.limits.peer;
    // Last, on its own later signal: other nodes' replica calls (and this
    // node's own requests in flight) are served while the client port
    // drains and the loops end; only then does it stop accepting.
    let mut sd = tasks.late_signal();
    let (layer, incoming) = (
        p.tls.guard(Port::Internode),
        p.tls
            .incoming_limited(listener, Port::Internode, peer_limits.caps()),
    );
    tasks.spawn_last("internode gRPC", async move {
        peer_limits
            .apply(peer_server())
            .layer(layer)
            .layer(tower::util::MapResponseLayer::new(oversize_status))
            .add_service(
                InternodeServer::new(internode)
                    .max_decoding_message_size(peer_limits.max_decoding_bytes)
                    .max_encoding_message_size(peer_limits.max_encoding_bytes),
            )
            .serve_with_incoming_shutdown(incoming, async move {
                let _ = sd.wait_for(|v| *v).await;
            })
            .await
            .map_err(crate::tasks::TaskError::stopped)
    });
}

/// Spawns the client gRPC server (with `grpc.health.v1` and reflection)
/// on `listener`.
fn client_server(
    tasks: &mut Tasks,
    s: &Storage,
    p: &Parts,
    listener: tokio::net::TcpListener,
    shutdown: &watch::Receiver<bool>,
) -> Result<(), NodeError> {
    let (kv, authn) = (p.kv(s), AuthLayer::new(p.auth.clone()));
    let client_limits = p.limits.client;
    let budget = ByteBudget::new(
        p.limits.client_bytes_in_flight,
        p.limits.admission.retry_after,
    );
    let timeouts = Timeouts {
        handler: p.limits.client_handler_timeout,
        body: p.limits.client_body_timeout,
    };
    let shares = Shares::new(p.limits.client_share());
    let shed = ShedLayer::new(p.admission.clone(), budget, timeouts).with_shares(shares);
    let mut sd = shutdown.clone();
    let (layer, incoming) = (
        p.tls.guard(Port::Client),
        p.tls
            .incoming_limited(listener, Port::Client, client_limits.caps()),
    );
    let (health, health_service) = tonic_health::server::health_reporter();
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::CLIENT_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    // Readiness on `grpc.health.v1` (`Cluster::serving`, as `/health`):
    // NOT_SERVING while the node may not serve and once it shuts down, so
    // a balancer drains it first.
    tasks.spawn_loop(
        "client gRPC health",
        super::health::follow(s.cluster.clone(), health, shutdown.clone()),
    );
    tasks.spawn("client gRPC", async move {
        let drained = async move {
            let _ = sd.wait_for(|v| *v).await;
        };
        client_limits
            .apply(tonic::transport::Server::builder())
            .layer(layer)
            .layer(tower::util::MapResponseLayer::new(oversize_status))
            .add_service(health_service)
            .add_service(reflection)
            // Authenticated, then admitted (requests and bytes in flight,
            // the handler timeout), from the headers, before the body is
            // read.
            .add_service(
                authn.layer(
                    shed.layer(
                        KvServer::new(kv)
                            .max_decoding_message_size(client_limits.max_decoding_bytes)
                            .max_encoding_message_size(client_limits.max_encoding_bytes),
                    ),
                ),
            )
            .serve_with_incoming_shutdown(incoming, drained)
            .await
    });
    Ok(())
}

/// Spawns the admin HTTP server.
fn admin_server(tasks: &mut Tasks, s: &Storage, p: &Parts, shutdown: &watch::Receiver<bool>) {
    let (addr, sd) = (s.me.admin_address, shutdown.clone());
    let services = admin::Services {
        node_id: s.me.id.clone(),
        faults: p.faults.clone(),
        repair: Some(p.repair.clone()),
        cluster: Some(s.cluster.clone()),
        control: Some(p.control.clone()),
        engine: Some(s.engine.clone()),
        guard: p.admin_guard.clone(),
        tls: p.tls.clone(),
        spawner: tasks.spawner(),
    };
    tasks.spawn("admin HTTP", async move {
        admin::serve(addr, services, sd).await
    });
}

/// Spawns the background loops.
pub(super) fn loops(
    tasks: &mut Tasks,
    s: &Storage,
    p: &Parts,
    gossip_interval: Duration,
    shutdown: &watch::Receiver<bool>,
) {
    let (me, e, sd) = (s.me.clone(), s.engine.clone(), shutdown.clone());
    tasks.spawn_loop(
        "metrics",
        async move { admin::collect::run(&me, e, sd).await },
    );
    let (peers, sync, g, sd) = (
        p.peers.clone(),
        p.layout_sync.clone(),
        p.gossiper.clone(),
        shutdown.clone(),
    );
    tasks.spawn_loop("gossip", async move {
        g.run(
            move |peer, mut digest| {
                let (peers, sync) = (peers.clone(), sync.clone());
                sync.stamp(&mut digest);
                async move {
                    let reply = peers.gossip(&peer, digest, gossip_interval).await?;
                    sync.observe(&reply);
                    Ok::<_, crate::transport::TransportError>(reply)
                }
            },
            sd,
        )
        .await;
    });
    let (r, sd) = (p.repair.clone(), shutdown.clone());
    tasks.spawn_loop("anti-entropy", async move { r.run(sd).await });
    let (a, c, peers, sd) = (
        p.auth.clone(),
        s.cluster.clone(),
        p.peers.clone(),
        shutdown.clone(),
    );
    tasks.spawn_loop("auth sync", async move {
        super::auth_sync::run(a, c, peers, Duration::from_secs(1), sd).await;
    });
    let delivery = Delivery {
        hints: p.hints.clone(),
        peers: p.peers.clone(),
        cluster: s.cluster.clone(),
        liveness: p.liveness.clone(),
        me: s.me.clone(),
    };
    // Hint delivery stops with the first signal: from then on a write
    // forwarded here could not reach its remote datacenters, so the
    // coordinator, reading the same signal, tells forwarders to ask
    // another replica (`Coordinator::stopping_on`).
    tasks.spawn("hint delivery", delivery.run_all(shutdown.clone()));
    movements(tasks, s, p, shutdown);
}

/// Spawns the loops of range movements: resuming a join, a replacement or
/// a decommission this node was in when it stopped, and following cleanups,
/// removals of dead nodes and the layout.
fn movements(tasks: &mut Tasks, s: &Storage, p: &Parts, shutdown: &watch::Receiver<bool>) {
    let view = s.cluster.current();
    let live = p.liveness.clone();
    let is_up: Arc<dyn Fn(&str) -> bool + Send + Sync> = Arc::new(move |id: &str| live.is_up(id));
    // Before any movement step asks the board (`movement::upgrade`).
    set_board(&s.me.id, p, &is_up);
    if view.layout.node(&s.me.id).map(|(_, _, n)| n.state) == Some(NodeState::Joining) {
        // A joining node (new, or restarted mid-join) streams its ranges
        // and then proposes itself Normal.
        let is_up = is_up.clone();
        if crate::movement::replace::replacing(&view.layout, &s.me.id).is_some() {
            // A replacing node copies the dead node's ranges from survivors.
            tasks.spawn(
                "replace",
                crate::movement::replace::run_replace(
                    s.cluster.clone(),
                    p.control.engine.clone(),
                    p.peers.clone(),
                    is_up,
                    p.control.throughput.clone(),
                    shutdown.clone(),
                ),
            );
        } else {
            tasks.spawn(
                "join",
                crate::movement::run_join(
                    s.cluster.clone(),
                    p.control.engine.clone(),
                    p.peers.clone(),
                    is_up,
                    Arc::default(),
                    p.control.throughput.clone(),
                    shutdown.clone(),
                ),
            );
        }
    }
    own_leave(tasks, p, shutdown);
    tasks.spawn_loop(
        "cleanup",
        crate::movement::cleanup_follow::follow_cleanup(p.control.clone(), shutdown.clone()),
    );
    // Removals of dead nodes: this node copies what it gains (and finishes
    // the removal if it is the finisher); `POST /removenode` asks liveness.
    tasks.spawn_loop(
        "removals",
        crate::movement::remove::follow(
            s.cluster.clone(),
            p.control.engine.clone(),
            p.peers.clone(),
            is_up,
            p.control.throughput.clone(),
            shutdown.clone(),
        ),
    );
    tasks.spawn_loop(
        "layout sync",
        crate::view::sync::follow(
            s.cluster.clone(),
            p.peers.clone(),
            p.gossiper.clone(),
            shutdown.clone(),
        ),
    );
}

/// This node's own way out: a decommission it was in when it stopped
/// resumes by itself (holding gainers of an older build until the
/// operator passes them again; never begun again if a cancel reached the
/// node first), and so does one a later view shows (chosen while the
/// node was down: `Control::follow_own_leave`, review-cancel33 L1); a
/// removal of it the layout decides (after a restart, or learnt late)
/// hands its queues over and stops the node, exit 3.
fn own_leave(tasks: &mut Tasks, p: &Parts, shutdown: &watch::Receiver<bool>) {
    tasks.spawn_loop(
        "decommission",
        p.control.clone().follow_own_leave(shutdown.clone()),
    );
    tasks.spawn_loop(
        "removal of this node",
        crate::movement::leave_end::follow_removal(p.control.clone(), shutdown.clone()),
    );
}

/// The node's movement board gets its gossip table's feature bits
/// (`movement::upgrade`) and then its failure detector (`POST /removenode`
/// asks it): in this order, since the admin port already serves and a
/// removenode that passed the liveness check must not find the gate
/// unset, which asks nobody (review-elastic28 L5).
fn set_board(me: &str, p: &Parts, is_up: &Arc<dyn Fn(&str) -> bool + Send + Sync>) {
    let board = crate::movement::progress::board(me);
    let gossip = p.gossiper.clone();
    board.set_features(Arc::new(move |id: &str| gossip.features(id)));
    board.set_liveness(is_up.clone());
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

#[cfg(test)]
#[path = "serve/tests.rs"]
mod tests;
