//! Shared harness for integration tests: real `geokv node` processes on
//! distinct loopback addresses (127.P.C.x, unique per test process and
//! cluster), real gRPC over real sockets, SIGKILL and restart, and link cuts
//! through each node's fault-injection admin endpoint.
#![allow(dead_code)]

use geokv::proto::v1::kv_client::KvClient;
use geokv::proto::v1::*;
use geokv::topology::{NodeInfo, Topology};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

static NEXT_CLUSTER: AtomicU32 = AtomicU32::new(1);

/// The cluster CA of admin ports serving HTTPS (nodes of TLS clusters), so
/// [`admin`] speaks HTTPS to them.
static ADMIN_CA: std::sync::Mutex<BTreeMap<std::net::SocketAddr, PathBuf>> =
    std::sync::Mutex::new(BTreeMap::new());

/// Makes [`admin`] dial `addr` over HTTPS trusting `ca`.
pub fn admin_over_https(addr: std::net::SocketAddr, ca: &std::path::Path) {
    ADMIN_CA.lock().unwrap().insert(addr, ca.to_path_buf());
}

/// One cluster at a time per test binary: on a 2-core machine two six-node
/// clusters side by side starve each other's gossip, and a failure detector
/// that flaps under CPU starvation would make timing-free tests flaky.
static SLOT: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// Shape of a test cluster: datacenters with their node count (one rack
/// per node) and the `default` keyspace's replication.
pub struct Spec {
    pub dcs: Vec<(&'static str, usize)>,
    pub replication: Vec<(&'static str, u32)>,
    pub extra_keyspaces: Vec<(&'static str, Vec<(&'static str, u32)>)>,
    pub gossip_interval_ms: u64,
    pub extra_args: Vec<String>,
}

impl Spec {
    /// Two datacenters of three nodes, rf {dc1:3, dc2:3}, plus `dc1_only {dc1:2}`.
    pub fn two_dc() -> Spec {
        Spec {
            dcs: vec![("dc1", 3), ("dc2", 3)],
            replication: vec![("dc1", 3), ("dc2", 3)],
            extra_keyspaces: vec![("dc1_only", vec![("dc1", 2)])],
            gossip_interval_ms: 100,
            extra_args: Vec::new(),
        }
    }
}

/// A running test cluster; every node is SIGKILLed on drop.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub topology_path: PathBuf,
    pub topology: Topology,
    pub nodes: Vec<NodeInfo>,
    children: BTreeMap<String, Child>,
    args: Vec<String>,
    /// The cluster CA when the nodes run TLS ([`Cluster::start_tls`]).
    pub tls_ca: Option<PathBuf>,
    /// The admin token of a cluster started with `--admin-token-file`
    /// (sent on the harness's own Status calls, which `--auth` guards).
    pub admin_token: Option<String>,
    _slot: tokio::sync::SemaphorePermit<'static>,
}

fn yaml(spec: &Spec, base: (u32, u32)) -> String {
    let mut y = String::from("cluster_name: geokv-test\ndefaults:\n  vnodes: 64\ndatacenters:\n");
    for (d, (dc, n)) in spec.dcs.iter().enumerate() {
        y += &format!("  - name: {dc}\n    racks:\n");
        for i in 0..*n {
            let ip = format!("127.{}.{}.{}", base.0, base.1, 10 * (d + 1) + i + 1);
            y += &format!(
                "      - name: r{}\n        nodes:\n          - id: {dc}-n{}\n            client_address: {ip}:7070\n            peer_address: {ip}:7071\n            admin_address: {ip}:7072\n",
                i + 1,
                i + 1
            );
        }
    }
    y += "keyspaces:\n  default:\n    replication: {";
    y += &spec
        .replication
        .iter()
        .map(|(d, r)| format!("{d}: {r}"))
        .collect::<Vec<_>>()
        .join(", ");
    y += "}\n";
    for (name, rep) in &spec.extra_keyspaces {
        y += &format!("  {name}:\n    replication: {{");
        y += &rep
            .iter()
            .map(|(d, r)| format!("{d}: {r}"))
            .collect::<Vec<_>>()
            .join(", ");
        y += "}\n";
    }
    y
}

