//! `geokv bench compare`: one workload on one machine, side by side: the
//! raw engine in-process, one node (rf 1) at ONE, and a six-node,
//! two-datacenter cluster at each consistency level (same level for reads
//! and writes), optionally with a one-way delay on every inter-DC link,
//! with TLS and authentication on (`--secure`), and timing fresh
//! connections (`--reconnects`). The
//! clusters are spawned here on addresses of their own (127.0.0.31 and
//! 127.0.0.41-43 / .51-53), so a running `geokv dev` is left alone.
//!
//! Owns the order of the runs and their scratch directories. Must not format
//! results (that is `report.rs`).
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::engine_loop::run_engine_workload;
use super::report::{CompareReport, CompareRow};
use super::runner::{self, RunSpec, Shared};
use super::secure::{measure_reconnect, scheme, Secure};
use super::stats::Recorder;
use super::BenchError;
use geokv::client::Client;
use geokv::consistency::ConsistencyLevel;
use geokv::engine::Durability;
use geokv::local_cluster::{topology_yaml, write_topology, LocalCluster, NodeLaunch};

/// Address of the single-node setup.
pub const SINGLE_NODE_IP: &str = "127.0.0.31";
/// Addresses of the six-node setup: dc1, then dc2.
pub const SIX_NODE_IPS: [&[&str]; 2] = [
    &["127.0.0.41", "127.0.0.42", "127.0.0.43"],
    &["127.0.0.51", "127.0.0.52", "127.0.0.53"],
];

/// What to compare.
#[derive(Debug, Clone)]
pub struct CompareOptions {
    /// The `geokv` binary the nodes run.
    pub exe: PathBuf,
    /// Scratch directory (one subdirectory per setup).
    pub work_dir: PathBuf,
    /// Workload, sizes and concurrency; its consistency levels are ignored.
    pub spec: RunSpec,
    /// Levels the six-node cluster runs at, in order.
    pub levels: Vec<ConsistencyLevel>,
    /// One-way inter-DC delay set on every node before the six-node runs.
    pub wan_delay_ms: u64,
    /// `--durability` of the nodes; the engine run uses the same.
    pub durability: String,
    /// TLS on every port and `--auth` on the nodes; the client verifies
    /// the cluster CA and sends a token (`secure.rs`).
    pub secure: bool,
    /// Only the six-node cluster (no engine and single-node rows).
    pub cluster_only: bool,
    /// Fresh connections timed on the six-node cluster (0: none).
    pub reconnects: usize,
}

/// Parses a `--durability` value the way `geokv node` does.
pub fn parse_durability(s: &str) -> Result<Durability, BenchError> {
    match s {
        "sync" => Ok(Durability::Sync),
        "periodic" => Ok(Durability::default()),
        "none" => Ok(Durability::None),
        other => Err(BenchError::InvalidOption(format!(
            "--durability must be sync, periodic or none, not '{other}'"
        ))),
    }
}

/// Runs every setup in turn; `on_row` sees each row, with its histograms
/// (for plots), as soon as it is measured.
pub async fn run_compare(
    opts: &CompareOptions,
    mut on_row: impl FnMut(&CompareRow, &Recorder),
) -> Result<CompareReport, BenchError> {
    let mut rows = Vec::new();
    if !opts.cluster_only {
        rows.extend(baselines(opts, &mut on_row).await?);
    }

    let yaml = topology_yaml(
        "geokv-bench-six",
        &[("dc1", SIX_NODE_IPS[0]), ("dc2", SIX_NODE_IPS[1])],
        3,
    );
    let mut six = start(opts, &opts.work_dir.join("six"), &yaml, &opts.levels).await?;
    if opts.wan_delay_ms > 0 {
        six.cluster.set_wan_delay(opts.wan_delay_ms).await?;
    }
    let setup = match opts.secure {
        true => "6 nodes, 2 DCs, rf 3+3, TLS+auth",
        false => "6 nodes, 2 DCs, rf 3+3",
    };
    let load_level = ConsistencyLevel::LocalQuorum;
    let measured = measure(
        &six.client,
        opts,
        setup,
        load_level,
        &opts.levels,
        &mut on_row,
    )
    .await;
    let reconnect = match opts.reconnects {
        0 => None,
        n => {
            let url = format!(
                "{}://{}",
                scheme(six.secure.as_ref()),
                six.cluster.nodes[0].client_address
            );
            Some(measure_reconnect(&url, six.secure.as_ref(), n).await?)
        }
    };
    six.cluster.stop();
    rows.extend(measured);

    Ok(CompareReport {
        workload: opts.spec.workload.to_string(),
        records: opts.spec.records,
        operations: opts.spec.operations,
        concurrency: opts.spec.concurrency,
        value_size: opts.spec.value_size,
        wan_delay_ms: opts.wan_delay_ms,
        secure: opts.secure,
        node_exe: opts.exe.display().to_string(),
        rows,
        reconnect,
    })
}

