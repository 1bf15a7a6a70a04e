//! The node processes of a test cluster: start (TLS by default), spawn,
//! SIGKILL, signal, restart, wait for health and for the failure detectors
//! to agree. Must not: talk to the data API beyond the Status RPC it uses
//! to see who is up.
//!
//! A node's command line and log file are `geokv::local_cluster`'s
//! (`node_argv`, `open_node_log`), the launcher of `geokv dev` and the
//! benchmarks. The harness does not hold a `LocalCluster`: it SIGKILLs its
//! nodes on drop (a `LocalCluster` stops them with SIGTERM and up to 10 s
//! of grace, which ~70 tests would pay), kills, pauses and restarts single
//! nodes with their own arguments and environment, and starts joiners that
//! are not in the topology.

use super::{admin_over_https, admin_sends_token, yaml, Spec};
use geokv::local_cluster::{wait_healthy, Bound, ClusterError};
use geokv::proto::v1::StatusRequest;
use geokv::topology::{NodeInfo, Topology};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static NEXT_CLUSTER: AtomicU32 = AtomicU32::new(1);

/// One cluster at a time per test binary: on a 2-core machine two six-node
/// clusters side by side starve each other's gossip, and a failure detector
/// that flaps under CPU starvation would make timing-free tests flaky.
static SLOT: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// The node id of the harness's own certificate on TLS clusters: it reads
/// replicas over the internode port like a node (see [`super::ReplicaReader`]).
pub const HARNESS_ID: &str = "test-harness";

/// A running test cluster; every node is SIGKILLed on drop, and the nodes'
/// logs of a failed test are kept ([`super::failure_logs`]).
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub topology_path: PathBuf,
    pub topology: Topology,
    pub nodes: Vec<NodeInfo>,
    pub(super) children: BTreeMap<String, Child>,
    args: Vec<String>,
    /// The cluster CA when the nodes run TLS (the default).
    pub tls_ca: Option<PathBuf>,
    /// The admin token (`ROLE:SECRET`) of a cluster started with
    /// `--admin-token-file` (by default, see [`Cluster::start`]): the
    /// harness's clients, admin calls and CLI runs send it.
    pub admin_token: Option<String>,
    /// Environment every node process of this cluster starts with (see
    /// [`Cluster::start_with_env`]).
    env: Vec<(String, String)>,
    _slot: tokio::sync::SemaphorePermit<'static>,
}

impl Cluster {
    /// Starts every node of `spec` as a user would deploy it: on TLS (a
    /// cluster CA and a certificate per node in `<dir>/certs`, every node on
    /// `--tls-dir`) and with authentication on (`--auth` and an admin token
    /// in `<dir>/admin-token`, unless `spec` brings its own `--auth`); the
    /// harness's clients, admin calls and CLI runs trust that CA and send
    /// that token. Waits until all answer and see each other up.
    /// `GEOKV_TEST_PLAINTEXT=1` starts it plaintext and without
    /// authentication instead (to compare timings or read traffic).
    pub async fn start(spec: Spec) -> Cluster {
        Self::start_with_env(spec, &[]).await
    }

    /// [`Cluster::start`] with `env` set for every node process, on its
    /// first start and on restarts (e.g. an OTLP endpoint).
    pub async fn start_with_env(spec: Spec, env: &[(&str, &str)]) -> Cluster {
        let secure =
            std::env::var_os("GEOKV_TEST_PLAINTEXT").is_none_or(|v| v.is_empty() || v == "0");
        Self::start_with(spec, secure, secure, env).await
    }

    /// [`Cluster::start`] in plaintext (`--insecure`) and without
    /// authentication (unless `spec` asks for it), for a test that must
    /// speak plaintext.
    pub async fn start_insecure(spec: Spec) -> Cluster {
        Self::start_with(spec, false, false, &[]).await
    }

