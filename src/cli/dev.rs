//! `geokv dev`: starts the embedded default topology as local node processes
//! (owned by the lead; in progress).
use std::path::PathBuf;

/// Arguments of `geokv dev`.
#[derive(clap::Args, Debug)]
pub struct DevArgs {
    /// Data directory for every node (a subdirectory each); printed when defaulted.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Topology file; the embedded two-datacenter default when omitted.
    #[arg(long)]
    pub topology: Option<PathBuf>,
}

/// Starts the cluster and blocks until Ctrl-C / SIGTERM.
pub fn run(_args: DevArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet implemented")
}
