//! The `geokv` command line: the clap tree, dispatch to one module per
//! subcommand, and the single place errors become `error: <code>: <message>`
//! and an exit status.
//!
//! `node` and `dev` build their own tokio runtimes (they are sync entry
//! points); only the client subcommands get a runtime here. Must not hold
//! data-path logic: client subcommands go through `geokv::client`.
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod auth;
pub mod bench;
pub mod certs;
pub mod dev;
pub mod node;

mod admin_http;
mod connect;
mod endpoints;
mod join;
mod kv;
mod lag;
mod leave;
mod movement;
mod node_auth;
mod render;
mod repair;
mod ring;
mod signals;
mod status;
mod topology;

/// geokv: a multi-datacenter, geo-replicated key-value store.
#[derive(Parser, Debug)]
#[command(name = "geokv", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run one node of a cluster.
    Node(Box<node::NodeArgs>),
    /// Start a local multi-datacenter cluster (the embedded dev topology).
    Dev(dev::DevArgs),
    /// Write a value (a blind write, or with --context to replace what a get saw).
    Put(kv::PutArgs),
    /// Read every sibling of a key and the context that resolves them.
    Get(kv::GetArgs),
    /// Delete the versions a context covers.
    Delete(kv::DeleteArgs),
    /// Show the cluster's nodes by datacenter and rack, up/down and phi.
    Status(status::StatusArgs),
    /// Show the cluster layout: version, nodes, state, tokens, ownership.
    Ring(ring::RingArgs),
    /// Which nodes replicate a key (and which pending ones get its writes).
    Getendpoints(endpoints::EndpointsArgs),
    /// Decommission a node: hand its ranges over, leave the cluster, stop.
    Decommission(leave::DecommissionArgs),
    /// Drop the ranges a node no longer replicates (after a movement).
    Cleanup(leave::CleanupArgs),
    /// Show or set a node's cap on range-movement streaming, MiB/s
    /// (nodetool getstreamthroughput / setstreamthroughput).
    StreamThroughput(leave::StreamThroughputArgs),
    /// Remove a dead node: its new owners copy its ranges from the surviving
    /// replicas (waits with a progress bar; run it again to resume waiting).
    Removenode(movement::RemoveArgs),
    /// Anti-entropy repair of a node, or of every node of a datacenter,
    /// with a progress bar and a summary (nodetool repair).
    Repair(repair::RepairArgs),
    /// Replication lag and backlog for every datacenter pair, from every node's view.
    Lag(lag::LagArgs),
    /// Print a shell completion script: `source <(geokv completions bash)`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Manage keyspaces (cluster-wide layout changes).
    #[command(subcommand)]
    Keyspace(ring::KeyspaceCommand),
    /// Inspect topology files.
    #[command(subcommand)]
    Topology(topology::TopologyCommand),
    /// Cluster CA and node/client certificates for TLS.
    #[command(subcommand)]
    Certs(certs::CertsCommand),
    /// Roles, tokens and permissions per keyspace (against a node's admin port).
    #[command(subcommand)]
    Auth(auth::AuthCommand),
    /// Load generator and benchmarks (YCSB workloads, compare, drain, cost,
    /// join): runs the geokv-bench binary beside this one.
    Bench(bench::BenchArgs),
}

/// Parses the command line, runs the subcommand, reports any error on stderr.
/// Exit status: 0 on success, 1 on any error, 2 on a usage error (clap's).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{}", error_line(&err));
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Node(args) => node::run(*args),
        Command::Dev(args) => dev::run(args),
        Command::Topology(cmd) => topology::run(cmd),
        Command::Bench(cmd) => bench::run(cmd),
        Command::Certs(cmd) => certs::run(cmd),
        Command::Put(args) => client_runtime(kv::put(args)),
        Command::Get(args) => client_runtime(kv::get(args)),
        Command::Delete(args) => client_runtime(kv::delete(args)),
        Command::Status(args) => client_runtime(status::run(args)),
        Command::Ring(args) => {
            args.tls.choose();
            client_runtime(ring::run(args))
        }
        Command::Getendpoints(args) => {
            args.tls.choose();
            client_runtime(endpoints::run(args))
        }
        Command::Removenode(args) => {
            args.tls.choose();
            client_runtime(movement::remove(args))
        }
        Command::Repair(args) => {
            args.tls.choose();
            client_runtime(repair::run(args))
        }
        Command::Lag(args) => {
            args.tls.choose();
            client_runtime(lag::run(args))
        }
        Command::Completions { shell } => {
            completions(shell, &mut std::io::stdout());
            Ok(())
        }
        Command::Keyspace(cmd) => client_runtime(ring::keyspace(cmd)),
        Command::Decommission(args) => {
            args.tls.choose();
            client_runtime(leave::decommission(args))
        }
        Command::Cleanup(args) => {
            args.tls.choose();
            client_runtime(leave::cleanup(args))
        }
        Command::StreamThroughput(args) => {
            args.tls.choose();
            client_runtime(leave::stream_throughput(args))
        }
        Command::Auth(cmd) => client_runtime(auth::run(cmd)),
    }
}

