//! `geokv certs`: a cluster CA and the node and client certificates it
//! signs, as PEM files in one directory (see `geokv::security::certs` for
//! the layout and the identity each certificate names).
//!
//! Owns flag parsing only.
use geokv::security::certs::{self, Identity};
use std::net::IpAddr;
use std::path::PathBuf;

/// `geokv certs …`
#[derive(clap::Subcommand, Debug)]
pub enum CertsCommand {
    /// Create a cluster CA: DIR/ca.pem and DIR/ca-key.pem (keep the key off the nodes).
    Init {
        /// Directory to create the CA in.
        dir: PathBuf,
        /// Cluster name, written into the CA's common name.
        #[arg(long, default_value = "geokv")]
        cluster: String,
    },
    /// Issue a node or client certificate signed by the CA in --dir.
    Issue(IssueArgs),
}

/// What to issue.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("who").required(true).args(["node", "client"])))]
pub struct IssueArgs {
    /// Node id (as in the topology): DIR/node-ID.pem + DIR/node-ID-key.pem,
    /// naming `geokv://node/ID`; serves and dials.
    #[arg(long)]
    pub node: Option<String>,
    /// Client name: DIR/client-NAME.pem + DIR/client-NAME-key.pem, naming
    /// `geokv://client/NAME`; dials only.
    #[arg(long)]
    pub client: Option<String>,
    /// The certificate directory holding the CA (`geokv certs init`).
    #[arg(long)]
    pub dir: PathBuf,
    /// DNS name clients use to reach this node (repeatable).
    #[arg(long)]
    pub dns: Vec<String>,
    /// IP address clients use to reach this node (repeatable).
    #[arg(long)]
    pub ip: Vec<IpAddr>,
}

pub fn run(cmd: CertsCommand) -> anyhow::Result<()> {
    match cmd {
        CertsCommand::Init { dir, cluster } => {
            let ca = certs::init_dir(&dir, &cluster)?;
            println!("cluster CA: {}", ca.display());
        }
        CertsCommand::Issue(a) => {
            let who = match (a.node, a.client) {
                (Some(id), _) => Identity::Node(id),
                (None, Some(name)) => Identity::Client(name),
                (None, None) => anyhow::bail!("give --node ID or --client NAME"),
            };
            let (cert, key) = certs::issue_in_dir(&a.dir, &who, &a.dns, &a.ip)?;
            println!("{who}: {} {}", cert.display(), key.display());
        }
    }
    Ok(())
}
