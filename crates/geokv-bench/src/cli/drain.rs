//! `geokv bench drain`: its options and the printing of what
//! `geokv_bench::drain` measured. Must not measure anything itself.
use std::io::IsTerminal as _;
use std::time::Duration;

use geokv_bench::drain::{run_drain, DrainOptions};
use geokv_bench::report::phase_table;

use super::spawn::SpawnArgs;

/// Arguments of `geokv bench drain`.
#[derive(clap::Args, Debug)]
pub struct DrainArgs {
    /// Inserts written while dc1 and dc2 are cut apart.
    #[arg(long, default_value_t = 20_000)]
    keys: u64,
    /// Inserts of the normal-throughput baseline.
    #[arg(long, default_value_t = 20_000)]
    baseline_keys: u64,
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// Give up if the backlog has not drained after this long.
    #[arg(long, default_value_t = 600)]
    timeout_secs: u64,
    /// One-way delay (ms) on every inter-datacenter link for the whole scenario.
    #[arg(long, default_value_t = 0)]
    wan_delay_ms: u64,
    #[command(flatten)]
    spawn: SpawnArgs,
}

/// Runs `geokv bench drain` and prints what it measured.
pub(super) async fn drain(args: DrainArgs) -> anyhow::Result<()> {
    let scratch = args.spawn.scratch("drain")?;
    let opts = DrainOptions {
        exe: super::nodes::this_geokv()?,
        work_dir: scratch.path.clone(),
        durability: args.spawn.durability.clone(),
        baseline_keys: args.baseline_keys,
        keys: args.keys,
        concurrency: args.concurrency,
        value_size: args.value_size,
        timeout: Duration::from_secs(args.timeout_secs),
        wan_delay_ms: args.wan_delay_ms,
        progress: std::io::stderr().is_terminal(),
    };
    let result = run_drain(&opts).await;
    drop(scratch);
    let r = result?;
    println!("inter-datacenter delay: {} ms one way", r.wan_delay_ms);
    print!(
        "{}",
        phase_table("baseline (LOCAL_QUORUM inserts)", &r.baseline)
    );
    print!(
        "{}",
        phase_table("while dc1|dc2 cut (LOCAL_QUORUM inserts)", &r.partitioned)
    );
    println!(
        "backlog at heal: {} entries ({:?})",
        r.backlog_total, r.backlog_at_heal
    );
    println!(
        "drained in {:.2} s (first progress after {:.2} s): {:.0} entries/s ({:.0}/s once moving)",
        r.drain_secs, r.first_progress_secs, r.drain_rate, r.drain_rate_active
    );
    println!(
        "drain rate / normal write throughput = {:.0} / {:.0} = {:.2} (goal >= 0.50)",
        r.drain_rate, r.baseline.throughput, r.ratio_to_writes
    );
    let ms = |us: u64| us as f64 / 1000.0;
    for (what, l) in [
        ("EACH_QUORUM probe, streams idle", &r.each_quorum_idle),
        (
            "EACH_QUORUM probe, during the drain",
            &r.each_quorum_during_drain,
        ),
        (
            "LOCAL_QUORUM probe in dc2, streams idle",
            &r.local_quorum_idle,
        ),
        (
            "LOCAL_QUORUM probe in dc2, during the drain",
            &r.local_quorum_during_drain,
        ),
    ] {
        println!(
            "{what}: {} puts, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            l.count,
            ms(l.p50_us),
            ms(l.p99_us),
            ms(l.max_us)
        );
    }
    println!("probe errors: {}", r.probe_errors);
    args.spawn.write_json(&r)
}
