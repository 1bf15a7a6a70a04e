//! A local cluster of real `geokv node` processes: spawn one per node of a
//! topology, wait until each answers `/health` ([`wait_healthy`], also the
//! dev cluster's and the integration harness's), talk to their admin ports
//! (faults, metrics), and stop them with SIGTERM (SIGKILL after 10 s). Used by
//! `geokv dev` and by the benchmarks (`crates/geokv-bench`), which also
//! generate their own topologies on addresses of their own ([`topology`]:
//! [`topology_yaml`]); refuses addresses already in use ([`ports`]).
//!
//! Owns child processes only. Must not print (callers decide what the user
//! sees) and must not send data requests.
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::topology::{NodeInfo, Topology};

mod health;
mod ports;
mod topology;
pub use health::{wait_healthy, Bound};
pub use topology::{topology_yaml, write_topology};

/// Why a cluster could not be started or an admin request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("starting node {node}: {source}")]
    Spawn {
        node: String,
        source: std::io::Error,
    },
    #[error("node {node} exited ({status}); see its node.log")]
    Exited { node: String, status: ExitStatus },
    #[error("node {node} did not answer on {addr} within {limit:?}")]
    NotReady {
        node: String,
        addr: SocketAddr,
        limit: Duration,
    },
    #[error("{method} {path} on {addr}: {reason}")]
    Admin {
        method: String,
        path: String,
        addr: SocketAddr,
        reason: String,
    },
    #[error("node {node}'s address {addr} is in use by another process; stop it or pick other addresses")]
    InUse { node: String, addr: SocketAddr },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// How to start each node.
#[derive(Debug, Clone)]
pub struct NodeLaunch {
    /// The `geokv` binary.
    pub exe: PathBuf,
    /// The topology file every node reads.
    pub topology_path: PathBuf,
    /// Each node gets `<data_dir>/<node id>/` (with its `node.log`).
    pub data_dir: PathBuf,
    /// `--durability` of every node.
    pub durability: String,
    /// Any further `geokv node` arguments.
    pub extra_args: Vec<String>,
}

/// Running node processes. Dropping it stops them.
pub struct LocalCluster {
    pub topology: Topology,
    pub nodes: Vec<NodeInfo>,
    children: Vec<(NodeInfo, Child)>,
    /// How this tool reaches the nodes' admin ports (`GEOKV_CA` and
    /// `GEOKV_TOKEN` unless set for a secure cluster).
    pub access: AdminAccess,
}

impl LocalCluster {
    /// Spawns every node of `topology` (with fault injection enabled). On an
    /// error the nodes already started are stopped.
    pub fn spawn(topology: Topology, launch: &NodeLaunch) -> Result<Self, ClusterError> {
        let nodes = topology.nodes();
        ports::ensure_free(&nodes)?;
        let mut cluster = LocalCluster {
            topology,
            nodes: nodes.clone(),
            children: Vec::new(),
            access: AdminAccess::from_env(),
        };
        for n in &nodes {
            let child = spawn_node(launch, n)?;
            cluster.children.push((n.clone(), child));
        }
        Ok(cluster)
    }

    /// Waits until every node answers `/health`; fails as soon as one exits.
    pub async fn wait_ready(&mut self, limit: Duration) -> Result<(), ClusterError> {
        let bound = health::Bound::from_now(limit);
        for n in self.nodes.clone() {
            let access = self.access.clone();
            wait_healthy(&access, &n, bound, || match self.exited()? {
                Some((node, status)) => Err(ClusterError::Exited { node, status }),
                None => Ok(()),
            })
            .await?;
        }
        Ok(())
    }

    /// The first node found to have exited, if any.
    fn exited(&mut self) -> Result<Option<(String, ExitStatus)>, ClusterError> {
        for (info, c) in self.children.iter_mut() {
            if let Some(status) = c.try_wait()? {
                return Ok(Some((info.id.clone(), status)));
            }
        }
        Ok(None)
    }

