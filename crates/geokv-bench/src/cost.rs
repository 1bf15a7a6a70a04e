//! `geokv bench cost`: the CPU-per-operation protocol of issue 14. A
//! three-node, single-datacenter cluster (rf 3) on 127.0.0.81-83, one level
//! for reads and writes (QUORUM by default), 16-byte keys, 100-byte values:
//!
//! 1. a preload of `records` keys (not measured);
//! 2. `put`: fresh-key puts at concurrency `c` for `duration`;
//! 3. `get`: gets over every key written so far (uniform) at `c`;
//! 4. `put-c1`, `get-c1`: the same with one client, for p50/p99 latency.
//!
//! Each phase reports ops/s, latency, and the server's cost from `/proc`
//! ([`proc_stats`](super::proc_stats)): CPU seconds and context switches of
//! the three node processes per operation, and the load generator's own CPU.
//! Several node binaries (`node_exes`) run in turn within each round, so an
//! A/B comparison shares one window and one load generator; the report gives
//! every round and the median per binary and phase.
//!
//! With `secure` the cluster runs TLS and authentication (the client sends
//! a token over TLS, the nodes use mutual TLS between them).
//!
//! Owns the order of runs and the optional `perf record` of the node
//! processes. Must not format results (the CLI does).
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::compare::start_cluster_with;
use super::proc_stats::{self, Cost};
use super::runner::{self, RunSpec, Shared};
use super::stats::PhaseReport;
use super::workload::{Distribution, Workload};
use super::BenchError;
use geokv::coordinator::consistency::ConsistencyLevel;
use geokv::local_cluster::topology_yaml;

/// Addresses of the three nodes.
pub const COST_IPS: [&str; 3] = ["127.0.0.81", "127.0.0.82", "127.0.0.83"];

/// The phases, in the order they run.
pub const PHASES: [&str; 4] = ["put", "get", "put-c1", "get-c1"];

/// What to measure.
#[derive(Debug, Clone)]
pub struct CostOptions {
    /// The binaries the nodes run, compared side by side (in this order in
    /// every round).
    pub node_exes: Vec<PathBuf>,
    /// Scratch directory (one subdirectory per run).
    pub work_dir: PathBuf,
    pub durability: String,
    pub level: ConsistencyLevel,
    /// Keys written before the measured phases.
    pub records: u64,
    /// Concurrency of the throughput phases.
    pub concurrency: usize,
    /// Length of each throughput phase.
    pub duration: Duration,
    /// Length of each single-client phase.
    pub latency_duration: Duration,
    pub value_size: usize,
    pub rounds: usize,
    /// Phases to run (a subset of [`PHASES`], in that order).
    pub phases: Vec<String>,
    /// `perf record -g` the nodes during each throughput phase into
    /// `<dir>/<binary>-<phase>.perf.data` (first round only).
    pub perf_record: Option<PathBuf>,
    /// `perf record` sampling frequency (Hz).
    pub perf_freq: u32,
    /// TLS and authentication on (as `bench compare --secure`): the
    /// server's CPU then includes every TLS hop's.
    pub secure: bool,
}

/// One phase of one run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CostRow {
    /// Index into `node_exes`.
    pub binary: usize,
    pub round: usize,
    pub phase: String,
    pub concurrency: usize,
    pub report: PhaseReport,
    /// The three node processes.
    pub server: Cost,
    /// The load generator (this process), CPU seconds.
    pub client_cpu_secs: f64,
    pub server_cpu_ms_per_op: f64,
    pub server_switches_per_op: f64,
}

/// The whole measurement (`--json`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct CostReport {
    pub binaries: Vec<String>,
    pub level: String,
    pub durability: String,
    /// TLS and authentication were on.
    pub secure: bool,
    pub nodes: usize,
    pub replication_factor: u32,
    pub key_bytes: usize,
    pub value_size: usize,
    pub records: u64,
    pub rows: Vec<CostRow>,
}

/// Runs every round; `on_row` sees each phase as soon as it is measured.
pub async fn run_cost(
    opts: &CostOptions,
    mut on_row: impl FnMut(&CostRow),
) -> Result<CostReport, BenchError> {
    for p in &opts.phases {
        if !PHASES.contains(&p.as_str()) {
            return Err(BenchError::InvalidOption(format!(
                "unknown phase '{p}' (phases: {})",
                PHASES.join(", ")
            )));
        }
    }
    let mut rows = Vec::new();
    for round in 0..opts.rounds.max(1) {
        for (binary, exe) in opts.node_exes.iter().enumerate() {
            let dir = opts.work_dir.join(format!("r{round}-b{binary}"));
            let measured = run_once(opts, exe, &dir, binary, round, &mut on_row).await;
            let _ = std::fs::remove_dir_all(&dir);
            rows.extend(measured?);
        }
    }
    Ok(CostReport {
        binaries: opts
            .node_exes
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        level: opts.level.to_string(),
        durability: opts.durability.clone(),
        secure: opts.secure,
        nodes: COST_IPS.len(),
        replication_factor: 3,
        key_bytes: super::keys::key_name(0).len(),
        value_size: opts.value_size,
        records: opts.records,
        rows,
    })
}

