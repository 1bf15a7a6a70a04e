//! `geokv bench`'s command line (the `geokv-bench` binary): `run` against a
//! running cluster, `compare` (engine vs one node vs six nodes at each level),
//! `drain` (backlog drain after a partition; `drain.rs`), `engine`
//! (db_bench-shaped), `cost` (CPU per operation; `cost.rs`), `join` (a node
//! join under load; `join.rs`).
//!
//! Parses options, prints tables, writes JSON and plots (the options of the
//! commands that spawn their own nodes: `spawn.rs`). Must not measure
//! anything itself: the library (`geokv_bench`) does.
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use geokv::client::{Client, ConsistencyLevel};
use geokv_bench::compare::{parse_durability, run_compare, CompareOptions};
use geokv_bench::report::{compare_table, phase_table, RunReport};
use geokv_bench::runner::{self, RunSpec, Shared};
use geokv_bench::{plot, Distribution, Workload};

use spawn::{write_json, SpawnArgs};

pub mod cost;
pub mod drain;
pub mod join;
pub mod nodes;
pub mod spawn;

/// `geokv bench` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum BenchCommand {
    /// Load records, then run a YCSB workload against a running cluster.
    Run(RunArgs),
    /// The engine in-process, one node, and a six-node two-DC cluster at each
    /// level, side by side (spawns its own nodes on 127.0.0.31/.41-.53).
    Compare(CompareArgs),
    /// Time how fast dc1's backlog to dc2 drains after a partition heals
    /// (spawns its own cluster on 127.0.0.61-.73).
    Drain(drain::DrainArgs),
    /// The storage engine alone, shaped like RocksDB's db_bench.
    Engine(EngineArgs),
    /// Server CPU and context switches per operation: a three-node rf 3
    /// cluster at QUORUM, fresh-key puts and gets at c=32 and c=1 (spawns
    /// its own nodes on 127.0.0.81-83; several --node-exe for an A/B).
    Cost(cost::CostArgs),
    /// Time a node join under a LOCAL_QUORUM foreground: stream rate, p99
    /// while joining, keys moved (spawns its own nodes on 127.0.0.91-94).
    Join(join::JoinArgs),
}

/// Workload options shared by `run` and `compare`.
#[derive(clap::Args, Debug, Clone)]
pub struct WorkloadArgs {
    /// a (50/50 read/update), b (95/5), c (read only), d (read latest),
    /// f (read-modify-write), insert.
    #[arg(long, default_value = "a")]
    workload: Workload,
    /// How keys are chosen: zipfian (scrambled, 0.99) or uniform; workload d
    /// always reads the latest keys.
    #[arg(long, default_value = "zipfian")]
    distribution: Distribution,
    /// Keys inserted by the load phase.
    #[arg(long, default_value_t = 10_000)]
    records: u64,
    /// Operations of the run phase (default 10000 unless --duration-secs).
    #[arg(long)]
    operations: Option<u64>,
    /// Length of the run phase in seconds.
    #[arg(long)]
    duration_secs: Option<f64>,
    /// Concurrent requests.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Bytes per value.
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// Open loop: schedule operations at this rate (ops/s) and measure
    /// latency from each scheduled start.
    #[arg(long)]
    target_rate: Option<f64>,
    /// Updates without a causal context (each becomes a sibling).
    #[arg(long)]
    blind_updates: bool,
    /// RNG seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

impl WorkloadArgs {
    fn spec(&self) -> RunSpec {
        let duration = self.duration_secs.map(Duration::from_secs_f64);
        RunSpec {
            workload: self.workload,
            distribution: self.distribution,
            records: self.records,
            operations: self.operations.or(if duration.is_none() {
                Some(10_000)
            } else {
                None
            }),
            duration,
            concurrency: self.concurrency,
            value_size: self.value_size,
            target_rate: self.target_rate,
            blind_updates: self.blind_updates,
            seed: self.seed,
            progress: std::io::stderr().is_terminal(),
            ..RunSpec::default()
        }
    }
}

/// Arguments of `geokv bench run`.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    workload: WorkloadArgs,
    /// Consistency level of reads.
    #[arg(long, default_value = "LOCAL_QUORUM")]
    read_consistency: ConsistencyLevel,
    /// Consistency level of writes (load phase included).
    #[arg(long, default_value = "LOCAL_QUORUM")]
    write_consistency: ConsistencyLevel,
    /// A node's client address (repeatable); the rest are discovered.
    #[arg(long = "endpoint", default_value = "http://127.0.0.11:7070")]
    endpoints: Vec<String>,
    /// Datacenter whose coordinators are used (default: the first endpoint's).
    #[arg(long)]
    local_dc: Option<String>,
    #[arg(long, default_value = "default")]
    keyspace: String,
    /// Skip the load phase (the records are already there).
    #[arg(long)]
    skip_load: bool,
    /// Deadline of each request.
    #[arg(long, default_value_t = 5000)]
    timeout_ms: u64,
    /// SDK retries per request (0: every failure is counted).
    #[arg(long, default_value_t = 0)]
    retries: u32,
    /// Write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write latency-cdf.svg and throughput.svg into this directory.
    #[arg(long)]
    plot_dir: Option<PathBuf>,
}

