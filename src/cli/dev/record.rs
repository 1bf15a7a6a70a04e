//! The dev cluster's record in its data directory, which is how every
//! `geokv dev …` command finds the cluster's processes from any shell:
//!
//! ```text
//! <data-dir>/topology.yaml         the topology every node reads
//! <data-dir>/dev.pid, dev.cmd      the supervisor (`geokv dev`)
//! <data-dir>/<node>/node.pid       the node's process id
//! <data-dir>/<node>/node.cmd       its command line (JSON array), to restart it
//! <data-dir>/<node>/node.log       its stdout and stderr
//! ```
//!
//! A process counts as running only when the recorded pid is alive, not a
//! zombie, and its `/proc/<pid>/cmdline` is exactly the recorded command
//! line, so a stale pid file or a reused pid never names another process.
//! Nothing here matches processes by name patterns. Owns these files and
//! signals to recorded processes; must not talk to the nodes' ports.
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use geokv::topology::Topology;

/// The data directory of one dev cluster.
#[derive(Debug, Clone)]
pub struct DevDir {
    pub root: PathBuf,
}

impl DevDir {
    pub fn new(root: PathBuf) -> DevDir {
        DevDir { root }
    }

    /// Where the cluster's topology is kept.
    pub fn topology_path(&self) -> PathBuf {
        self.root.join("topology.yaml")
    }

    /// The topology of the dev cluster kept here.
    pub fn topology(&self) -> anyhow::Result<Topology> {
        let path = self.topology_path();
        if !path.exists() {
            anyhow::bail!(
                "no dev cluster in {} (no topology.yaml); start one with `geokv dev --data-dir {}`",
                self.root.display(),
                self.root.display()
            );
        }
        Ok(Topology::load(&path)?)
    }

    /// How `geokv dev` reaches the nodes' admin ports: over HTTPS with the
    /// CA and with the admin token when the nodes' recorded command lines
    /// name them (`--tls-dir`, `--admin-token-file`), else `GEOKV_CA` /
    /// `GEOKV_TOKEN`.
    pub fn admin_access(&self) -> geokv::local_cluster::AdminAccess {
        let mut access = geokv::local_cluster::AdminAccess::from_env();
        let argv = (self.topology().ok())
            .and_then(|t| t.nodes().first().and_then(|n| self.node(&n.id).argv()))
            .unwrap_or_default();
        let after = |flag: &str| {
            let i = argv.iter().position(|a| a == flag)?;
            argv.get(i + 1).map(PathBuf::from)
        };
        if let Some(dir) = after("--tls-dir") {
            access.ca = Some(dir.join("ca.pem"));
        }
        if let Some(t) = after("--admin-token-file").and_then(|f| std::fs::read_to_string(f).ok()) {
            access.token = Some(t.trim().to_string());
        }
        access
    }

    /// The supervisor's record.
    pub fn supervisor(&self) -> Recorded {
        Recorded {
            pid_file: self.root.join("dev.pid"),
            cmd_file: self.root.join("dev.cmd"),
            log_dir: None,
        }
    }

    /// Node `id`'s record (its pid, command line and log).
    pub fn node(&self, id: &str) -> Recorded {
        let dir = self.root.join(id);
        Recorded {
            pid_file: dir.join("node.pid"),
            cmd_file: dir.join("node.cmd"),
            log_dir: Some(dir),
        }
    }
}

/// One recorded process: its pid file and the command line that starts it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pid_file: PathBuf,
    cmd_file: PathBuf,
    log_dir: Option<PathBuf>,
}

