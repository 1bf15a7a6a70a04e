//! The node the join scenario adds: a `geokv node --join SEED` process (the
//! real join path: tokens from the seed, Joining, streaming, Normal) on an
//! address of its own, plaintext like the rest of the bench cluster, and the
//! watch of its state in the seed's `GET /layout` until it is Normal.
//!
//! Owns that one child process (SIGTERM on drop, SIGKILL after 10 s). Must
//! not measure the foreground.
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::super::BenchError;
use geokv::admin::exposition;
use geokv::layout::{Layout, NodeState};
use geokv::local_cluster::{admin_request, open_node_log};

/// A running `geokv node --join`.
pub struct Joiner {
    pub id: String,
    pub admin: SocketAddr,
    child: Child,
}

/// Where and how the new node starts.
pub struct JoinerSpec<'a> {
    pub exe: &'a Path,
    pub id: &'a str,
    pub dc: &'a str,
    pub rack: &'a str,
    pub ip: &'a str,
    pub seed_peer: SocketAddr,
    pub data_dir: &'a Path,
    pub durability: &'a str,
}

impl Joiner {
    /// Starts the process (does not wait); its output goes to `<data_dir>/node.log`.
    pub fn spawn(s: &JoinerSpec) -> Result<Self, BenchError> {
        std::fs::create_dir_all(s.data_dir)?;
        let log = open_node_log(s.data_dir)?;
        let addr = |port: u16| format!("{}:{port}", s.ip);
        let child = Command::new(s.exe)
            .args(["node", "--join", &s.seed_peer.to_string(), "--id", s.id])
            .args(["--dc", s.dc, "--rack", s.rack])
            .args(["--client-address", &addr(7070)])
            .args(["--peer-address", &addr(7071)])
            .args(["--admin-address", &addr(7072)])
            .args([
                "--durability",
                s.durability,
                "--fault-injection",
                "--insecure",
            ])
            .arg("--data-dir")
            .arg(s.data_dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        Ok(Joiner {
            id: s.id.to_string(),
            admin: addr(7072).parse().expect("an IP and a port"),
            child,
        })
    }

    /// Fails if the process has exited.
    pub fn check_alive(&mut self) -> Result<(), BenchError> {
        match self.child.try_wait()? {
            Some(status) => Err(BenchError::InvalidOption(format!(
                "the joining node {} exited ({status}); see its node.log",
                self.id
            ))),
            None => Ok(()),
        }
    }

    /// Its `geokv_stream_keys_total` and `geokv_stream_bytes_total` (0 when
    /// not published or unreachable).
    pub async fn streamed(&self) -> (u64, u64) {
        let Ok(text) = admin_request(self.admin, "GET", "/metrics").await else {
            return (0, 0);
        };
        let read = |name| exposition::sum(&text, name, &[]).unwrap_or(0.0).max(0.0) as u64;
        (
            read("geokv_stream_keys_total"),
            read("geokv_stream_bytes_total"),
        )
    }
}

impl Drop for Joiner {
    fn drop(&mut self) {
        // SAFETY: a signal to the pid of our own child, not yet reaped.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The state of node `id` in the layout at admin address `observer`
/// (`None` when unreachable or not a member yet).
pub async fn state_at(observer: SocketAddr, id: &str) -> Option<NodeState> {
    let body = admin_request(observer, "GET", "/layout").await.ok()?;
    let layout: Layout = serde_json::from_str(&body).ok()?;
    layout.node(id).map(|(_, _, n)| n.state)
}