fn spec(opts: &CostOptions, workload: Workload, concurrency: usize, d: Duration) -> RunSpec {
    RunSpec {
        workload,
        distribution: Distribution::Uniform,
        records: opts.records,
        operations: None,
        duration: Some(d),
        concurrency,
        value_size: opts.value_size,
        read_consistency: opts.level,
        write_consistency: opts.level,
        progress: false,
        ..RunSpec::default()
    }
}

async fn run_once(
    opts: &CostOptions,
    exe: &Path,
    dir: &Path,
    binary: usize,
    round: usize,
    on_row: &mut impl FnMut(&CostRow),
) -> Result<Vec<CostRow>, BenchError> {
    let yaml = topology_yaml("geokv-bench-cost", &[("dc1", &COST_IPS)], 3);
    let mut started = start_cluster_with(
        exe,
        &opts.durability,
        dir,
        &yaml,
        &[opts.level],
        opts.secure,
    )
    .await?;
    let pids = started.cluster.pids();
    let load = spec(opts, Workload::Insert, opts.concurrency, opts.duration);
    let shared = Shared::new(&load);
    runner::load(&started.client, &load, &shared).await;
    let tps = proc_stats::ticks_per_second();
    let mut rows = Vec::new();
    for phase in PHASES
        .iter()
        .filter(|p| opts.phases.iter().any(|q| q == *p))
    {
        let (workload, c, d) = match *phase {
            "put" => (Workload::Insert, opts.concurrency, opts.duration),
            "get" => (Workload::C, opts.concurrency, opts.duration),
            "put-c1" => (Workload::Insert, 1, opts.latency_duration),
            _ => (Workload::C, 1, opts.latency_duration),
        };
        let perf = match (&opts.perf_record, round, c > 1) {
            (Some(pdir), 0, true) => Some(start_perf(pdir, binary, phase, &pids, opts.perf_freq)?),
            _ => None,
        };
        let me = [std::process::id()];
        let (before, client_before) = (proc_stats::sample(&pids), proc_stats::sample(&me));
        let out = runner::run(&started.client, &spec(opts, workload, c, d), &shared).await;
        let (after, client_after) = (proc_stats::sample(&pids), proc_stats::sample(&me));
        if let Some(p) = perf {
            stop_perf(p);
        }
        let server = proc_stats::cost_between(&before, &after, tps);
        let client = proc_stats::cost_between(&client_before, &client_after, tps);
        let ops = out.report.operations;
        let row = CostRow {
            binary,
            round,
            phase: phase.to_string(),
            concurrency: c,
            server_cpu_ms_per_op: server.cpu_ms_per_op(ops),
            server_switches_per_op: server.switches_per_op(ops),
            report: out.report,
            server,
            client_cpu_secs: client.cpu_secs,
        };
        on_row(&row);
        rows.push(row);
    }
    started.cluster.stop();
    Ok(rows)
}

fn start_perf(
    dir: &Path,
    binary: usize,
    phase: &str,
    pids: &[u32],
    freq: u32,
) -> Result<Child, BenchError> {
    std::fs::create_dir_all(dir)?;
    let list: Vec<String> = pids.iter().map(u32::to_string).collect();
    let child = Command::new("perf")
        .args(["record", "-g", "-F", &freq.to_string(), "-o"])
        .arg(dir.join(format!("b{binary}-{phase}.perf.data")))
        .args(["-p", &list.join(",")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    // perf needs a moment to attach to every thread.
    std::thread::sleep(Duration::from_millis(300));
    Ok(child)
}

fn stop_perf(mut child: Child) {
    // SAFETY: a signal to the perf process we spawned and have not reaped.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let _ = child.wait();
}

/// The median of `values` (the upper one of the middle two for an even
/// count); `None` when empty.
pub fn median(values: &mut [f64]) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied()
}

/// Per binary and phase, the median over rounds of: ops/s, p50 ms, p99 ms,
/// server CPU ms per op, server context switches per op.
pub fn medians(report: &CostReport) -> Vec<(usize, String, [f64; 5])> {
    let mut out = Vec::new();
    for binary in 0..report.binaries.len() {
        for phase in PHASES {
            let rows: Vec<&CostRow> = report
                .rows
                .iter()
                .filter(|r| r.binary == binary && r.phase == phase)
                .collect();
            if rows.is_empty() {
                continue;
            }
            let m = |f: &dyn Fn(&CostRow) -> f64| {
                median(&mut rows.iter().map(|r| f(r)).collect::<Vec<_>>()).unwrap_or(0.0)
            };
            out.push((
                binary,
                phase.to_string(),
                [
                    m(&|r| r.report.throughput),
                    m(&|r| r.report.overall.p50_us as f64 / 1000.0),
                    m(&|r| r.report.overall.p99_us as f64 / 1000.0),
                    m(&|r| r.server_cpu_ms_per_op),
                    m(&|r| r.server_switches_per_op),
                ],
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(3.0));
        assert_eq!(median(&mut []), None);
    }

    #[test]
    fn keys_are_sixteen_bytes() {
        assert_eq!(super::super::keys::key_name(123).len(), 16);
    }
}
