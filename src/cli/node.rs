//! `geokv node`: runs one node of a cluster until SIGINT/SIGTERM.
//! Owns the flags and their translation into a `NodeConfig`.
//! Must not: hold node logic (that is `geokv::node`).
use anyhow::Context;
use geokv::engine::Durability;
use geokv::node::{run as run_node, NodeConfig};
use geokv::topology::Topology;
use geokv::transport::tls::{TlsFiles, TlsSetting};
use std::path::PathBuf;
use std::time::Duration;

/// Arguments of `geokv node`.
#[derive(clap::Args, Debug)]
pub struct NodeArgs {
    /// Topology file (YAML); the embedded dev topology when omitted.
    #[arg(long)]
    pub topology: Option<PathBuf>,
    /// This node's id in the topology (or in the layout it joins).
    #[arg(long, alias = "id")]
    pub node: String,
    /// Join a running cluster through this seed's peer address: the node is
    /// not in the topology file; it gets balanced tokens, streams its ranges
    /// and becomes Normal. A restart needs only --id, --data-dir and --join.
    #[arg(long, value_name = "SEED_PEER_ADDRESS")]
    pub join: Option<std::net::SocketAddr>,
    /// Replace this dead node (with --join SEED): the new node takes over
    /// its tokens (nobody else's ownership changes), copies its ranges from
    /// the surviving replicas and becomes Normal; the dead node Removed.
    /// Refused while the dead node is alive. A restart resumes it.
    #[arg(long, value_name = "DEAD_ID", requires = "join")]
    pub replace: Option<String>,
    /// Datacenter of a joining node.
    #[arg(long, requires = "join")]
    pub dc: Option<String>,
    /// Rack of a joining node.
    #[arg(long, requires = "join")]
    pub rack: Option<String>,
    /// Client gRPC address of a joining node.
    #[arg(long, requires = "join")]
    pub client_address: Option<std::net::SocketAddr>,
    /// Internode gRPC address of a joining node.
    #[arg(long, requires = "join")]
    pub peer_address: Option<std::net::SocketAddr>,
    /// Admin HTTP address of a joining node (default: client IP, port 7072).
    #[arg(long, requires = "join")]
    pub admin_address: Option<std::net::SocketAddr>,
    /// Relative capacity of a joining node: tokens = vnodes per weight × weight.
    #[arg(long, default_value_t = 1.0)]
    pub weight: f64,
    /// Where this node keeps its data.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Allow fault injection (delays, cut links, failed engine syncs) through the admin port.
    #[arg(long)]
    pub fault_injection: bool,
    /// WAL durability: `sync` (group-committed fsync before every ack),
    /// `periodic` (fsync every --sync-interval-ms; survives process crashes),
    /// or `none` (benchmarks only).
    #[arg(long, default_value = "periodic")]
    pub durability: String,
    /// Background WAL fsync interval for `--durability periodic`.
    #[arg(long, default_value_t = 1000)]
    pub sync_interval_ms: u64,
    /// Gossip round interval.
    #[arg(long, default_value_t = 1000)]
    pub gossip_interval_ms: u64,
    /// φ threshold for peers in our datacenter.
    #[arg(long, default_value_t = 8.0)]
    pub phi_local: f64,
    /// φ threshold for peers in other datacenters.
    #[arg(long, default_value_t = 12.0)]
    pub phi_remote: f64,
    /// How long hints for a dead node are kept before the range is left to
    /// anti-entropy instead.
    #[arg(long, default_value_t = 24 * 3600)]
    pub hint_window_secs: u64,
    /// Period of the full anti-entropy sweep (Merkle-tree repair of every
    /// range this node replicates); 0 disables it. Ranges recorded by the
    /// hinted queues are repaired regardless.
    #[arg(long, default_value_t = 3600)]
    pub repair_interval_secs: u64,
    /// After a start that did not follow a clean shutdown (and without
    /// `--durability sync`), repair every range this node replicates from
    /// the other replicas, as soon as they are all up: writes they
    /// acknowledged in the WAL tail a power loss took come back.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub repair_after_unclean_start: bool,
    /// The cap on the bytes per second this node's range movements (join,
    /// decommission, removenode, replace) stream together, in MiB/s, at
    /// least 0.01; 0 means no cap. Changed while running with `PUT /stream-throughput`
    /// on the admin port (Cassandra's `stream_throughput_outbound`).
    #[arg(long, default_value_t = geokv::movement::throughput::DEFAULT_MIB_PER_SEC)]
    pub stream_throughput_mib: f64,
    /// Per-destination backlog bound of the hinted queues, in bytes.
    #[arg(long, default_value_t = 4 << 30)]
    pub max_backlog_bytes: u64,
    /// Default request deadline.
    #[arg(long, default_value_t = 2000)]
    pub default_timeout_ms: u64,
    /// Log lines on stderr: `text` (coloured only on a terminal) or `json`
    /// (one object per line).
    #[arg(long, env = "GEOKV_LOG_FORMAT", default_value = "text")]
    pub log_format: geokv::telemetry::LogFormat,
    /// Speculative retry of reads: ask one more replica each time those
    /// asked have not met the level after this long.
    #[arg(long, default_value_t = 20)]
    pub read_speculation_ms: u64,
    #[command(flatten)]
    pub tls: TlsArgs,
    #[command(flatten)]
    pub auth: super::node_auth::NodeAuthArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// Resource bounds of `geokv node` (defaults in `node::limits`).
#[derive(clap::Args, Debug, Clone)]
pub struct LimitArgs {
    /// Client requests (get, put, delete) this node coordinates at once;
    /// past it requests are shed with RESOURCE_EXHAUSTED and a
    /// `retry-after-ms` hint instead of queueing (0: no bound).
    #[arg(long, default_value_t = 2048)]
    pub max_in_flight_requests: usize,
    /// The retry hint sent with a shed request (it doubles while the node
    /// keeps shedding, up to 16x).
    #[arg(long, default_value_t = 50)]
    pub shed_retry_after_ms: u64,
    /// HTTP/2 streams (requests) one client connection may have open, and
    /// handlers one client connection runs at once (at least 1).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    pub client_max_streams: u32,
    /// Client connections open at once (at least 1); one past it is
    /// closed at once and counted in `geokv_connections_refused_total`.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..))]
    pub client_max_connections: u32,
    /// Client connections open at once from one address (at least 1); one
    /// past it is closed at once and counted in
    /// `geokv_connections_refused_total{reason="connections_per_address"}`. Raise it
    /// for many clients behind one NAT.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub client_max_connections_per_address: u32,
    /// TLS handshakes in progress at once from one address on the client
    /// port (at least 1); one past it is closed at once and counted in
    /// `geokv_connections_refused_total{reason="handshakes_per_address"}`.
    /// Raise it for many clients behind one SNAT (they all reconnect at
    /// once after a restart). The peer port's stays 32.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    pub client_max_handshakes_per_address: u32,
    /// Bytes of client request bodies in flight on this node (Cassandra's
    /// `native_transport_max_request_data_in_flight`; 0: no bound): a
    /// call arriving while they are held is shed from its headers, and
    /// one whose body would pass them is shed before it is decoded, both
    /// with RESOURCE_EXHAUSTED and the retry hint. At least the largest
    /// message (8 MiB) + 5 bytes: refused at start-up otherwise.
    #[arg(long, default_value_t = 256 << 20)]
    pub client_max_request_bytes_in_flight: usize,
    /// Gets, puts and deletes in flight from one client address (0: no
    /// bound; default: a quarter of --max-in-flight-requests, none when it
    /// is 0); past it that address is shed (RESOURCE_EXHAUSTED, the retry
    /// hint, `reason="per_address"`). Raise it, or set 0, when many
    /// clients reach the node from one address: behind a NAT, a gRPC
    /// proxy or load balancer, or a service-mesh sidecar.
    #[arg(long)]
    pub client_max_requests_in_flight_per_address: Option<usize>,
    /// Bytes of request bodies in flight from one client address
    /// (Cassandra's `native_transport_max_request_data_in_flight_per_ip`;
    /// 0: no bound, else at least 8 MiB + 5; default: a quarter of
    /// --client-max-request-bytes-in-flight, none when it is 0). Raise it,
    /// or set 0, behind a proxy, load balancer or sidecar, as above.
    #[arg(long)]
    pub client_max_request_bytes_in_flight_per_address: Option<usize>,
    /// The longest a client call may take, its body's arrival included
    /// (DEADLINE_EXCEEDED; nothing applied if its body was still arriving);
    /// bytes given back. Must be above the longest client deadline (60 s,
    /// or --default-timeout-ms if longer): refused at start-up otherwise.
    #[arg(long, default_value_t = 65_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub client_handler_timeout_ms: u64,
    /// The longest a client call's body may bring no data (to its first
    /// frame, then between two frames, until it ends: an inactivity
    /// timeout; a slow upload that keeps coming is cut only by the handler
    /// timeout or the client's deadline); past it the call is dropped
    /// (DEADLINE_EXCEEDED, nothing applied), its place and bytes given back.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub client_body_timeout_ms: u64,
    /// HTTP/2 streams and running handlers per connection on the peer
    /// port (one connection per pair of nodes carries all their calls; at
    /// least 1).
    #[arg(long, default_value_t = 2048, value_parser = clap::value_parser!(u32).range(1..))]
    pub peer_max_streams: u32,
}

impl LimitArgs {
    /// The node's bounds.
    pub fn limits(&self) -> geokv::node::limits::ServerLimits {
        let mut l = geokv::node::limits::ServerLimits::default();
        l.admission.max_in_flight = self.max_in_flight_requests;
        l.admission.retry_after = Duration::from_millis(self.shed_retry_after_ms);
        l.client.max_concurrent_streams = self.client_max_streams;
        l.client.concurrency_per_connection = self.client_max_streams as usize;
        l.client.max_connections = self.client_max_connections as usize;
        l.client.max_connections_per_address = self.client_max_connections_per_address as usize;
        l.client.max_handshakes_per_address = self.client_max_handshakes_per_address as usize;
        l.client_bytes_in_flight = self.client_max_request_bytes_in_flight;
        l.client_handler_timeout = Duration::from_millis(self.client_handler_timeout_ms);
        l.client_body_timeout = Duration::from_millis(self.client_body_timeout_ms);
        l.client_share.requests = self.client_max_requests_in_flight_per_address;
        l.client_share.bytes = self.client_max_request_bytes_in_flight_per_address;
        l.peer.max_concurrent_streams = self.peer_max_streams;
        l.peer.concurrency_per_connection = self.peer_max_streams as usize;
        l
    }
}

/// Transport security of `geokv node`: one of --tls-dir, --ca/--cert/--key
/// or --insecure is required (nothing falls back to plaintext).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TlsArgs {
    /// Certificate directory (`geokv certs`): DIR/ca.pem and this node's
    /// DIR/node-ID.pem + DIR/node-ID-key.pem. Mutual TLS between nodes, TLS
    /// on the client port; files are reloaded when they change or on SIGHUP.
    #[arg(
        long,
        value_name = "DIR",
        env = "GEOKV_TLS_DIR",
        conflicts_with = "insecure"
    )]
    pub tls_dir: Option<PathBuf>,
    /// Cluster CA certificate (PEM), instead of DIR/ca.pem.
    #[arg(long, value_name = "FILE", conflicts_with = "insecure")]
    pub ca: Option<PathBuf>,
    /// This node's certificate (PEM), instead of DIR/node-ID.pem.
    #[arg(long, value_name = "FILE", conflicts_with = "insecure")]
    pub cert: Option<PathBuf>,
    /// This node's private key (PEM), instead of DIR/node-ID-key.pem.
    #[arg(long, value_name = "FILE", conflicts_with = "insecure")]
    pub key: Option<PathBuf>,
    /// Plaintext on every port, no peer authentication: for local
    /// experiments only.
    #[arg(long)]
    pub insecure: bool,
}

