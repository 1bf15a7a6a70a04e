//! `geokv topology check FILE`: loads and validates a topology file and
//! prints the ring report, or fails with the loader's error (file, field
//! path, reason).
//!
//! Owns nothing but the command: parsing and validation are `geokv::topology`'s,
//! the report is `geokv::ring`'s.
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
    },
}

/// Runs a `topology` subcommand.
pub fn run(command: TopologyCommand) -> anyhow::Result<()> {
    match command {
        TopologyCommand::Check { file } => {
            // The loader's error already names the file, the field path and why.
            let topology = geokv::topology::Topology::load(&file).context("invalid topology")?;
            println!("{}", geokv::ring::check_report(&topology).trim_end());
            Ok(())
        }
    }
}