    async fn start_with(spec: Spec, tls: bool, auth: bool, env: &[(&str, &str)]) -> Cluster {
        let slot = SLOT.acquire().await.expect("never closed");
        let n = NEXT_CLUSTER.fetch_add(1, Ordering::Relaxed);
        let base = (std::process::id() % 200 + 20, n % 250);
        let dir = tempfile::tempdir().expect("tempdir");
        let topology_path = dir.path().join("topology.yaml");
        std::fs::write(&topology_path, yaml(&spec, base)).unwrap();
        let topology = Topology::load(&topology_path).expect("test topology is valid");
        let nodes = topology.nodes();
        let mut args = vec![
            "--fault-injection".to_string(),
            "--gossip-interval-ms".to_string(),
            spec.gossip_interval_ms.to_string(),
        ];
        args.extend(spec.extra_args.iter().cloned());
        if auth && !args.iter().any(|a| a == "--auth") {
            let token_file = dir.path().join("admin-token");
            let secret = format!("{:032x}", rand::random::<u128>());
            std::fs::write(&token_file, format!("harness-admin:{secret}\n")).unwrap();
            args.extend(["--auth".to_string(), "--admin-token-file".to_string()]);
            args.push(token_file.display().to_string());
        }
        let tls_ca = tls.then(|| issue_certificates(dir.path(), &nodes, &mut args));
        if !args.iter().any(|a| a.starts_with("--tls-dir")) {
            args.push("--insecure".to_string());
        }
        let admin_token = (args.iter())
            .position(|a| a == "--admin-token-file")
            .and_then(|i| std::fs::read_to_string(&args[i + 1]).ok())
            .map(|t| t.trim().to_string());
        if let Some(t) = &admin_token {
            for n in &nodes {
                admin_sends_token(n.admin_address, Some(t));
            }
        }
        let mut c = Cluster {
            dir,
            topology_path,
            topology,
            nodes,
            children: BTreeMap::new(),
            args,
            tls_ca,
            admin_token,
            env: (env.iter())
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            _slot: slot,
        };
        for n in c.nodes.clone() {
            c.spawn(&n.id);
        }
        for n in c.nodes.clone() {
            c.wait_healthy(&n.id).await;
        }
        c.wait_all_up(Duration::from_secs(20)).await;
        c
    }

    /// The certificate directory of a TLS cluster (CA, node and harness pairs).
    pub fn certs_dir(&self) -> Option<PathBuf> {
        self.tls_ca.as_ref().map(|_| self.dir.path().join("certs"))
    }

    /// The arguments every node of this cluster runs with (TLS or
    /// `--insecure`, gossip interval, fault injection, the spec's extras).
    pub fn node_args(&self) -> &[String] {
        &self.args
    }

    pub fn node(&self, id: &str) -> &NodeInfo {
        self.nodes.iter().find(|n| n.id == id).expect("known node")
    }

    fn spawn(&mut self, id: &str) {
        self.spawn_with(id, &[], &[]);
    }

    /// Starts a killed node again with further arguments (later ones win,
    /// e.g. `--ca/--cert/--key` over `--tls-dir`); does not wait for it.
    pub fn restart_with_args(&mut self, id: &str, extra: &[String]) {
        self.spawn_with(id, &[], extra);
    }

    fn spawn_with(&mut self, id: &str, env: &[(&str, &str)], extra: &[String]) {
        let launch = geokv::local_cluster::NodeLaunch {
            exe: env!("CARGO_BIN_EXE_geokv").into(),
            topology_path: self.topology_path.clone(),
            data_dir: self.dir.path().to_path_buf(),
            // `geokv node`'s default, given explicitly by the launcher.
            durability: "periodic".into(),
            // The launcher gives these two itself (`--insecure` unless the
            // arguments have `--tls-dir`); `geokv node` refuses a repeated flag.
            extra_args: (self.args.iter().chain(extra))
                .filter(|a| *a != "--fault-injection" && *a != "--insecure")
                .cloned()
                .collect(),
        };
        let argv = geokv::local_cluster::node_argv(&launch, self.node(id));
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .envs(env.iter().copied());
        let child = spawn_logged(cmd, &self.data_dir(id));
        self.children.insert(id.to_string(), child);
    }

    /// SIGKILLs a node (no flush, no goodbye).
    pub fn kill(&mut self, id: &str) {
        if let Some(mut c) = self.children.remove(id) {
            c.kill().expect("SIGKILL");
            c.wait().unwrap();
        }
    }

