//! `geokv dev`: starts a topology (the embedded two-datacenter default unless
//! `--topology` is given) as one `geokv node` process per node on its
//! 127.0.0.x addresses, waits until every node answers, prints how to reach
//! it, and stops every node cleanly on Ctrl-C or SIGTERM. Data stays in
//! `--data-dir`, so a second run reuses it.
use anyhow::{bail, Context};
use geokv::topology::{NodeInfo, Topology, DEV_TOPOLOGY_YAML};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Arguments of `geokv dev`.
#[derive(clap::Args, Debug)]
pub struct DevArgs {
    /// Data directory for every node (a subdirectory each); printed when defaulted.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Topology file; the embedded two-datacenter default when omitted.
    #[arg(long)]
    pub topology: Option<PathBuf>,
    /// Inject this one-way delay (ms) on every inter-datacenter link, to see
    /// how each consistency level behaves over a WAN.
    #[arg(long, default_value_t = 0)]
    pub wan_delay_ms: u64,
    /// WAL durability of every node (see `geokv node --help`).
    #[arg(long, default_value = "periodic")]
    pub durability: String,
}

/// Starts the cluster and blocks until Ctrl-C / SIGTERM.
pub fn run(args: DevArgs) -> anyhow::Result<()> {
    let data_dir = match &args.data_dir {
        Some(d) => d.clone(),
        None => {
            let d = std::env::current_dir()?.join("geokv-dev-data");
            eprintln!("data directory: {} (use --data-dir to choose)", d.display());
            d
        }
    };
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let (topology, topo_path) = match &args.topology {
        Some(p) => (Topology::load(p)?, p.clone()),
        None => {
            let p = data_dir.join("topology.yaml");
            std::fs::write(&p, DEV_TOPOLOGY_YAML)?;
            (Topology::dev(), p)
        }
    };
    let exe = std::env::current_exe()?;
    let nodes = topology.nodes();
    let mut children: Vec<(NodeInfo, Child)> = Vec::new();
    for n in &nodes {
        match spawn_node(&exe, &topo_path, n, &data_dir, &args.durability) {
            Ok(c) => children.push((n.clone(), c)),
            Err(e) => {
                stop_all(&mut children);
                return Err(e);
            }
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let ready = rt.block_on(wait_ready(&nodes, &mut children, Duration::from_secs(60)));
    if let Err(e) = ready {
        stop_all(&mut children);
        return Err(e);
    }
    if args.wan_delay_ms > 0 {
        for n in &nodes {
            for dc in topology.datacenter_names() {
                if dc != n.dc {
                    let path = format!("/faults/delay?dc={dc}&ms={}", args.wan_delay_ms);
                    rt.block_on(http_request(n.admin_address, "POST", &path))?;
                }
            }
        }
        println!("inter-datacenter delay: {} ms each way", args.wan_delay_ms);
    }
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
    let first = &nodes[0];
    println!("\ntry:");
    println!(
        "  geokv put hello world --endpoint http://{} --consistency LOCAL_QUORUM",
        first.client_address
    );
    println!(
        "  geokv get hello --endpoint http://{} --consistency QUORUM",
        nodes
            .last()
            .map(|n| n.client_address)
            .unwrap_or(first.client_address)
    );
    println!("  geokv status --endpoint http://{}", first.client_address);
    println!("  curl http://{}/metrics", first.admin_address);
    println!(
        "logs: {}/<node>/node.log; Ctrl-C stops every node",
        data_dir.display()
    );

    rt.block_on(async {
        tokio::select! {
            _ = super::node::wait_for_signal() => {}
            _ = watch_children(&mut children) => {}
        }
    });
    eprintln!("stopping {} nodes…", children.len());
    stop_all(&mut children);
    Ok(())
}

fn spawn_node(
    exe: &Path,
    topology: &Path,
    n: &NodeInfo,
    data_dir: &Path,
    durability: &str,
) -> anyhow::Result<Child> {
    let dir = data_dir.join(&n.id);
    std::fs::create_dir_all(&dir)?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("node.log"))?;
    Command::new(exe)
        .arg("node")
        .arg("--topology")
        .arg(topology)
        .args([
            "--node",
            &n.id,
            "--fault-injection",
            "--durability",
            durability,
        ])
        .arg("--data-dir")
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting node {}", n.id))
}

async fn wait_ready(
    nodes: &[NodeInfo],
    children: &mut [(NodeInfo, Child)],
    limit: Duration,
) -> anyhow::Result<()> {
    let started = Instant::now();
    for n in nodes {
        loop {
            if http_request(n.admin_address, "GET", "/health")
                .await
                .is_ok()
            {
                break;
            }
            for (info, c) in children.iter_mut() {
                if let Some(status) = c.try_wait()? {
                    bail!("node {} exited ({status}); see its node.log", info.id);
                }
            }
            if started.elapsed() > limit {
                bail!(
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

async fn watch_children(children: &mut [(NodeInfo, Child)]) {
    loop {
        for (info, c) in children.iter_mut() {
            if let Ok(Some(status)) = c.try_wait() {
                eprintln!("node {} exited ({status}); stopping the cluster", info.id);
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn stop_all(children: &mut [(NodeInfo, Child)]) {
    for (_, c) in children.iter_mut() {
        // SIGTERM lets each node flush and close its engine.
        unsafe {
            libc::kill(c.id() as i32, libc::SIGTERM);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    for (info, c) in children.iter_mut() {
        loop {
            match c.try_wait() {
                Ok(Some(_)) => break,
                _ if Instant::now() > deadline => {
                    eprintln!("node {} did not stop in time; killing it", info.id);
                    let _ = c.kill();
                    let _ = c.wait();
                    break;
                }
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}

/// A minimal HTTP/1.1 request to an admin port; returns the body on 2xx.
pub async fn http_request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr))
        .await??;
    let req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await??;
    let text = String::from_utf8_lossy(&buf).to_string();
    let ok = text.starts_with("HTTP/1.1 2");
    let body = text
        .split_once("\r\n\r\n")
        .map(|x| x.1)
        .unwrap_or("")
        .to_string();
    if !ok {
        bail!(
            "{method} {path} on {addr}: {}",
            text.lines().next().unwrap_or("")
        );
    }
    Ok(body)
}