impl Cluster {
    /// Starts every node of `spec` and waits until all answer and see each other up.
    pub async fn start(spec: Spec) -> Cluster {
        Self::start_with(spec, false).await
    }

    /// [`Cluster::start`] with TLS: a cluster CA and a certificate per node
    /// (IP SAN of its address) in `<dir>/certs`, every node on `--tls-dir`,
    /// and [`Cluster::client`] dialling over TLS. (`Replicas`, which speaks
    /// the internode protocol directly, needs a plaintext cluster.)
    pub async fn start_tls(spec: Spec) -> Cluster {
        Self::start_with(spec, true).await
    }

    async fn start_with(spec: Spec, tls: bool) -> Cluster {
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
        let tls_ca = tls.then(|| {
            use geokv::security::certs::{ca_path, init_dir, issue_in_dir, Identity};
            let certs = dir.path().join("certs");
            init_dir(&certs, "geokv-test").expect("cluster CA");
            for n in &nodes {
                let who = Identity::Node(n.id.clone());
                issue_in_dir(&certs, &who, &[], &[n.client_address.ip()])
                    .expect("node certificate");
            }
            args.push("--tls-dir".to_string());
            args.push(certs.display().to_string());
            for n in &nodes {
                admin_over_https(n.admin_address, &ca_path(&certs));
            }
            ca_path(&certs)
        });
        if !args.iter().any(|a| a.starts_with("--tls-dir")) {
            // The suites run plaintext unless a spec configures TLS.
            args.push("--insecure".to_string());
        }
        let admin_token = (args.iter())
            .position(|a| a == "--admin-token-file")
            .and_then(|i| std::fs::read_to_string(&args[i + 1]).ok())
            .map(|t| t.trim().to_string());
        let mut c = Cluster {
            dir,
            topology_path,
            topology,
            nodes,
            children: BTreeMap::new(),
            args,
            tls_ca,
            admin_token,
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

    pub fn node(&self, id: &str) -> &NodeInfo {
        self.nodes.iter().find(|n| n.id == id).expect("known node")
    }

    fn spawn(&mut self, id: &str) {
        self.spawn_with_env(id, &[]);
    }

    fn spawn_with_env(&mut self, id: &str, env: &[(&str, &str)]) {
        self.spawn_with(id, env, &[]);
    }

    /// Starts a killed node again with further arguments (later ones win,
    /// e.g. `--ca/--cert/--key` over `--tls-dir`); does not wait for it.
    pub fn restart_with_args(&mut self, id: &str, extra: &[String]) {
        self.spawn_with(id, &[], extra);
    }

    fn spawn_with(&mut self, id: &str, env: &[(&str, &str)], extra: &[String]) {
        let dir = self.dir.path().join(id);
        std::fs::create_dir_all(&dir).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("node.log"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_geokv"))
            .arg("node")
            .arg("--topology")
            .arg(&self.topology_path)
            .args(["--node", id])
            .arg("--data-dir")
            .arg(&dir)
            .args(&self.args)
            .args(extra)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn geokv node");
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
        self.spawn_with_env(id, &[("GEOKV_BOOT_ID", boot.as_str())]);
        self.wait_healthy(id).await;
    }

    pub async fn wait_healthy(&mut self, id: &str) {
        let addr = self.node(id).admin_address;
        let started = Instant::now();
        loop {
            if admin(addr, "GET", "/health").await.is_ok() {
                return;
            }
            if let Some(c) = self.children.get_mut(id) {
                if let Ok(Some(st)) = c.try_wait() {
                    panic!("node {id} exited: {st}\n{}", self.log(id));
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "node {id} not healthy\n{}",
                self.log(id)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn log(&self, id: &str) -> String {
        let s =
            std::fs::read_to_string(self.dir.path().join(id).join("node.log")).unwrap_or_default();
        let tail: Vec<&str> = s.lines().rev().take(40).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    /// The node's own view of who is up, from the Status RPC.
    pub async fn view(&self, from: &str) -> BTreeMap<String, bool> {
        let mut c = self.client(from).await;
        let mut req = tonic::Request::new(StatusRequest {});
        if let Some(t) = &self.admin_token {
            let v = format!("Bearer {t}").parse().expect("ASCII token");
            req.metadata_mut().insert("authorization", v);
        }
        match c.status(req).await {
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

    /// A raw gRPC client to one node's client port.
    pub async fn client(&self, id: &str) -> KvClient<Channel> {
        let addr = self.node(id).client_address;
        let scheme = if self.tls_ca.is_some() {
            "https"
        } else {
            "http"
        };
        let mut endpoint = tonic::transport::Endpoint::from_shared(format!("{scheme}://{addr}"))
            .unwrap()
            .connect_timeout(Duration::from_secs(2));
        if let Some(ca) = &self.tls_ca {
            let pem = std::fs::read(ca).expect("cluster CA");
            let tls = tonic::transport::ClientTlsConfig::new()
                .ca_certificate(tonic::transport::Certificate::from_pem(pem));
            endpoint = endpoint.tls_config(tls).expect("TLS settings");
        }
        KvClient::new(endpoint.connect_lazy())
    }

    /// Cuts (or heals) every link between datacenters `a` and `b`.
    pub async fn partition_dcs(&self, a: &str, b: &str, cut: bool) {
        let verb = if cut { "cut" } else { "heal" };
        for n in &self.nodes {
            if !self.children.contains_key(&n.id) {
                continue;
            }
            let other = if n.dc == a {
                b
            } else if n.dc == b {
                a
            } else {
                continue;
            };
            admin(
                n.admin_address,
                "POST",
                &format!("/faults/{verb}?target={other}"),
            )
            .await
            .expect("fault injection");
        }
    }

    /// Sets a one-way delay on every inter-DC link.
    pub async fn wan_delay(&self, ms: u64) {
        for n in &self.nodes {
            for dc in self.topology.datacenter_names() {
                if dc != n.dc && self.children.contains_key(&n.id) {
                    admin(
                        n.admin_address,
                        "POST",
                        &format!("/faults/delay?dc={dc}&ms={ms}"),
                    )
                    .await
                    .expect("fault injection");
                }
            }
        }
    }

    /// A metric's value on one node (sum over label sets matching `filter`).
    pub async fn metric(&self, id: &str, name: &str, filter: &str) -> f64 {
        let body = admin(self.node(id).admin_address, "GET", "/metrics")
            .await
            .unwrap_or_default();
        body.lines()
            .filter(|l| l.starts_with(name) && l.contains(filter) && !l.starts_with('#'))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (_, c) in self.children.iter_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A minimal HTTP/1.1 request to an admin port (5 s to answer).
pub async fn admin(addr: std::net::SocketAddr, method: &str, path: &str) -> Result<String, String> {
    admin_within(addr, method, path, Duration::from_secs(5)).await
}

/// [`admin`] with a chosen deadline for the answer (e.g. a whole repair
/// sweep). On a non-2xx answer the error holds the status line and the body.
pub async fn admin_within(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    limit: Duration,
) -> Result<String, String> {
    let ca = ADMIN_CA.lock().unwrap().get(&addr).cloned();
    let tls = match ca {
        Some(ca) => Some(
            geokv::transport::tls::admin::operator_connector(&ca, None)
                .map_err(|e| e.to_string())?,
        ),
        None => None,
    };
    let addr = addr.to_string();
    let call = geokv::transport::admin_client::call(&addr, tls.as_ref(), method, path, None, "");
    let answer = tokio::time::timeout(limit + Duration::from_secs(2), call)
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    if !answer.is_success() {
        return Err(format!("HTTP/1.1 {}\n{}", answer.status, answer.body));
    }
    Ok(answer.body)
}

pub fn opts(level: Consistency) -> Option<RequestOptions> {
    Some(RequestOptions {
        consistency: level as i32,
        explicit_count: 0,
        timeout_ms: 2000,
    })
}

pub async fn put(
    c: &mut KvClient<Channel>,
    key: &str,
    value: &str,
    context: Vec<u8>,
    level: Consistency,
) -> Result<PutResponse, tonic::Status> {
    c.put(PutRequest {
        keyspace: "default".into(),
        key: key.as_bytes().to_vec(),
        value: value.as_bytes().to_vec(),
        context,
        options: opts(level),
    })
    .await
    .map(|r| r.into_inner())
}

pub async fn get(
    c: &mut KvClient<Channel>,
    key: &str,
    level: Consistency,
) -> Result<GetResponse, tonic::Status> {
    c.get(GetRequest {
        keyspace: "default".into(),
        key: key.as_bytes().to_vec(),
        options: opts(level),
    })
    .await
    .map(|r| r.into_inner())
}

/// The sibling values of a read, sorted.
pub fn values(r: &GetResponse) -> Vec<String> {
    let mut v: Vec<String> = r
        .siblings
        .iter()
        .filter_map(|s| s.value.as_ref())
        .map(|v| String::from_utf8_lossy(v).to_string())
        .collect();
    v.sort();
    v
}

/// Reads replicas' *local* copies of keys over the internode API (no
/// coordination, no read repair): what each node's engine holds. Keeps one
/// channel per node.
pub struct ReplicaReader {
    channels: std::sync::Mutex<BTreeMap<String, Channel>>,
}

impl Default for ReplicaReader {
    fn default() -> Self {
        ReplicaReader {
            channels: std::sync::Mutex::new(BTreeMap::new()),
        }
    }
}

impl ReplicaReader {
    fn channel(&self, node: &NodeInfo) -> Channel {
        self.channels
            .lock()
            .unwrap()
            .entry(node.id.clone())
            .or_insert_with(|| {
                tonic::transport::Endpoint::from_shared(format!("http://{}", node.peer_address))
                    .unwrap()
                    .connect_timeout(Duration::from_secs(2))
                    .connect_lazy()
            })
            .clone()
    }

    /// The sorted live values `node` holds for `key`; `None` if it did not answer.
    pub async fn holds(&self, node: &NodeInfo, keyspace: &str, key: &str) -> Option<Vec<String>> {
        use geokv::proto::v1::internode::internode_client::InternodeClient;
        use geokv::proto::v1::internode::ReplicaReadRequest;
        let r = InternodeClient::new(self.channel(node))
            .replica_read(ReplicaReadRequest {
                keyspace: keyspace.into(),
                key: key.as_bytes().to_vec(),
                // Unchecked: the test asks a node what it holds.
                ..Default::default()
            })
            .await
            .ok()?
            .into_inner();
        if !r.found {
            return Some(Vec::new());
        }
        let set = geokv::version::SiblingSet::decode(&r.record).ok()?;
        let mut v: Vec<String> = set
            .values()
            .filter_map(|s| s.value.as_ref())
            .map(|v| String::from_utf8_lossy(v).to_string())
            .collect();
        v.sort();
        Some(v)
    }
}

/// The replicas of a key in `dc`, from the ring.
pub fn replicas_in(cluster: &Cluster, keyspace: &str, key: &str, dc: &str) -> Vec<NodeInfo> {
    let ring = geokv::ring::Ring::new(&cluster.topology);
    ring.replicas(keyspace, key.as_bytes())
        .expect("keyspace")
        .in_dc(dc)
        .iter()
        .map(|i| ring.node(*i).clone())
        .collect()
}

// The nemesis and the two oracle workloads of tests/nemesis.rs.
pub mod nemesis;
pub mod register;
pub mod set_workload;
