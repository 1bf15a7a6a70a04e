//! Nodes that are not in the topology file: a `geokv node --join SEED …`
//! (optionally `--replace DEAD`) on a spare loopback address of the
//! cluster, with the cluster's own node arguments (TLS with a certificate
//! issued for it, or `--insecure`). Must not: decide when a movement is
//! over beyond what the layout says.

use super::{admin_over_https, admin_sends_token, layout_at, log_tail, spawn_logged, Cluster};
use geokv::layout::{Layout, NodeState};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

/// A node process started outside the topology file; SIGKILLed on drop.
pub struct NewNode {
    pub id: String,
    pub ip: Ipv4Addr,
    pub dir: PathBuf,
    child: Child,
}

impl Cluster {
    /// The loopback address of this cluster ending in `last` (dc1's nodes
    /// are .11, .12, …; dc2's .21, …): a spare one for a new node.
    pub fn spare_ip(&self, last: u8) -> Ipv4Addr {
        let std::net::IpAddr::V4(ip) = self.nodes[0].client_address.ip() else {
            unreachable!("the harness uses IPv4 loopback")
        };
        let [a, b, c, _] = ip.octets();
        Ipv4Addr::new(a, b, c, last)
    }

    /// Starts `geokv node --join SEED --id ID` on `ip` (ports 7070-7072,
    /// data in `<dir>/<dir_name>`) with `extra` arguments (`--dc`/`--rack`
    /// for a join, `--replace DEAD` for a replacement); does not wait.
    pub fn spawn_new_node(
        &self,
        id: &str,
        dir_name: &str,
        ip: Ipv4Addr,
        seed: SocketAddr,
        extra: &[&str],
    ) -> NewNode {
        if let Some(certs) = self.certs_dir() {
            use geokv::security::certs::{issue_in_dir, pair_paths, Identity};
            let who = Identity::Node(id.to_string());
            if !pair_paths(&certs, &who.file_stem()).0.exists() {
                issue_in_dir(&certs, &who, &[], &[ip.into()]).expect("new node's certificate");
            }
            let admin: SocketAddr = (ip, 7072).into();
            admin_over_https(admin, self.tls_ca.as_ref().expect("TLS cluster"));
        }
        admin_sends_token((ip, 7072).into(), self.admin_token.as_deref());
        let dir = self.dir.path().join(dir_name);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_geokv"));
        cmd.args(["node", "--join", &seed.to_string(), "--id", id])
            .args(["--client-address", &format!("{ip}:7070")])
            .args(["--peer-address", &format!("{ip}:7071")])
            .args(["--admin-address", &format!("{ip}:7072")])
            .arg("--data-dir")
            .arg(&dir)
            .args(self.node_args())
            .args(extra);
        NewNode {
            id: id.to_string(),
            ip,
            child: spawn_logged(cmd, &dir),
            dir,
        }
    }

    /// Starts a killed new node again on its data directory with only
    /// `--join SEED --id ID --data-dir` (and the cluster's node arguments):
    /// what a restart of a joining node needs.
    pub fn restart_new_node(&self, old: NewNode, seed: SocketAddr) -> NewNode {
        let (id, ip, dir) = (old.id.clone(), old.ip, old.dir.clone());
        drop(old);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_geokv"));
        cmd.args(["node", "--join", &seed.to_string(), "--id", &id])
            .arg("--data-dir")
            .arg(&dir)
            .args(self.node_args());
        NewNode {
            child: spawn_logged(cmd, &dir),
            id,
            ip,
            dir,
        }
    }
}

impl NewNode {
    pub fn admin_address(&self) -> SocketAddr {
        (self.ip, 7072).into()
    }

    pub fn client_address(&self) -> SocketAddr {
        (self.ip, 7070).into()
    }

    /// The last 40 lines of its log.
    pub fn log(&self) -> String {
        log_tail(&self.dir)
    }

    /// Its whole log.
    pub fn full_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("node.log")).unwrap_or_default()
    }

    /// SIGKILLs it (no flush, no goodbye) and reaps it.
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }

    /// Its exit status if it has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }

    /// Waits (up to `limit`) for it to exit, which must be a failure; its log.
    pub async fn wait_refused(&mut self, limit: Duration) -> String {
        let began = Instant::now();
        loop {
            if let Some(st) = self.exited() {
                let log = self.full_log();
                assert!(!st.success(), "{} should have failed:\n{log}", self.id);
                return log;
            }
            assert!(began.elapsed() < limit, "{} still running", self.id);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Polls `observer`'s `GET /layout` until it shows this node Normal
    /// (up to `limit`; panics if the process exits first), calling
    /// `each_round` once a poll; that layout.
    pub async fn wait_normal(
        &mut self,
        observer: SocketAddr,
        limit: Duration,
        mut each_round: impl AsyncFnMut(),
    ) -> Layout {
        let began = Instant::now();
        loop {
            each_round().await;
            if let Some(l) = layout_at(observer).await {
                let state = l.node(&self.id).map(|(_, _, n)| n.state);
                if state == Some(NodeState::Normal) {
                    return l;
                }
            }
            if let Some(st) = self.exited() {
                panic!("{} exited: {st}\n{}", self.id, self.log());
            }
            assert!(
                began.elapsed() < limit,
                "{} not Normal after {limit:?}\n{}",
                self.id,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for NewNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