/// Arguments of `geokv bench compare`.
#[derive(clap::Args, Debug)]
pub struct CompareArgs {
    #[command(flatten)]
    workload: WorkloadArgs,
    /// One-way delay (ms) set on every inter-datacenter link of the six-node cluster.
    #[arg(long, default_value_t = 0)]
    wan_delay_ms: u64,
    /// Levels the six-node cluster runs at (reads and writes alike).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "ONE,LOCAL_QUORUM,QUORUM,EACH_QUORUM"
    )]
    levels: Vec<ConsistencyLevel>,
    #[command(flatten)]
    spawn: SpawnArgs,
    /// Write plots here: `compare-latency-cdf.svg` (one curve per setup and
    /// level) and `throughput-<n>.svg` for each row.
    #[arg(long)]
    plot_dir: Option<PathBuf>,
    /// Run the clusters with TLS on every port and `--auth` (a CA, node
    /// certificates and an admin token are generated in the work dir); the
    /// client verifies the CA and sends the token. Compare with a run
    /// without it.
    #[arg(long)]
    secure: bool,
    /// Only the six-node cluster: skip the engine and single-node rows.
    #[arg(long)]
    cluster_only: bool,
    /// Time this many fresh connections (connect, TLS handshake when
    /// --secure, first GET) against a warm GET on the six-node cluster.
    #[arg(long, default_value_t = 0)]
    reconnects: usize,
    #[command(flatten)]
    nodes: nodes::NodeBuildArgs,
}

/// Arguments of `geokv bench engine`.
#[derive(clap::Args, Debug)]
pub struct EngineArgs {
    /// Operations per phase.
    #[arg(long, default_value_t = 1_000_000)]
    ops: usize,
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    #[arg(long, default_value = "periodic")]
    durability: String,
    /// Write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// Runs a `geokv bench` subcommand on a multi-threaded runtime.
pub fn run(command: BenchCommand) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match command {
        BenchCommand::Run(args) => rt.block_on(bench_run(args)),
        BenchCommand::Compare(args) => rt.block_on(compare(args)),
        BenchCommand::Drain(args) => rt.block_on(drain::drain(args)),
        BenchCommand::Engine(args) => engine(args),
        BenchCommand::Cost(args) => rt.block_on(cost::cost(args)),
        BenchCommand::Join(args) => rt.block_on(join::join(args)),
    }
}

async fn bench_run(args: RunArgs) -> anyhow::Result<()> {
    let mut builder = Client::builder()
        .endpoints(args.endpoints.clone())
        .keyspace(args.keyspace.clone())
        .timeout(Duration::from_millis(args.timeout_ms))
        .retries(args.retries);
    if let Some(dc) = &args.local_dc {
        builder = builder.local_datacenter(dc.clone());
    }
    if let Some(ca) = std::env::var_os("GEOKV_CA") {
        // TLS to a cluster such as `geokv dev`'s, as for the other subcommands.
        builder = builder.tls(geokv::client::TlsOptions::from_ca_file(ca)?);
    }
    let client = builder.build().await?;
    let spec = RunSpec {
        read_consistency: args.read_consistency,
        write_consistency: args.write_consistency,
        ..args.workload.spec()
    };
    let shared = Shared::new(&spec);
    let load = if args.skip_load {
        None
    } else {
        let load = runner::load(&client, &spec, &shared).await.report;
        print!("{}", phase_table("load", &load));
        Some(load)
    };
    let run = runner::run(&client, &spec, &shared).await;
    print!("{}", phase_table("run", &run.report));
    if let Some(dir) = &args.plot_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let title = format!(
            "workload {} ({} / {})",
            spec.workload, spec.read_consistency, spec.write_consistency
        );
        plot::latency_cdf(
            &dir.join("latency-cdf.svg"),
            &format!("latency CDF, {title}"),
            &run.recorder,
        )?;
        plot::throughput(
            &dir.join("throughput.svg"),
            &format!("throughput, {title}"),
            &run.report.timeline,
        )?;
        println!("plots: {}/{{latency-cdf,throughput}}.svg", dir.display());
    }
    if let Some(path) = &args.json {
        let report = RunReport {
            workload: spec.workload.to_string(),
            distribution: format!("{:?}", spec.distribution).to_lowercase(),
            records: spec.records,
            operations: spec.operations,
            duration_secs: spec.duration.map(|d| d.as_secs_f64()),
            concurrency: spec.concurrency,
            value_size: spec.value_size,
            target_rate: spec.target_rate,
            read_consistency: spec.read_consistency.to_string(),
            write_consistency: spec.write_consistency.to_string(),
            keyspace: args.keyspace,
            endpoints: args.endpoints,
            load,
            run: run.report,
        };
        write_json(path, &report)?;
    }
    Ok(())
}

