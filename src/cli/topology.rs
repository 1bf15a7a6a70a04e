//! `geokv topology check FILE [--json]`: loads and validates a topology file
//! and prints the ring report (as text, or as one JSON object:
//! `geokv::ring::CheckReport`), or fails with the loader's error (file,
//! field path, reason).
//!
//! Owns nothing but the command: parsing and validation are `geokv::topology`'s,
//! the report is `geokv::ring`'s.
//!
//! Must not: validate a topology or compute its report itself.
use std::path::PathBuf;

use anyhow::Context as _;

/// `geokv topology ...`.
#[derive(clap::Subcommand, Debug)]
pub enum TopologyCommand {
    /// Validate a topology file and print its ring: token ownership and the
    /// replicas of each keyspace per datacenter.
    Check {
        /// The YAML topology file.
        file: PathBuf,
        /// Print the report as one JSON object (per keyspace: replication,
        /// each node's primary/replica share in percent, rack shortfalls).
        #[arg(long)]
        json: bool,
    },
}

/// Runs a `topology` subcommand.
pub fn run(command: TopologyCommand) -> anyhow::Result<()> {
    match command {
        TopologyCommand::Check { file, json } => {
            // The loader's error already names the file, the field path and why.
            let topology = geokv::topology::Topology::load(&file).context("invalid topology")?;
            if json {
                println!("{}", serde_json::to_string(&geokv::ring::check(&topology))?);
            } else {
                println!("{}", geokv::ring::check_report(&topology).trim_end());
            }
            Ok(())
        }
    }
}