/// Writes `shell`'s completion script for the whole command tree.
fn completions(shell: clap_complete::Shell, out: &mut dyn std::io::Write) {
    use clap::CommandFactory;
    clap_complete::generate(shell, &mut Cli::command(), "geokv", out);
}

/// Runs a client subcommand on a single-threaded runtime, with logs on
/// stderr filtered by `RUST_LOG` (default: warnings only).
fn client_runtime<F>(command: F) -> anyhow::Result<()>
where
    F: std::future::Future<Output = anyhow::Result<()>>,
{
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(command)
}

/// `error: <CODE>: <message>` for SDK errors, `error: <cause chain>` otherwise.
fn error_line(err: &anyhow::Error) -> String {
    match err.downcast_ref::<geokv::client::ClientError>() {
        Some(client @ geokv::client::ClientError::Overloaded { retry_after, .. }) => format!(
            "error: {}: {}\nhint: the node is overloaded and applied nothing; retry {}",
            geokv::client::code_name(client.code()),
            client.message(),
            match retry_after {
                Some(d) => format!("after {} ms", d.as_millis()),
                None => "later".into(),
            }
        ),
        Some(client) => format!(
            "error: {}: {}",
            geokv::client::code_name(client.code()),
            client.message()
        ),
        None => format!("error: {err:#}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Commands that print no result to script against, so need no `--json`:
    /// each with the reason.
    const WITHOUT_JSON: &[(&str, &str)] = &[
        (
            "geokv node",
            "runs a node in the foreground; its output is the log",
        ),
        (
            "geokv dev",
            "without a subcommand it supervises the cluster in the foreground \
             until Ctrl-C; `geokv dev status --json` is its result",
        ),
        ("geokv completions", "prints a shell script, not a result"),
        (
            "geokv bench",
            "hands its arguments to the geokv-bench binary, whose commands take \
             --json FILE (geokv-bench's every_bench_command_writes_json)",
        ),
    ];

    #[test]
    fn every_command_that_prints_a_result_takes_json() {
        let all = geokv::cli_tree::runnable(&Cli::command());
        let missing: Vec<&str> = all
            .iter()
            .filter(|(name, _)| !WITHOUT_JSON.iter().any(|(n, _)| n == name))
            .filter(|(_, cmd)| {
                !cmd.get_arguments().any(|a| {
                    a.get_long() == Some("json")
                        && matches!(a.get_action(), clap::ArgAction::SetTrue)
                })
            })
            .map(|(name, _)| name.as_str())
            .collect();
        assert!(missing.is_empty(), "commands without --json: {missing:?}");
        for (name, _) in WITHOUT_JSON {
            assert!(
                all.iter().any(|(n, _)| n == name),
                "{name} is allowed no --json but is not a command"
            );
        }
        assert!(all.len() > 25, "the walk found only {} commands", all.len());
    }

    #[test]
    fn completions_cover_the_command_tree() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let mut out = Vec::new();
            completions(shell, &mut out);
            let text = String::from_utf8(out).expect("UTF-8");
            for word in ["getendpoints", "repair", "lag", "keyspace", "completions"] {
                assert!(text.contains(word), "{shell:?} lacks {word}");
            }
        }
    }

    #[test]
    fn client_errors_print_their_code() {
        let err = anyhow::Error::new(geokv::client::ClientError::Unavailable {
            message: "1 of 2 replicas answered".into(),
        });
        assert_eq!(
            error_line(&err),
            "error: UNAVAILABLE: 1 of 2 replicas answered"
        );
        let shed = anyhow::Error::new(geokv::client::ClientError::Overloaded {
            message: "node overloaded".into(),
            retry_after: Some(std::time::Duration::from_millis(50)),
        });
        assert_eq!(
            error_line(&shed),
            "error: RESOURCE_EXHAUSTED: node overloaded\nhint: the node is overloaded and applied nothing; retry after 50 ms"
        );
        let other = anyhow::anyhow!("inner").context("outer");
        assert_eq!(error_line(&other), "error: outer: inner");
    }
}
