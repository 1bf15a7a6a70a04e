//! `geokv dev` without a subcommand: the supervisor. Starts one `geokv
//! node` process per node of the topology, records each (see [`super::record`]),
//! waits until every node answers, and then watches: a node that exits is
//! reported (and can be restarted with `geokv dev start NODE` from another
//! shell); a node that comes back is reported too. Ctrl-C or SIGTERM stops
//! every running node cleanly (SIGTERM, SIGKILL after 10 s).
//!
//! Must not match processes by name: only the records in the data directory.
use anyhow::Context;
use std::path::PathBuf;
use std::time::Duration;

use geokv::local_cluster::{admin_request_as, node_argv, wait_healthy, Bound, NodeLaunch};
use geokv::topology::{NodeInfo, Topology, DEV_TOPOLOGY_YAML};

use super::record::DevDir;
use super::supervise::{watch, Supervisor};

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
    let mut sup = Supervisor::new(dev.clone(), nodes.clone());
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
    let auth_given = |a: &String| a == "--auth" || a.starts_with("--auth=") || a == "--no-auth";
    if auth && !extra_args.iter().any(auth_given) {
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

/// Waits until every node answers `/health`; fails as soon as one exits.
pub async fn wait_ready(dev: &DevDir, nodes: &[NodeInfo], limit: Duration) -> anyhow::Result<()> {
    let bound = Bound::from_now(limit);
    let access = dev.admin_access();
    for n in nodes {
        let rec = dev.node(&n.id);
        wait_healthy(&access, n, bound, || match rec.running() {
            Some(_) => Ok(()),
            None => anyhow::bail!("node {} exited; see {}", n.id, rec.log_path().display()),
        })
        .await?;
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
    // With authentication on, /metrics needs the admin token too.
    let bearer = if auth {
        " -H \"authorization: Bearer $GEOKV_TOKEN\""
    } else {
        ""
    };
    match ca {
        Some(ca) => println!(
            "  curl --cacert {}{bearer} https://{}/metrics",
            ca.display(),
            first.admin_address
        ),
        None => println!("  curl{bearer} http://{}/metrics", first.admin_address),
    }
    println!("  geokv dev status --data-dir {dir}     (also: stop|start|kill NODE, cut|heal A B)");
    println!("logs: {dir}/<node>/node.log; Ctrl-C stops every node");
}