/// The engine in-process and one node at rf 1, as reference rows.
async fn baselines(
    opts: &CompareOptions,
    on_row: &mut impl FnMut(&CompareRow, &Recorder),
) -> Result<Vec<CompareRow>, BenchError> {
    let mut rows = Vec::new();
    let durability = parse_durability(&opts.durability)?;
    let engine_dir = opts.work_dir.join("engine");
    let spec = opts.spec.clone();
    let engine = tokio::task::spawn_blocking(move || {
        let out = run_engine_workload(&engine_dir, &spec, durability);
        let _ = std::fs::remove_dir_all(&engine_dir);
        out
    })
    .await
    .map_err(|e| BenchError::InvalidOption(format!("engine run panicked: {e}")))??;
    let row = CompareRow {
        setup: "engine (in-process)".into(),
        level: String::new(),
        report: engine.report,
    };
    on_row(&row, &engine.recorder);
    rows.push(row);

    let one = [ConsistencyLevel::One];
    let yaml = topology_yaml("geokv-bench-single", &[("dc1", &[SINGLE_NODE_IP])], 1);
    let mut single = start(opts, &opts.work_dir.join("single"), &yaml, &one).await?;
    let setup = "1 node, rf 1";
    let measured = measure(&single.client, opts, setup, one[0], &one, on_row).await;
    single.cluster.stop();
    rows.extend(measured);
    Ok(rows)
}

fn spec_at(spec: &RunSpec, level: ConsistencyLevel) -> RunSpec {
    RunSpec {
        read_consistency: level,
        write_consistency: level,
        ..spec.clone()
    }
}

/// Loads the records at `load_level`, then runs the workload at each level
/// (reads and writes alike), reporting each row as it is measured.
async fn measure(
    client: &Client,
    opts: &CompareOptions,
    setup: &str,
    load_level: ConsistencyLevel,
    levels: &[ConsistencyLevel],
    on_row: &mut impl FnMut(&CompareRow, &Recorder),
) -> Vec<CompareRow> {
    let shared = Shared::new(&opts.spec);
    runner::load(client, &spec_at(&opts.spec, load_level), &shared).await;
    let mut rows = Vec::new();
    for level in levels {
        let r = runner::run(client, &spec_at(&opts.spec, *level), &shared).await;
        let row = CompareRow {
            setup: setup.to_string(),
            level: level.to_string(),
            report: r.report,
        };
        on_row(&row, &r.recorder);
        rows.push(row);
    }
    rows
}

/// A started cluster and a client for it.
pub struct Started {
    pub cluster: LocalCluster,
    pub client: Client,
    /// Its TLS material and token when it runs TLS + auth.
    pub secure: Option<Secure>,
}

/// Spawns the topology in `yaml` under `dir`, waits until every node answers
/// and a write at each of `levels` succeeds, and connects a client preferring
/// the first datacenter.
pub async fn start(
    opts: &CompareOptions,
    dir: &Path,
    yaml: &str,
    levels: &[ConsistencyLevel],
) -> Result<Started, BenchError> {
    start_cluster_with(&opts.exe, &opts.durability, dir, yaml, levels, opts.secure).await
}

/// [`start`] without the compare options (plaintext, no auth).
pub async fn start_cluster(
    exe: &Path,
    durability: &str,
    dir: &Path,
    yaml: &str,
    levels: &[ConsistencyLevel],
) -> Result<Started, BenchError> {
    start_cluster_with(exe, durability, dir, yaml, levels, false).await
}

/// [`start_cluster`], with TLS and authentication when `secure`.
pub async fn start_cluster_with(
    exe: &Path,
    durability: &str,
    dir: &Path,
    yaml: &str,
    levels: &[ConsistencyLevel],
    secure: bool,
) -> Result<Started, BenchError> {
    let (topology, topology_path) = write_topology(dir, yaml)?;
    let secure = match secure {
        true => Some(Secure::prepare(dir, &topology)?),
        false => None,
    };
    let launch = NodeLaunch {
        exe: exe.to_path_buf(),
        topology_path,
        data_dir: dir.to_path_buf(),
        durability: durability.to_string(),
        extra_args: secure.as_ref().map(Secure::node_args).unwrap_or_default(),
    };
    let mut cluster = LocalCluster::spawn(topology, &launch)?;
    if let Some(s) = &secure {
        cluster.access = s.admin_access();
    }
    cluster.wait_ready(Duration::from_secs(60)).await?;
    let first_dc = cluster.nodes[0].dc.clone();
    let endpoints: Vec<String> = cluster
        .nodes
        .iter()
        .map(|n| format!("{}://{}", scheme(secure.as_ref()), n.client_address))
        .collect();
    let mut builder = Client::builder()
        .endpoints(endpoints)
        .local_datacenter(first_dc)
        .retries(0);
    if let Some(s) = &secure {
        builder = s.client(builder)?;
    }
    let client = builder.build().await?;
    for level in levels {
        wait_writable(&client, *level, Duration::from_secs(60)).await?;
    }
    Ok(Started {
        cluster,
        client,
        secure,
    })
}

/// Retries a write at `level` until it succeeds (gossip has seen every
/// replica up), or fails with the last error after `limit`.
pub async fn wait_writable(
    client: &Client,
    level: ConsistencyLevel,
    limit: Duration,
) -> Result<(), BenchError> {
    let started = Instant::now();
    loop {
        match client.put("bench-warmup", "x").consistency(level).await {
            Ok(_) => return Ok(()),
            Err(e) if started.elapsed() > limit => return Err(e.into()),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}