impl TlsArgs {
    /// The node's TLS setting; an error when neither TLS nor --insecure is given.
    pub fn setting(&self, node_id: &str) -> anyhow::Result<TlsSetting> {
        if self.insecure {
            return Ok(TlsSetting::Insecure);
        }
        let from_dir = |file: String| self.tls_dir.as_ref().map(|d| d.join(file));
        let pick = |explicit: &Option<PathBuf>, file: String, flag: &str| {
            explicit
                .clone()
                .or_else(|| from_dir(file))
                .with_context(|| {
                    format!(
                    "no TLS configured: give --tls-dir DIR (see `geokv certs init`) or {flag}, \
                     or --insecure for a plaintext local experiment"
                )
                })
        };
        Ok(TlsSetting::Files(TlsFiles {
            ca: pick(&self.ca, "ca.pem".into(), "--ca")?,
            cert: pick(&self.cert, format!("node-{node_id}.pem"), "--cert")?,
            key: pick(&self.key, format!("node-{node_id}-key.pem"), "--key")?,
        }))
    }
}

fn durability(args: &NodeArgs) -> anyhow::Result<Durability> {
    Ok(match args.durability.as_str() {
        "sync" => Durability::Sync,
        "periodic" => Durability::Periodic {
            interval_ms: args.sync_interval_ms,
        },
        "none" => Durability::None,
        other => anyhow::bail!("--durability must be sync, periodic or none, not '{other}'"),
    })
}

