//! `geokv node`: runs one node of a cluster until SIGINT/SIGTERM.
use anyhow::Context;
use geokv::engine::Durability;
use geokv::node::{run as run_node, NodeConfig};
use geokv::topology::Topology;
use std::path::PathBuf;
use std::time::Duration;

/// Arguments of `geokv node`.
#[derive(clap::Args, Debug)]
pub struct NodeArgs {
    /// Topology file (YAML); the embedded dev topology when omitted.
    #[arg(long)]
    pub topology: Option<PathBuf>,
    /// This node's id in the topology.
    #[arg(long)]
    pub node: String,
    /// Where this node keeps its data.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Allow fault injection (delays, cut links) through the admin port.
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
    let topology = match &args.topology {
        Some(p) => Topology::load(p)?,
        None => Topology::dev(),
    };
    let mut cfg = NodeConfig::new(topology, &args.node, args.data_dir.clone());
    cfg.fault_injection = args.fault_injection;
    cfg.engine.durability = durability(&args)?;
    // Block cache hits and write stalls on /metrics need RocksDB statistics.
    cfg.engine.statistics = true;
    cfg.membership.gossip_interval_ms = args.gossip_interval_ms;
    cfg.membership.phi_local = args.phi_local;
    cfg.membership.phi_remote = args.phi_remote;
    cfg.hints.hint_window = Duration::from_secs(args.hint_window_secs);
    cfg.hints.max_backlog_bytes = args.max_backlog_bytes;
    cfg.repair.interval = Duration::from_secs(args.repair_interval_secs);
    cfg.repair.after_unclean_start = args.repair_after_unclean_start;
    cfg.coordinator.default_timeout = Duration::from_millis(args.default_timeout_ms);
    cfg.coordinator.read_speculation = Duration::from_millis(args.read_speculation_ms);
    cfg.membership.validate().context("membership settings")?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let _telemetry = geokv::telemetry::init_with_format("geokv", &args.node, args.log_format);
        geokv::admin::install_metrics();
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            wait_for_signal().await;
            let _ = tx.send(true);
        });
        run_node(cfg, rx).await.map_err(anyhow::Error::from)
    })
}

/// Resolves on SIGINT or SIGTERM.
pub async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