    /// Resolves when any node exits, with its id and status.
    pub async fn watch(&mut self) -> (String, ExitStatus) {
        loop {
            for (info, c) in self.children.iter_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    return (info.id.clone(), status);
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Sets a one-way delay of `ms` on every link between datacenters.
    pub async fn set_wan_delay(&self, ms: u64) -> Result<(), ClusterError> {
        for n in &self.nodes {
            for dc in self.topology.datacenter_names() {
                if dc != n.dc {
                    let path = format!("/faults/delay?dc={dc}&ms={ms}");
                    admin_request_as(&self.access, n.admin_address, "POST", &path).await?;
                }
            }
        }
        Ok(())
    }

    /// Cuts (or heals) every link between datacenter `a` and datacenter `b`,
    /// on both sides.
    pub async fn set_dc_link(&self, a: &str, b: &str, cut: bool) -> Result<(), ClusterError> {
        let verb = if cut { "cut" } else { "heal" };
        for n in &self.nodes {
            let other = if n.dc == a {
                b
            } else if n.dc == b {
                a
            } else {
                continue;
            };
            let path = format!("/faults/{verb}?target={other}");
            admin_request_as(&self.access, n.admin_address, "POST", &path).await?;
        }
        Ok(())
    }

    /// Process ids of the running nodes, in topology order.
    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().map(|(_, c)| c.id()).collect()
    }

    /// Number of nodes still counted as running.
    pub fn len(&self) -> usize {
        self.children.len()
    }

    /// True when no node is running.
    pub fn is_empty(&self) -> bool {
        self.children.is_empty()
    }

    /// SIGTERM to every node (each flushes and closes its engine), then
    /// SIGKILL to any still running after 10 s. Returns the ids of the nodes
    /// that had to be killed.
    pub fn stop(&mut self) -> Vec<String> {
        for (_, c) in self.children.iter_mut() {
            // SAFETY: `kill` only sends a signal to a pid we spawned and have
            // not yet reaped, so it cannot name another process.
            unsafe {
                libc::kill(c.id() as i32, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut killed = Vec::new();
        for (info, c) in self.children.iter_mut() {
            loop {
                match c.try_wait() {
                    Ok(Some(_)) => break,
                    _ if Instant::now() > deadline => {
                        killed.push(info.id.clone());
                        let _ = c.kill();
                        let _ = c.wait();
                        break;
                    }
                    _ => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        }
        self.children.clear();
        killed
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        self.stop();
    }
}

fn spawn_node(launch: &NodeLaunch, n: &NodeInfo) -> Result<Child, ClusterError> {
    let spawn_err = |source| ClusterError::Spawn {
        node: n.id.clone(),
        source,
    };
    let dir = launch.data_dir.join(&n.id);
    std::fs::create_dir_all(&dir).map_err(spawn_err)?;
    let log = open_node_log(&dir).map_err(spawn_err)?;
    let argv = node_argv(launch, n);
    Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(spawn_err)?)
        .stderr(log)
        .spawn()
        .map_err(spawn_err)
}

/// Opens (appending) `<dir>/node.log`, where a node's stdout and stderr go.
pub fn open_node_log(dir: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("node.log"))
}

/// The full command line (program first) that starts node `n`: its data in
/// `<data_dir>/<node id>/`, fault injection enabled.
pub fn node_argv(launch: &NodeLaunch, n: &NodeInfo) -> Vec<OsString> {
    let mut argv: Vec<OsString> = vec![
        launch.exe.clone().into(),
        "node".into(),
        "--topology".into(),
        launch.topology_path.clone().into(),
    ];
    for a in ["--node", &n.id, "--fault-injection", "--durability"] {
        argv.push(a.into());
    }
    argv.push(launch.durability.clone().into());
    argv.push("--data-dir".into());
    argv.push(launch.data_dir.join(&n.id).into());
    argv.extend(launch.extra_args.iter().map(OsString::from));
    // Plaintext unless the launch configures TLS (never by default).
    if !launch.extra_args.iter().any(|a| a.starts_with("--tls-dir")) {
        argv.push("--insecure".into());
    }
    argv
}

/// How a tool reaches admin ports: the cluster CA when they serve HTTPS,
/// the admin token when the nodes run `--auth`.
#[derive(Debug, Clone, Default)]
pub struct AdminAccess {
    pub ca: Option<PathBuf>,
    pub token: Option<String>,
}

impl AdminAccess {
    /// `GEOKV_CA` and `GEOKV_TOKEN` (e.g. `geokv dev cut|heal` from a shell
    /// that exported what `geokv dev` printed).
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        AdminAccess {
            ca: var("GEOKV_CA").map(PathBuf::from),
            token: var("GEOKV_TOKEN").map(|t| t.trim().to_string()),
        }
    }
}

/// A request to an admin port with [`AdminAccess::from_env`]; the body on 2xx.
pub async fn admin_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
) -> Result<String, ClusterError> {
    admin_request_as(&AdminAccess::from_env(), addr, method, path).await
}

/// A request to an admin port (HTTPS when `access` has a CA; 2 s to
/// connect, 5 s to answer); the body on 2xx.
pub async fn admin_request_as(
    access: &AdminAccess,
    addr: SocketAddr,
    method: &str,
    path: &str,
) -> Result<String, ClusterError> {
    let fail = |reason: String| ClusterError::Admin {
        method: method.to_string(),
        path: path.to_string(),
        addr,
        reason,
    };
    let tls = match &access.ca {
        Some(ca) => Some(
            crate::transport::tls::admin::operator_connector(ca, None)
                .map_err(|e| fail(e.to_string()))?,
        ),
        None => None,
    };
    let target = addr.to_string();
    let call = crate::transport::admin_client::call(
        &target,
        tls.as_ref(),
        method,
        path,
        access.token.as_deref(),
        "",
    );
    let answer = tokio::time::timeout(Duration::from_secs(7), call)
        .await
        .map_err(|_| fail("no answer within 7s".into()))?
        .map_err(|e| fail(e.to_string()))?;
    if !answer.is_success() {
        return Err(fail(format!("{} {}", answer.status, answer.body.trim())));
    }
    Ok(answer.body)
}
