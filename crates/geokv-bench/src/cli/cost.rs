//! `geokv bench cost`: options and the printed table of the CPU-per-operation
//! protocol ([`geokv_bench::cost`]).
//!
//! Parses options and prints; must not measure anything itself.
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use geokv::client::ConsistencyLevel;
use geokv_bench::cost::{medians, run_cost, CostOptions, CostReport, CostRow, PHASES};
use geokv_bench::report::{numbers_right, table as report_table};

use super::nodes::describe;

/// Arguments of `geokv bench cost`.
#[derive(clap::Args, Debug)]
pub struct CostArgs {
    /// Binary the nodes run (repeatable: the binaries run in turn in every
    /// round, for an interleaved A/B). Default: the --node-build build of
    /// geokv.
    #[arg(long = "node-exe")]
    node_exes: Vec<PathBuf>,
    #[command(flatten)]
    nodes: super::nodes::NodeBuildArgs,
    /// Rounds; the table shows the median of each binary and phase.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Consistency level of reads and writes.
    #[arg(long, default_value = "QUORUM")]
    level: ConsistencyLevel,
    /// Seconds of each throughput phase.
    #[arg(long, default_value_t = 20.0)]
    duration_secs: f64,
    /// Seconds of each single-client (latency) phase.
    #[arg(long, default_value_t = 10.0)]
    latency_duration_secs: f64,
    /// Concurrency of the throughput phases.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Keys written before the measured phases.
    #[arg(long, default_value_t = 20_000)]
    records: u64,
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// Phases to run, in this order: put, get, put-c1, get-c1.
    #[arg(long, value_delimiter = ',', default_value = "put,get,put-c1,get-c1")]
    phases: Vec<String>,
    /// `perf record -g` the node processes during each throughput phase of
    /// the first round into DIR/b<binary>-<phase>.perf.data (CPU figures of
    /// that round then include perf's overhead).
    #[arg(long)]
    perf_record: Option<PathBuf>,
    /// TLS and authentication on (certificates and an admin token made in
    /// the scratch directory), as `bench compare --secure`.
    #[arg(long)]
    secure: bool,
    /// Sampling frequency of --perf-record, Hz.
    #[arg(long, default_value_t = 499)]
    perf_freq: u32,
    // `--json` gets every round.
    #[command(flatten)]
    spawn: super::spawn::SpawnArgs,
}

/// Runs the protocol and prints one line per measured phase, then the medians.
pub async fn cost(args: CostArgs) -> anyhow::Result<()> {
    let scratch = args.spawn.scratch("cost")?;
    let node_exes = if args.node_exes.is_empty() {
        vec![args.nodes.node_exe()?]
    } else {
        args.node_exes.clone()
    };
    for exe in &node_exes {
        anyhow::ensure!(exe.is_file(), "--node-exe {} is not a file", exe.display());
    }
    let opts = CostOptions {
        node_exes,
        work_dir: scratch.path.clone(),
        durability: args.spawn.durability.clone(),
        level: args.level,
        records: args.records,
        concurrency: args.concurrency,
        duration: Duration::from_secs_f64(args.duration_secs),
        latency_duration: Duration::from_secs_f64(args.latency_duration_secs),
        value_size: args.value_size,
        rounds: args.rounds,
        phases: args.phases,
        perf_record: args.perf_record,
        perf_freq: args.perf_freq,
        secure: args.secure,
    };
    let result = run_cost(&opts, |row| eprintln!("{}", row_line(row))).await;
    drop(scratch);
    let report = result?;
    print!("{}", table(&report));
    args.spawn.write_json(&report)
}

fn row_line(r: &CostRow) -> String {
    format!(
        "round {} binary {} {:<7} c={:<3} {:>8.0} ops/s  p50 {:.2} ms  p99 {:.2} ms  server {:.3} ms CPU/op  {:.2} cs/op  ({} threads, {} exited)  client {:.1} CPU-s  errors {}",
        r.round,
        r.binary,
        r.phase,
        r.concurrency,
        r.report.throughput,
        r.report.overall.p50_us as f64 / 1000.0,
        r.report.overall.p99_us as f64 / 1000.0,
        r.server_cpu_ms_per_op,
        r.server_switches_per_op,
        r.server.threads,
        r.server.threads_exited,
        r.client_cpu_secs,
        r.report.error_count,
    )
}

/// The medians as a Markdown table (comfy-table: columns line up), after
/// the binaries and the build each one is.
pub fn table(report: &CostReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} nodes, rf {}, {}{}; {}-byte keys, {}-byte values; medians of {} round(s)",
        report.nodes,
        report.replication_factor,
        report.level,
        if report.secure { ", TLS + auth" } else { "" },
        report.key_bytes,
        report.value_size,
        report.rows.iter().map(|r| r.round + 1).max().unwrap_or(0)
    );
    for (i, b) in report.binaries.iter().enumerate() {
        let _ = writeln!(out, "binary {i}: {}", describe(Path::new(b)));
    }
    let headers = [
        "binary",
        "phase",
        "ops/s",
        "p50 ms",
        "p99 ms",
        "server CPU ms/op",
        "server cs/op",
    ];
    let mut t = report_table(headers, true);
    let mut lines = medians(report);
    lines.sort_by_key(|(b, p, _)| (PHASES.iter().position(|q| q == p), *b));
    for (b, phase, [ops, p50, p99, cpu, cs]) in lines {
        t.add_row(vec![
            b.to_string(),
            phase,
            format!("{ops:.0}"),
            format!("{p50:.2}"),
            format!("{p99:.2}"),
            format!("{cpu:.3}"),
            format!("{cs:.2}"),
        ]);
    }
    numbers_right(&mut t, 2);
    let _ = writeln!(out, "{t}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use geokv_bench::proc_stats::Cost;
    use geokv_bench::workload::OpKind;
    use geokv_bench::Recorder;

    fn row(binary: usize, phase: &str, cpu: f64) -> CostRow {
        let mut r = Recorder::new();
        r.record_ok(OpKind::Read, Duration::from_millis(2), Duration::ZERO);
        CostRow {
            binary,
            round: 0,
            phase: phase.into(),
            concurrency: 32,
            report: r.summarize(Duration::from_secs(1)),
            server: Cost::default(),
            client_cpu_secs: 0.0,
            server_cpu_ms_per_op: cpu,
            server_switches_per_op: 1.0,
        }
    }

    #[test]
    fn the_medians_line_up_and_name_each_build() {
        let report = CostReport {
            binaries: vec!["/t/debug/geokv".into(), "/t/release/geokv".into()],
            level: "QUORUM".into(),
            durability: "periodic".into(),
            secure: false,
            nodes: 3,
            replication_factor: 3,
            key_bytes: 16,
            value_size: 100,
            records: 10,
            rows: vec![row(0, "put", 0.219), row(1, "put", 12345.188)],
        };
        let text = table(&report);
        assert!(text.contains("/t/release/geokv (release build)"), "{text}");
        assert!(text.contains("/t/debug/geokv (dev build)"), "{text}");
        let rows: Vec<&str> = text.lines().filter(|l| l.starts_with('|')).collect();
        assert_eq!(rows.len(), 4, "header, rule, two rows: {text}");
        let bars = |l: &str| l.match_indices('|').map(|(i, _)| i).collect::<Vec<_>>();
        for line in &rows[1..] {
            assert_eq!(bars(line), bars(rows[0]), "{text}");
        }
    }
}
