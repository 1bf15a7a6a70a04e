//! `geokv certs`: a cluster CA and the node and client certificates it
//! signs, as PEM files in one directory (see `geokv::security::certs` for
//! the layout and the identity each certificate names).
//!
//! Owns flag parsing and printing (text, or with `--json` one JSON object:
//! the files written and the identity they name).
//!
//! Must not: build or sign a certificate itself (`geokv::security::certs` does).
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
        /// Print `{"ca": PATH}` instead of text.
        #[arg(long)]
        json: bool,
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
    /// Print `{"identity","cert","key"}` instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(cmd: CertsCommand) -> anyhow::Result<()> {
    match cmd {
        CertsCommand::Init { dir, cluster, json } => {
            let ca = certs::init_dir(&dir, &cluster)?;
            if json {
                println!("{}", serde_json::json!({ "ca": ca }));
            } else {
                println!("cluster CA: {}", ca.display());
            }
        }
        CertsCommand::Issue(a) => {
            let who = match (a.node, a.client) {
                (Some(id), _) => Identity::Node(id),
                (None, Some(name)) => Identity::Client(name),
                (None, None) => anyhow::bail!("give --node ID or --client NAME"),
            };
            let (cert, key) = certs::issue_in_dir(&a.dir, &who, &a.dns, &a.ip)?;
            if a.json {
                println!("{}", issued_json(&who, &cert, &key));
            } else {
                println!("{who}: {} {}", cert.display(), key.display());
            }
        }
    }
    Ok(())
}

/// `geokv certs issue --json`: the identity the certificate names
/// (`geokv://node/ID` or `geokv://client/NAME`) and the two files.
fn issued_json(who: &Identity, cert: &std::path::Path, key: &std::path::Path) -> serde_json::Value {
    serde_json::json!({"identity": who.to_string(), "cert": cert, "key": key})
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Through the real command: a CA and a node certificate in a temporary
    /// directory, with the paths `--json` reports existing.
    #[test]
    fn certs_json_names_the_files_written_and_the_identity() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        run(CertsCommand::Init {
            dir: d.clone(),
            cluster: "c".into(),
            json: true,
        })
        .unwrap();
        let who = Identity::Node("dc1-n1".into());
        let (cert, key) = certs::issue_in_dir(&d, &who, &[], &[]).unwrap();
        let v = issued_json(&who, &cert, &key);
        assert_eq!(v["identity"], "geokv://node/dc1-n1");
        for file in ["cert", "key"] {
            let path = v[file].as_str().unwrap();
            assert!(std::path::Path::new(path).is_file(), "{file}: {path}");
        }
    }
}