impl Recorded {
    /// Records the command line that (re)starts this process.
    pub fn record_cmd(&self, argv: &[String]) -> anyhow::Result<()> {
        if let Some(dir) = self.cmd_file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&self.cmd_file, serde_json::to_string(argv)? + "\n")
            .with_context(|| format!("writing {}", self.cmd_file.display()))
    }

    /// Records `pid` as this process's id.
    pub fn record_pid(&self, pid: u32) -> anyhow::Result<()> {
        std::fs::write(&self.pid_file, format!("{pid}\n"))
            .with_context(|| format!("writing {}", self.pid_file.display()))
    }

    /// The recorded command line, if any.
    pub fn argv(&self) -> Option<Vec<String>> {
        let text = std::fs::read_to_string(&self.cmd_file).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// The pid of the recorded process if it is running (see the module doc).
    pub fn running(&self) -> Option<u32> {
        let pid: u32 = std::fs::read_to_string(&self.pid_file)
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let argv = self.argv()?;
        is_running(pid, &argv).then_some(pid)
    }

    /// Starts the recorded command line in its own process group (so a
    /// Ctrl-C in the shell that ran `geokv dev start` does not reach it),
    /// output appended to `node.log`, and records its pid.
    pub fn start(&self) -> anyhow::Result<Child> {
        let argv = self
            .argv()
            .with_context(|| format!("no command line recorded in {}", self.cmd_file.display()))?;
        let log_dir = self.log_dir.as_deref().unwrap_or(Path::new("."));
        let log = geokv::local_cluster::open_node_log(log_dir)?;
        use std::os::unix::process::CommandExt;
        let child = Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {}", argv[0]))?;
        self.record_pid(child.id())?;
        Ok(child)
    }

    /// Sends `signal` to the process if it is running; its pid if it was.
    pub fn signal(&self, signal: i32) -> Option<u32> {
        let pid = self.running()?;
        // SAFETY: `kill` only sends a signal; `running` checked that this
        // pid is alive and runs exactly the recorded command line.
        unsafe {
            libc::kill(pid as i32, signal);
        }
        Some(pid)
    }

    /// Waits until the process is no longer running; false on timeout.
    pub fn wait_gone(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while self.running().is_some() {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        true
    }

    /// The node's log file, for error messages.
    pub fn log_path(&self) -> PathBuf {
        self.log_dir
            .as_deref()
            .unwrap_or(Path::new("."))
            .join("node.log")
    }
}

/// True when `pid` is alive (not a zombie) and runs exactly `argv`.
fn is_running(pid: u32, argv: &[String]) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the parenthesised command name, which may contain
    // spaces and parentheses itself.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    if matches!(state, None | Some('Z' | 'X' | 'x')) {
        return false;
    }
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    cmdline_matches(&cmdline, argv)
}

/// `/proc/<pid>/cmdline` (NUL-separated, NUL-terminated) equals `argv`.
fn cmdline_matches(cmdline: &[u8], argv: &[String]) -> bool {
    let body = cmdline.strip_suffix(&[0]).unwrap_or(cmdline);
    let got: Vec<&[u8]> = body.split(|b| *b == 0).collect();
    got.len() == argv.len() && got.iter().zip(argv).all(|(g, a)| *g == a.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmdline_must_match_exactly() {
        let argv: Vec<String> = ["geokv", "node", "--node", "dc1-n1"]
            .map(String::from)
            .to_vec();
        assert!(cmdline_matches(b"geokv\0node\0--node\0dc1-n1\0", &argv));
        assert!(!cmdline_matches(b"geokv\0node\0--node\0dc1-n11\0", &argv));
        assert!(!cmdline_matches(
            b"geokv\0node\0--node\0dc1-n1\0--x\0",
            &argv
        ));
        assert!(!cmdline_matches(b"", &argv));
    }

    #[test]
    fn a_recorded_process_is_found_and_a_stale_pid_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let dev = DevDir::new(dir.path().to_path_buf());
        let rec = dev.node("n1");
        rec.record_cmd(&["sleep".to_string(), "30".to_string()])
            .unwrap();
        assert_eq!(rec.running(), None, "no pid recorded yet");
        let mut child = rec.start().unwrap();
        let pid = child.id();
        // Until the child has exec'd, /proc shows the forked parent's
        // command line: wait (up to 5 s) for `sleep 30` to show.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while rec.running().is_none() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(rec.running(), Some(pid));
        // Our own pid runs another command line: not this node.
        rec.record_pid(std::process::id()).unwrap();
        assert_eq!(rec.running(), None);
        rec.record_pid(pid).unwrap();
        assert_eq!(rec.signal(libc::SIGKILL), Some(pid));
        let _ = child.wait();
        assert!(rec.wait_gone(Duration::from_secs(5)));
        assert_eq!(rec.running(), None);
    }
}
