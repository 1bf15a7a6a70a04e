//! `geokv node`: runs one node of a cluster (owned by the lead; in progress).
use std::path::PathBuf;

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
}

/// Runs the node until SIGINT/SIGTERM.
pub fn run(_args: NodeArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet implemented")
}