    /// Waits (up to `limit`) for a node's process to exit by itself (e.g.
    /// once decommissioned) and reaps it; its exit status.
    pub async fn wait_exit(&mut self, id: &str, limit: Duration) -> std::process::ExitStatus {
        let began = std::time::Instant::now();
        loop {
            let child = self.children.get_mut(id).expect("running node");
            if let Some(st) = child.try_wait().expect("try_wait") {
                self.children.remove(id);
                return st;
            }
            assert!(
                began.elapsed() < limit,
                "{id} did not exit\n{}",
                self.log(id)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// A node's data directory (stop the node before touching it).
    pub fn data_dir(&self, id: &str) -> std::path::PathBuf {
        self.dir.path().join(id)
    }

    /// Sends a signal to a running node: `libc::SIGSTOP` pauses it (its
    /// sockets stay open, nothing answers), `libc::SIGCONT` resumes it.
    pub fn signal(&self, id: &str, sig: i32) {
        let pid = self.children.get(id).expect("running node").id();
        // SAFETY: kill(2) on a child process we spawned and have not reaped.
        let rc = unsafe { libc::kill(pid as i32, sig) };
        assert_eq!(rc, 0, "kill({pid}, {sig})");
    }

    /// Starts a killed node again on its data directory and waits for /health.
    pub async fn restart(&mut self, id: &str) {
        self.spawn(id);
        self.wait_healthy(id).await;
    }

    /// Starts a killed node again as after a power loss: its boot id (see
    /// `engine::boot`) differs from the one its data directory recorded.
    pub async fn restart_after_reboot(&mut self, id: &str) {
        let boot = format!("simulated-reboot-{}", std::process::id());
        self.spawn_with(id, &[("GEOKV_BOOT_ID", boot.as_str())], &[]);
        self.wait_healthy(id).await;
    }

    /// Waits (30 s at most) until `id` answers `/health`
    /// (`geokv::local_cluster::wait_healthy`); panics with its log if it
    /// exits or stays silent.
    pub async fn wait_healthy(&mut self, id: &str) {
        let node = self.node(id).clone();
        let access = super::admin_access(node.admin_address);
        let bound = Bound::from_now(Duration::from_secs(30));
        let mut child = self.children.get_mut(id);
        let res = wait_healthy(&access, &node, bound, || match child.as_deref_mut() {
            Some(c) => match c.try_wait() {
                Ok(Some(status)) => Err(ClusterError::Exited {
                    node: id.to_string(),
                    status,
                }),
                _ => Ok(()),
            },
            None => Ok(()),
        });
        if let Err(e) = res.await {
            panic!("{e}\n{}", self.log(id));
        }
    }

    /// The last 40 lines of a node's log.
    pub fn log(&self, id: &str) -> String {
        log_tail(&self.dir.path().join(id))
    }

    /// The node's own view of who is up, from the Status RPC.
    pub async fn view(&self, from: &str) -> BTreeMap<String, bool> {
        let mut c = self.client(from).await;
        match c.status(StatusRequest {}).await {
            Ok(r) => r
                .into_inner()
                .nodes
                .into_iter()
                .map(|n| (n.id, n.up))
                .collect(),
            Err(_) => BTreeMap::new(),
        }
    }

    /// Waits until every running node sees every running node up.
    pub async fn wait_all_up(&self, limit: Duration) {
        let started = Instant::now();
        let running: Vec<String> = self.children.keys().cloned().collect();
        'outer: loop {
            assert!(started.elapsed() < limit, "cluster did not converge");
            for a in &running {
                let v = self.view(a).await;
                if !running.iter().all(|b| v.get(b).copied().unwrap_or(false)) {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue 'outer;
                }
            }
            return;
        }
    }

    /// Waits until `observer` sees `target` as `up`; returns how long it took.
    pub async fn wait_seen(
        &self,
        observer: &str,
        target: &str,
        up: bool,
        limit: Duration,
    ) -> Duration {
        let started = Instant::now();
        loop {
            if self.view(observer).await.get(target).copied() == Some(up) {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < limit,
                "{observer} never saw {target} {}",
                if up { "up" } else { "down" }
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (_, c) in self.children.iter_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // A failed test's node logs outlive its temporary directory.
        super::failure_logs::keep_if_failing(self.dir.path());
    }
}

/// Makes the cluster CA and a certificate per node (IP SAN of its address)
/// and one for the harness in `<dir>/certs`, adds `--tls-dir` to `args`,
/// and makes [`admin`] speak HTTPS to every node; the CA's path.
fn issue_certificates(
    dir: &std::path::Path,
    nodes: &[NodeInfo],
    args: &mut Vec<String>,
) -> PathBuf {
    use geokv::security::certs::{ca_path, init_dir, issue_in_dir, Identity};
    let certs = dir.join("certs");
    init_dir(&certs, "geokv-test").expect("cluster CA");
    for n in nodes {
        let who = Identity::Node(n.id.clone());
        issue_in_dir(&certs, &who, &[], &[n.client_address.ip()]).expect("node certificate");
        admin_over_https(n.admin_address, &ca_path(&certs));
    }
    let harness = Identity::Node(HARNESS_ID.to_string());
    issue_in_dir(&certs, &harness, &[], &[]).expect("harness certificate");
    args.push("--tls-dir".to_string());
    args.push(certs.display().to_string());
    ca_path(&certs)
}

/// Spawns `cmd` (a `geokv node …`) with its output appended to
/// `dir/node.log`, `RUST_LOG=info` unless `cmd` sets it.
pub fn spawn_logged(mut cmd: Command, dir: &std::path::Path) -> Child {
    std::fs::create_dir_all(dir).unwrap();
    let log = geokv::local_cluster::open_node_log(dir).unwrap();
    if !cmd.get_envs().any(|(k, _)| k == "RUST_LOG") {
        cmd.env("RUST_LOG", "info");
    }
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("spawn geokv node")
}

/// The last 40 lines of `dir/node.log`.
pub fn log_tail(dir: &std::path::Path) -> String {
    let s = std::fs::read_to_string(dir.join("node.log")).unwrap_or_default();
    let tail: Vec<&str> = s.lines().rev().take(40).collect();
    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
}
