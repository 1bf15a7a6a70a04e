//! `geokv dev` without a subcommand: the supervisor. Starts one `geokv
//! node` process per node of the topology, records each (see [`super::record`]),
//! waits until every node answers, and then watches: a node that exits is
//! reported (and can be restarted with `geokv dev start NODE` from another
//! shell); a node that comes back is reported too. Ctrl-C or SIGTERM stops
//! every running node cleanly (SIGTERM, SIGKILL after 10 s).
//!
//! Must not match processes by name: only the records in the data directory.
use anyhow::Context;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use geokv::bench::cluster::{admin_request_as, node_argv, NodeLaunch};
use geokv::topology::{NodeInfo, Topology, DEV_TOPOLOGY_YAML};

use super::record::DevDir;

/// What `geokv dev` starts.
pub struct Up {
    pub data_dir: PathBuf,
    pub topology: Option<PathBuf>,
    pub wan_delay_ms: u64,
    pub durability: String,
    /// Plaintext; otherwise mutual TLS with certificates in DATA_DIR/certs.
    pub insecure: bool,
    pub node_args: Vec<String>,
}

/// Starts the cluster and supervises it until Ctrl-C / SIGTERM.
pub fn run(up: Up) -> anyhow::Result<()> {
    let dev = DevDir::new(up.data_dir.clone());
    let topology = write_topology(&up, &dev)?;
    let me: Vec<String> = std::env::args().collect();
    dev.supervisor().record_cmd(&me)?;
    dev.supervisor().record_pid(std::process::id())?;

    let ca = tls_material(&up, &topology, &dev)?;
    let token = admin_token(&up, &dev)?;
    let launch = node_launch(&up, &dev, ca.is_some(), token.is_some())?;
    let nodes = topology.nodes();
    let mut sup = Supervisor {
        dev: dev.clone(),
        nodes: nodes.clone(),
        children: BTreeMap::new(),
        up: BTreeMap::new(),
    };
    for n in &nodes {
        let argv = node_argv(&launch, n)
            .into_iter()
            .map(|a| {
                a.into_string()
                    .map_err(|a| anyhow::anyhow!("not UTF-8: {a:?}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let rec = dev.node(&n.id);
        rec.record_cmd(&argv)?;
        sup.children.insert(n.id.clone(), rec.start()?);
        sup.up.insert(n.id.clone(), true);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // On an error `sup` is dropped, which stops every node.
    rt.block_on(wait_ready(&dev, &nodes, Duration::from_secs(60)))?;
    if up.wan_delay_ms > 0 {
        rt.block_on(set_wan_delay(&dev, &topology, up.wan_delay_ms))?;
        println!("inter-datacenter delay: {} ms each way", up.wan_delay_ms);
    }
    print_banner(&topology, &dev, ca.as_deref(), token.is_some());
    rt.block_on(watch(&mut sup));
    let running = sup.running_count();
    eprintln!("stopping {running} nodes…");
    for id in sup.stop_all() {
        eprintln!("node {id} did not stop in time; killed it");
    }
    Ok(())
}

/// Refuses to start over a running dev cluster, then writes the topology
/// (the file given, or the built-in one) into the data directory.
fn write_topology(up: &Up, dev: &DevDir) -> anyhow::Result<Topology> {
    std::fs::create_dir_all(&dev.root)
        .with_context(|| format!("creating {}", dev.root.display()))?;
    if let Some(pid) = dev.supervisor().running() {
        anyhow::bail!(
            "a dev cluster already runs on {} (pid {pid}); see `geokv dev status`",
            dev.root.display()
        );
    }
    let yaml = match &up.topology {
        Some(p) => {
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?
        }
        None => DEV_TOPOLOGY_YAML.to_string(),
    };
    let topology = Topology::parse(&dev.topology_path().display().to_string(), &yaml)?;
    if let Some(n) = topology
        .nodes()
        .iter()
        .find(|n| dev.node(&n.id).running().is_some())
    {
        anyhow::bail!(
            "node {} of a previous dev cluster still runs on {}; `geokv dev stop` stops it",
            n.id,
            dev.root.display()
        );
    }
    std::fs::write(dev.topology_path(), &yaml)?;
    Ok(topology)
}

/// How each node is launched: with the TLS directory when `tls`, with auth
/// and the admin token when `auth` (unless the node arguments set auth).
fn node_launch(up: &Up, dev: &DevDir, tls: bool, auth: bool) -> anyhow::Result<NodeLaunch> {
    let mut extra_args = up.node_args.clone();
    if tls {
        extra_args.extend([
            "--tls-dir".to_string(),
            certs_dir(dev).display().to_string(),
        ]);
    }
    if auth && !extra_args.iter().any(|a| a == "--auth") {
        extra_args.extend([
            "--auth".to_string(),
            "--admin-token-file".to_string(),
            admin_token_path(dev).display().to_string(),
        ]);
    }
    Ok(NodeLaunch {
        exe: std::env::current_exe()?,
        topology_path: dev.topology_path(),
        data_dir: dev.root.clone(),
        durability: up.durability.clone(),
        extra_args,
    })
}

/// Reports nodes that exit or come back, until Ctrl-C or SIGTERM.
async fn watch(sup: &mut Supervisor) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let signal = super::super::node::wait_for_signal();
    tokio::pin!(signal);
    loop {
        tokio::select! {
            _ = &mut signal => break,
            _ = tick.tick() => {
                for line in sup.watch() {
                    eprintln!("{line}");
                }
            }
        }
    }
}

/// The supervisor's state: the nodes it started (to reap them) and which
/// nodes it last saw running.
struct Supervisor {
    dev: DevDir,
    nodes: Vec<NodeInfo>,
    children: BTreeMap<String, Child>,
    up: BTreeMap<String, bool>,
}

impl Supervisor {
    /// Reaps exited children and returns one line per node that went down
    /// or came back since the last call.
    fn watch(&mut self) -> Vec<String> {
        let mut exited: BTreeMap<String, ExitStatus> = BTreeMap::new();
        self.children.retain(|id, c| match c.try_wait() {
            Ok(Some(status)) => {
                exited.insert(id.clone(), status);
                false
            }
            _ => true,
        });
        let now: BTreeMap<String, Option<u32>> = self
            .nodes
            .iter()
            .map(|n| (n.id.clone(), self.dev.node(&n.id).running()))
            .collect();
        let lines = changes(&self.up, &now, &exited);
        self.up = now.into_iter().map(|(id, p)| (id, p.is_some())).collect();
        lines
    }

    fn running_count(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| self.dev.node(&n.id).running().is_some())
            .count()
    }

    /// SIGTERM to every running node, SIGKILL to those still running
    /// after 10 s; returns the ids of the killed ones.
    fn stop_all(&mut self) -> Vec<String> {
        for n in &self.nodes {
            self.dev.node(&n.id).signal(libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut killed = Vec::new();
        for n in &self.nodes {
            let rec = self.dev.node(&n.id);
            let left = deadline.saturating_duration_since(Instant::now());
            if let Some(c) = self.children.get_mut(&n.id) {
                // Our own child: reap it, or it stays a zombie.
                while Instant::now() < deadline && matches!(c.try_wait(), Ok(None)) {
                    std::thread::sleep(Duration::from_millis(50));
                }
            } else if rec.wait_gone(left) {
                continue;
            }
            if rec.signal(libc::SIGKILL).is_some() {
                killed.push(n.id.clone());
                rec.wait_gone(Duration::from_secs(5));
            }
        }
        for c in self.children.values_mut() {
            let _ = c.wait();
        }
        self.children.clear();
        killed
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// The report lines for nodes whose running state changed (pure).
fn changes(
    before: &BTreeMap<String, bool>,
    now: &BTreeMap<String, Option<u32>>,
    exited: &BTreeMap<String, ExitStatus>,
) -> Vec<String> {
    let mut lines = Vec::new();
    for (id, pid) in now {
        let was = before.get(id).copied().unwrap_or(false);
        match (was, pid) {
            (true, None) => {
                let how = exited
                    .get(id)
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "stopped".to_string());
                lines.push(format!(
                    "node {id} exited ({how}); `geokv dev start {id}` restarts it"
                ));
            }
            (false, Some(pid)) => lines.push(format!("node {id} is running again (pid {pid})")),
            _ => {}
        }
    }
    lines
}

/// Waits until every node answers `/health`; fails as soon as one exits.
pub async fn wait_ready(dev: &DevDir, nodes: &[NodeInfo], limit: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    let access = dev.admin_access();
    for n in nodes {
        while admin_request_as(&access, n.admin_address, "GET", "/health")
            .await
            .is_err()
        {
            let rec = dev.node(&n.id);
            if rec.running().is_none() {
                anyhow::bail!("node {} exited; see {}", n.id, rec.log_path().display());
            }
            if started.elapsed() > limit {
                anyhow::bail!(
                    "node {} did not answer on {} within {limit:?}",
                    n.id,
                    n.admin_address
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// Sets a one-way delay of `ms` on every link between datacenters.
async fn set_wan_delay(dev: &DevDir, topology: &Topology, ms: u64) -> anyhow::Result<()> {
    let access = dev.admin_access();
    for n in topology.nodes() {
        for dc in topology.datacenter_names() {
            if dc != n.dc {
                let path = format!("/faults/delay?dc={dc}&ms={ms}");
                admin_request_as(&access, n.admin_address, "POST", &path).await?;
            }
        }
    }
    Ok(())
}

fn admin_token_path(dev: &DevDir) -> PathBuf {
    dev.root.join("admin-token")
}

/// The admin token `admin:SECRET` in DATA_DIR/admin-token (created with a
/// random secret, mode 0600, on the first run), or `None` with `--insecure`.
fn admin_token(up: &Up, dev: &DevDir) -> anyhow::Result<Option<String>> {
    if up.insecure {
        return Ok(None);
    }
    let path = admin_token_path(dev);
    if let Ok(t) = std::fs::read_to_string(&path) {
        return Ok(Some(t.trim().to_string()));
    }
    let secret = geokv::security::auth::secret::generate_secret();
    let token = format!("admin:{secret}");
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    writeln!(f, "{token}")?;
    Ok(Some(token))
}

fn certs_dir(dev: &DevDir) -> PathBuf {
    dev.root.join("certs")
}

/// The cluster CA's path, after creating what is missing of the CA and the
/// node certificates in DATA_DIR/certs; `None` with `--insecure`.
fn tls_material(up: &Up, topology: &Topology, dev: &DevDir) -> anyhow::Result<Option<PathBuf>> {
    if up.insecure {
        return Ok(None);
    }
    let nodes: Vec<_> = (topology.nodes().iter())
        .map(|n| (n.id.clone(), n.client_address.ip()))
        .collect();
    let ca = geokv::security::certs::ensure_dir(&certs_dir(dev), &topology.cluster_name, &nodes)?;
    Ok(Some(ca))
}

fn print_banner(topology: &Topology, dev: &DevDir, ca: Option<&std::path::Path>, auth: bool) {
    let nodes = topology.nodes();
    println!(
        "cluster {} is up ({} nodes):",
        topology.cluster_name,
        nodes.len()
    );
    for n in &nodes {
        println!(
            "{} dc={} rack={} grpc={} admin={}",
            n.id, n.dc, n.rack, n.client_address, n.admin_address
        );
    }
    let (first, last) = (&nodes[0], &nodes[nodes.len() - 1]);
    let dir = dev.root.display();
    let scheme = if ca.is_some() { "https" } else { "http" };
    println!("\ntry:");
    if let Some(ca) = ca {
        println!("  export GEOKV_CA={}   # TLS: the cluster CA", ca.display());
    }
    if auth {
        println!(
            "  export GEOKV_TOKEN=$(cat {})   # authentication: the admin token",
            admin_token_path(dev).display()
        );
    }
    println!(
        "  geokv put hello world --endpoint {scheme}://{} --consistency LOCAL_QUORUM",
        first.client_address
    );
    println!(
        "  geokv get hello --endpoint {scheme}://{} --consistency QUORUM",
        last.client_address
    );
    println!(
        "  geokv status --endpoint {scheme}://{}",
        first.client_address
    );
    match ca {
        Some(ca) => println!(
            "  curl --cacert {} https://{}/metrics",
            ca.display(),
            first.admin_address
        ),
        None => println!("  curl http://{}/metrics", first.admin_address),
    }
    println!("  geokv dev status --data-dir {dir}     (also: stop|start|kill NODE, cut|heal A B)");
    println!("logs: {dir}/<node>/node.log; Ctrl-C stops every node");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn reports_nodes_going_down_and_coming_back() {
        let before: BTreeMap<String, bool> = [("a", true), ("b", true), ("c", false)]
            .map(|(k, v)| (k.to_string(), v))
            .into();
        let now: BTreeMap<String, Option<u32>> = [("a", None), ("b", Some(7)), ("c", Some(9))]
            .map(|(k, v)| (k.to_string(), v))
            .into();
        let exited: BTreeMap<String, ExitStatus> =
            [("a".to_string(), ExitStatus::from_raw(9))].into();
        assert_eq!(
            changes(&before, &now, &exited),
            [
                "node a exited (signal: 9 (SIGKILL)); `geokv dev start a` restarts it",
                "node c is running again (pid 9)",
            ]
        );
        let exited = BTreeMap::new();
        assert_eq!(
            changes(&before, &now, &exited)[0],
            "node a exited (stopped); `geokv dev start a` restarts it"
        );
    }
}