async fn compare(args: CompareArgs) -> anyhow::Result<()> {
    let scratch = args.spawn.scratch("compare")?;
    let exe = args.nodes.node_exe()?;
    println!(
        "nodes: {}; engine row: in-process, this binary's build",
        nodes::describe(&exe)
    );
    let opts = CompareOptions {
        exe,
        work_dir: scratch.path.clone(),
        spec: args.workload.spec(),
        levels: args.levels,
        wan_delay_ms: args.wan_delay_ms,
        durability: args.spawn.durability.clone(),
        secure: args.secure,
        cluster_only: args.cluster_only,
        reconnects: args.reconnects,
    };
    let mut recorded = Vec::new();
    let result = run_compare(&opts, |row, rec| {
        eprintln!(
            "measured {} {}: {:.1} ops/s",
            row.setup, row.level, row.report.throughput
        );
        let label = format!("{} {}", row.setup, row.level);
        recorded.push((label.trim().to_string(), rec.clone()));
    })
    .await;
    drop(scratch);
    let report = result?;
    print!("{}", compare_table(&report));
    args.spawn.write_json(&report)?;
    if let Some(dir) = &args.plot_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let title = format!(
            "workload {}, inter-DC delay {} ms: latency CDF",
            report.workload, report.wan_delay_ms
        );
        plot::compare_cdf(&dir.join("compare-latency-cdf.svg"), &title, &recorded)?;
        for (i, row) in report.rows.iter().enumerate() {
            let title = format!("throughput, {} {}", row.setup, row.level);
            plot::throughput(
                &dir.join(format!("throughput-{i}.svg")),
                title.trim(),
                &row.report.timeline,
            )?;
        }
        println!(
            "plots: {}/compare-latency-cdf.svg and throughput-0..{}.svg",
            dir.display(),
            report.rows.len().saturating_sub(1)
        );
    }
    Ok(())
}

fn engine(args: EngineArgs) -> anyhow::Result<()> {
    let opts = geokv_bench::engine_bench::EngineBenchOptions {
        ops: args.ops,
        value_bytes: args.value_size,
        durability: parse_durability(&args.durability)?,
        ..Default::default()
    };
    let report = geokv_bench::engine_bench::run_engine_bench(opts)?;
    print!("{report}");
    match &args.json {
        Some(path) => write_json(path, &engine_json(&report, &args.durability)),
        None => Ok(()),
    }
}

/// `geokv bench engine`'s `--json`: each phase and group-commit row.
fn engine_json(
    r: &geokv_bench::engine_bench::EngineBenchReport,
    durability: &str,
) -> serde_json::Value {
    let phases: Vec<serde_json::Value> = (r.phases.iter())
        .map(|p| {
            serde_json::json!({"name": p.name, "ops": p.ops, "secs": p.secs,
                "ops_per_sec": p.ops_per_sec(), "found": p.found})
        })
        .collect();
    let group_commit: Vec<serde_json::Value> = (r.group_commit.iter())
        .map(|g| {
            serde_json::json!({"threads": g.threads, "ops": g.ops, "secs": g.secs,
                "wal_syncs": g.wal_syncs})
        })
        .collect();
    serde_json::json!({
        "ops": r.options.ops,
        "value_bytes": r.options.value_bytes,
        "durability": durability,
        "phases": phases,
        "group_commit": group_commit,
    })
}
