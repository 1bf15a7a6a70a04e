//! The `geokv-bench` binary, also run as `geokv bench` (the `geokv` binary
//! execs it): parses the command line (`cli`) and reports an error as
//! `error: <cause chain>` with exit status 1. Must not measure anything.
use std::process::ExitCode;

use clap::Parser;

mod cli;

/// geokv's load generator and benchmarks (YCSB workloads, compare, drain,
/// engine, cost, join).
#[derive(Parser, Debug)]
#[command(name = "geokv-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: cli::BenchCommand,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli::run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{}", error_line(&err));
            ExitCode::FAILURE
        }
    }
}

/// `error: <CODE>: <message>` for SDK errors (as the `geokv` CLI prints
/// them), `error: <cause chain>` otherwise.
fn error_line(err: &anyhow::Error) -> String {
    match err.downcast_ref::<geokv::client::ClientError>() {
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
    use clap::CommandFactory;

    #[test]
    fn clap_tree_is_consistent() {
        super::Cli::command().debug_assert();
    }

    /// Every `geokv bench` command writes its result as JSON to a file
    /// (`--json FILE`: its tables go to the terminal), as every `geokv`
    /// command that prints a result takes `--json` (the `geokv` CLI's own
    /// walk stops at `bench`, which execs this binary; note 28, issue 13).
    #[test]
    fn every_bench_command_writes_json() {
        let all = geokv::cli_tree::runnable(&super::Cli::command());
        let missing: Vec<&str> = (all.iter())
            .filter(|(name, _)| name != "geokv-bench")
            .filter(|(_, cmd)| {
                !cmd.get_arguments()
                    .any(|a| a.get_long() == Some("json") && a.get_action().takes_values())
            })
            .map(|(name, _)| name.as_str())
            .collect();
        assert!(
            missing.is_empty(),
            "bench commands without --json FILE: {missing:?}"
        );
        assert!(all.len() > 5, "the walk found only {} commands", all.len());
    }
}