/// Runs the node until SIGINT/SIGTERM.
pub fn run(args: NodeArgs) -> anyhow::Result<()> {
    let topology = match (&args.join, &args.topology) {
        (Some(seed), _) => super::join::prepare(&args, *seed)?,
        (None, Some(p)) => Topology::load(p)?,
        (None, None) => Topology::dev(),
    };
    let mut cfg = NodeConfig::new(topology, &args.node, args.data_dir.clone());
    cfg.fault_injection = args.fault_injection;
    cfg.tls = args.tls.setting(&args.node)?;
    cfg.auth = args.auth.config(!args.tls.insecure)?;
    cfg.limits = args.limits.limits();
    cfg.engine.durability = durability(&args)?;
    // Block cache hits and write stalls on /metrics need RocksDB statistics.
    cfg.engine.statistics = true;
    cfg.membership.gossip_interval_ms = args.gossip_interval_ms;
    cfg.membership.phi_local = args.phi_local;
    cfg.membership.phi_remote = args.phi_remote;
    cfg.hints.hint_window = Duration::from_secs(args.hint_window_secs);
    cfg.hints.max_backlog_bytes = args.max_backlog_bytes;
    cfg.stream_throughput_mib =
        geokv::movement::throughput::valid_mib_per_sec(args.stream_throughput_mib)
            .context("--stream-throughput-mib")?;
    cfg.repair.interval = Duration::from_secs(args.repair_interval_secs);
    cfg.repair.after_unclean_start = args.repair_after_unclean_start;
    cfg.coordinator.default_timeout = Duration::from_millis(args.default_timeout_ms);
    cfg.coordinator.read_speculation = Duration::from_millis(args.read_speculation_ms);
    (cfg.limits.check(cfg.coordinator.default_timeout)).context("client port limits")?;
    cfg.membership.validate().context("membership settings")?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let node = async move {
        let _telemetry = geokv::telemetry::init_with_format("geokv", &args.node, args.log_format);
        geokv::admin::install_metrics();
        let (tx, rx) = tokio::sync::watch::channel(false);
        // Off this runtime: see `cli::signals`.
        super::signals::watch(tx, tokio::runtime::Handle::current())
            .context("installing the signal handlers")?;
        run_node(cfg, rx).await.map_err(anyhow::Error::from)
    };
    leave(run_bounded(rt, node))
}

