//! `geokv dev`: starts a topology (the embedded two-datacenter default unless
//! `--topology` is given) as one `geokv node` process per node on its
//! 127.0.0.x addresses, waits until every node answers, prints how to reach
//! it, and stops every node cleanly on Ctrl-C or SIGTERM. Data stays in
//! `--data-dir`, so a second run reuses it. The nodes run mutual TLS with a
//! CA and certificates generated in `DATA_DIR/certs` (kept across runs)
//! unless `--insecure` is given.
//!
//! Spawning, readiness and stopping live in [`geokv::bench::LocalCluster`],
//! shared with the benchmarks.
use anyhow::Context;
use geokv::bench::{LocalCluster, NodeLaunch};
use geokv::topology::{Topology, DEV_TOPOLOGY_YAML};
use std::path::PathBuf;
use std::time::Duration;

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
    /// Plaintext instead of TLS (by default the nodes run mutual TLS with
    /// certificates generated in DATA_DIR/certs).
    #[arg(long)]
    pub insecure: bool,
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
    let ca = (!args.insecure)
        .then(|| {
            let nodes: Vec<_> = topology
                .nodes()
                .iter()
                .map(|n| (n.id.clone(), n.client_address.ip()))
                .collect();
            geokv::security::certs::ensure_dir(
                &data_dir.join("certs"),
                &topology.cluster_name,
                &nodes,
            )
        })
        .transpose()?;
    let launch = NodeLaunch {
        exe: std::env::current_exe()?,
        topology_path: topo_path,
        data_dir: data_dir.clone(),
        durability: args.durability.clone(),
        extra_args: match &ca {
            Some(_) => vec![
                "--tls-dir".into(),
                data_dir.join("certs").display().to_string(),
            ],
            None => Vec::new(),
        },
    };
    let mut cluster = LocalCluster::spawn(topology.clone(), &launch)?;
    let nodes = cluster.nodes.clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // On an error the cluster is dropped, which stops every node.
    rt.block_on(cluster.wait_ready(Duration::from_secs(60)))?;
    if args.wan_delay_ms > 0 {
        rt.block_on(cluster.set_wan_delay(args.wan_delay_ms))?;
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
    let scheme = if ca.is_some() { "https" } else { "http" };
    println!("\ntry:");
    if let Some(ca) = &ca {
        println!("  export GEOKV_CA={}   # TLS: the cluster CA", ca.display());
    }
    println!(
        "  geokv put hello world --endpoint {scheme}://{} --consistency LOCAL_QUORUM",
        first.client_address
    );
    println!(
        "  geokv get hello --endpoint {scheme}://{} --consistency QUORUM",
        nodes
            .last()
            .map(|n| n.client_address)
            .unwrap_or(first.client_address)
    );
    println!(
        "  geokv status --endpoint {scheme}://{}",
        first.client_address
    );
    println!("  curl http://{}/metrics", first.admin_address);
    println!(
        "logs: {}/<node>/node.log; Ctrl-C stops every node",
        data_dir.display()
    );

    rt.block_on(async {
        tokio::select! {
            _ = super::node::wait_for_signal() => {}
            (id, status) = cluster.watch() => {
                eprintln!("node {id} exited ({status}); stopping the cluster");
            }
        }
    });
    eprintln!("stopping {} nodes…", cluster.len());
    for id in cluster.stop() {
        eprintln!("node {id} did not stop in time; killing it");
    }
    Ok(())
}
