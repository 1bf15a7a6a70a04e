//! `geokv dev`: a local cluster of real node processes, operated like
//! Cassandra's ccm. Without a subcommand it starts a topology (the embedded
//! two-datacenter default unless `--topology` is given) on its 127.0.0.x
//! addresses and supervises it ([`up`]); the subcommands act on that running
//! cluster from any other shell ([`control`]), found through the records in
//! its data directory ([`record`]). Data stays in `--data-dir`, so a second
//! run reuses it.
//!
//! ```text
//! geokv dev [--topology F] [--wan-delay-ms MS]   start and supervise (Ctrl-C stops all)
//! geokv dev status [--json]                      every node: up / starting / down, pid
//! geokv dev stop [NODE]                          SIGTERM one node, or the whole cluster
//! geokv dev start NODE                           restart a node from its recorded command
//! geokv dev kill NODE                            SIGKILL one node (a crash)
//! geokv dev cut A B / heal [A B]                 cut or heal links between DCs or nodes
//!                                                (sent to every node; exit 1 naming any it failed on)
//! ```
//! Every subcommand takes `--json`: one JSON object of what it did ([`report`]).
//! Must not: find nodes by process-name patterns (only through the records),
//! or hold node logic (the nodes are `geokv node` processes).
use std::path::PathBuf;

mod control;
mod faults;
mod record;
mod report;
mod supervise;
mod up;

/// Arguments of `geokv dev`.
#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct DevArgs {
    #[command(subcommand)]
    pub command: Option<DevCommand>,
    /// The dev cluster's data directory (a subdirectory per node, plus the
    /// records `geokv dev status|stop|start|…` use).
    #[arg(
        long,
        global = true,
        env = "GEOKV_DEV_DATA_DIR",
        default_value = "geokv-dev-data"
    )]
    pub data_dir: PathBuf,
    /// Topology file; the embedded two-datacenter default when omitted.
    #[arg(long)]
    pub topology: Option<PathBuf>,
    /// Inject this one-way delay (ms) on every inter-datacenter link, to see
    /// how each consistency level behaves over a WAN.
    #[arg(long, default_value_t = 0)]
    pub wan_delay_ms: u64,
    /// WAL durability of every node (see `geokv node --help`).
    #[arg(long, default_value = "periodic")]
    pub durability: String,
    /// Plaintext instead of TLS (by default the nodes run mutual TLS with
    /// a CA and certificates generated in DATA_DIR/certs, kept across runs).
    #[arg(long)]
    pub insecure: bool,
    /// Log format of every node's `node.log`: `text` or `json`.
    #[arg(long, env = "GEOKV_LOG_FORMAT", default_value = "text")]
    pub log_format: geokv::telemetry::LogFormat,
    /// Further arguments for every `geokv node` (after `--`).
    #[arg(last = true)]
    pub node_args: Vec<String>,
}

/// Subcommands acting on a running dev cluster.
#[derive(clap::Subcommand, Debug)]
pub enum DevCommand {
    /// Show every node's state (up, starting, down) and pid.
    Status {
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Stop one node cleanly (SIGTERM; SIGKILL after 10 s), or, without
    /// NODE, the whole dev cluster and its supervisor.
    Stop {
        node: Option<String>,
        /// Print one JSON object: `supervisor_pid`, and `nodes` (each
        /// `node`, `pid`, `outcome`: stopped, killed or not_running).
        #[arg(long)]
        json: bool,
    },
    /// Restart a stopped or killed node with its recorded command line.
    Start {
        node: String,
        /// Print one JSON object: `{"node","pid","action":"started"}`.
        #[arg(long)]
        json: bool,
    },
    /// SIGKILL one node, as a crash would.
    Kill {
        node: String,
        /// Print one JSON object: `{"node","pid","action":"killed"}`.
        #[arg(long)]
        json: bool,
    },
    /// Cut every link between A and B (each a datacenter or a node id).
    Cut {
        a: String,
        b: String,
        /// Print one JSON object: `action`, `between`, the `nodes` changed,
        /// the ones `down` (unchanged) and those it `failed` on (each
        /// `node`, `error`; the command then exits 1).
        #[arg(long)]
        json: bool,
    },
    /// Heal the links between A and B; without arguments, every cut.
    Heal {
        #[arg(requires = "b")]
        a: Option<String>,
        b: Option<String>,
        /// Print one JSON object, as `cut` does (`between` null for every cut).
        #[arg(long)]
        json: bool,
    },
}

/// Runs `geokv dev` or one of its subcommands.
pub fn run(args: DevArgs) -> anyhow::Result<()> {
    let dir = absolute(&args.data_dir)?;
    let dev = record::DevDir::new(dir.clone());
    let extra = node_args(&args);
    match args.command {
        None => up::run(up::Up {
            data_dir: dir,
            topology: args.topology,
            wan_delay_ms: args.wan_delay_ms,
            durability: args.durability,
            insecure: args.insecure,
            node_args: extra,
        }),
        Some(DevCommand::Status { json }) => control::status(&dev, json),
        Some(DevCommand::Stop { node, json }) => {
            json_if(json, control::stop(&dev, node.as_deref(), json)?)
        }
        Some(DevCommand::Start { node, json }) => json_if(json, control::start(&dev, &node, json)?),
        Some(DevCommand::Kill { node, json }) => json_if(json, control::kill(&dev, &node, json)?),
        Some(DevCommand::Cut { a, b, json }) => {
            links(json, control::link(&dev, &a, &b, true, json)?)
        }
        Some(DevCommand::Heal {
            a: Some(a),
            b: Some(b),
            json,
        }) => links(json, control::link(&dev, &a, &b, false, json)?),
        Some(DevCommand::Heal { json, .. }) => links(json, control::heal_all(&dev, json)?),
    }
}

/// Prints a link change as JSON when asked; fails (exit 1) naming the
/// nodes it failed on, and those it holds on.
fn links(json: bool, done: report::Links) -> anyhow::Result<()> {
    let failure = done.failure();
    json_if(json, done)?;
    match failure {
        Some(why) => Err(anyhow::anyhow!(why)),
        None => Ok(()),
    }
}

/// Prints what a subcommand did as JSON when asked (its text is already out).
fn json_if(json: bool, done: impl serde::Serialize) -> anyhow::Result<()> {
    if json {
        report::print_json(&done)?;
    }
    Ok(())
}

/// The arguments every node gets beyond the defaults.
fn node_args(args: &DevArgs) -> Vec<String> {
    let mut out = Vec::new();
    if args.log_format == geokv::telemetry::LogFormat::Json {
        out.extend(["--log-format".to_string(), "json".to_string()]);
    }
    out.extend(args.node_args.iter().cloned());
    out
}

/// `dir` made absolute, so recorded command lines work from any directory.
fn absolute(dir: &std::path::Path) -> anyhow::Result<PathBuf> {
    Ok(std::path::absolute(dir)?)
}