/// Runs `node` on `rt`, then stops `rt` within [`RUNTIME_STOP`]. A panic
/// of `node` itself (a task's panic the runtime keeps) would unwind
/// through `rt`'s drop, which waits without bound for a thread stuck in
/// the engine: caught, it is an error, after the bounded stop.
fn run_bounded(
    rt: tokio::runtime::Runtime,
    node: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.block_on(node)));
    stop_runtime(rt);
    ran.unwrap_or_else(|panic| {
        Err(anyhow::anyhow!(
            "the node panicked: {}",
            panic_text(&*panic)
        ))
    })
}

/// What a caught panic said (its message, when it is text).
fn panic_text(panic: &(dyn std::any::Any + Send)) -> &str {
    (panic.downcast_ref::<&str>().copied())
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// How long the runtime may take to stop once the node returned.
const RUNTIME_STOP: Duration = Duration::from_secs(2);

/// Stops the runtime without waiting forever: a replica write stuck in the
/// engine (a write stall, a hung disk) or a long read (a Merkle build)
/// keeps a worker or a blocking thread busy, and dropping the runtime would
/// wait for it (review M1 of the bounded close).
fn stop_runtime(rt: tokio::runtime::Runtime) {
    rt.shutdown_timeout(RUNTIME_STOP);
}

/// Ends the process once the node has stopped, always with `_exit`: a
/// thread the runtime's stop gave up on may still be inside RocksDB, and
/// running exit handlers and C++ static destructors beside it can hang or
/// abort (review of f72e5ed, M1 and M2). Nothing is lost by skipping
/// them: the node synced and wrote its clean-shutdown marker already, or
/// (after a stuck write or a failed task) wrote none, so the next start
/// recovers in full; telemetry was flushed when the node's future ended.
fn leave(ran: anyhow::Result<()>) -> ! {
    use std::io::Write;
    let code = match &ran {
        Ok(()) => 0,
        Err(e) => {
            // Not `eprintln!`: it panics on a closed stderr, and a panic
            // here would unwind into the exit handlers `_exit` avoids.
            let _ = writeln!(std::io::stderr(), "{}", super::error_line(e));
            // A removed node exits with its own code (3).
            (e.downcast_ref::<geokv::node::NodeError>()).map_or(1, |e| e.exit_code())
        }
    };
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: `_exit` ends the process without running anything else;
    // nothing of this process is used after it.
    unsafe { libc::_exit(code) }
}

/// Resolves on SIGINT or SIGTERM, with the signal's number.
pub async fn wait_for_signal() -> i32 {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => libc::SIGINT,
        _ = term.recv() => libc::SIGTERM,
    }
}

#[cfg(test)]
#[path = "node_tests.rs"]
mod tests;
