//! `geokv bench join`: its options and the printing of what
//! `geokv_bench::join` measured. Must not measure anything itself.
use std::io::IsTerminal as _;
use std::time::Duration;

use geokv_bench::join::{run_join, JoinOptions};
use geokv_bench::report::phase_table;

use super::spawn::SpawnArgs;

/// Arguments of `geokv bench join`.
#[derive(clap::Args, Debug)]
pub struct JoinArgs {
    /// MiB of values loaded before the join (1024 for the 1 GiB).
    #[arg(long, default_value_t = 64)]
    size_mib: u64,
    /// Bytes per value.
    #[arg(long, default_value_t = 4096)]
    value_size: usize,
    /// Concurrent inserts of the load.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// LOCAL_QUORUM foreground operations per second (open loop; half reads
    /// of loaded keys, half puts of fresh keys).
    #[arg(long, default_value_t = 200.0)]
    foreground_rate: f64,
    /// Seconds of foreground before the join (the idle baseline).
    #[arg(long, default_value_t = 10.0)]
    idle_secs: f64,
    /// Give up if the new node is not Normal after this long.
    #[arg(long, default_value_t = 1800)]
    timeout_secs: u64,
    /// At most this many seconds for the nodes' compactions after the load,
    /// before the idle baseline (0: do not wait).
    #[arg(long, default_value_t = 300)]
    settle_secs: u64,
    /// Seconds to wait for the old owners' cleanup after the join.
    #[arg(long, default_value_t = 30)]
    cleanup_wait_secs: u64,
    #[command(flatten)]
    spawn: SpawnArgs,
}

/// Runs `geokv bench join` and prints what it measured.
pub(super) async fn join(args: JoinArgs) -> anyhow::Result<()> {
    let scratch = args.spawn.scratch("join")?;
    let opts = JoinOptions {
        exe: super::nodes::this_geokv()?,
        work_dir: scratch.path.clone(),
        durability: args.spawn.durability.clone(),
        size_mib: args.size_mib,
        value_size: args.value_size,
        concurrency: args.concurrency,
        foreground_rate: args.foreground_rate,
        idle: Duration::from_secs_f64(args.idle_secs),
        timeout: Duration::from_secs(args.timeout_secs),
        settle: Duration::from_secs(args.settle_secs),
        cleanup_wait: Duration::from_secs(args.cleanup_wait_secs),
        progress: std::io::stderr().is_terminal(),
    };
    let result = run_join(&opts).await;
    drop(scratch);
    let r = result?;
    let load = "load (LOCAL_QUORUM inserts; every node stores every key)";
    print!("{}", phase_table(load, &r.load));
    println!(
        "{} keys x {} B = {:.1} MB on {} nodes, rf {}; one node's write rate {:.0} keys/s, {:.2} MB/s",
        r.keys,
        r.value_size,
        r.loaded_bytes as f64 / 1e6,
        r.nodes_before,
        r.rf,
        r.node_write_keys_per_sec,
        r.node_write_mb_per_sec
    );
    match r.settle_secs {
        Some(s) => println!("compactions after the load settled in {s:.1} s"),
        None => println!(
            "compactions after the load had not settled within --settle-secs; the idle baseline includes them"
        ),
    }
    println!(
        "join: {:.1} s from start to Normal ({:.1} s Joining)",
        r.join_secs, r.joining_secs
    );
    println!(
        "stream: {} keys, {:.1} MB: {:.0} keys/s, {:.2} MB/s ({:.2}x one node's write MB/s)",
        r.streamed_keys,
        r.streamed_bytes as f64 / 1e6,
        r.stream_keys_per_sec,
        r.stream_mb_per_sec,
        r.stream_to_write_ratio
    );
    println!(
        "moved {:.3} of the copies (ideal 1/(n+1) = {:.3}); cleanup on the old owners: {:?}",
        r.moved_fraction, r.ideal_fraction, r.cleanup_keys
    );
    let ms = |us: u64| us as f64 / 1000.0;
    for (what, l, errors) in [
        ("idle", &r.idle, r.idle_errors),
        ("while Joining", &r.during, r.during_errors),
    ] {
        println!(
            "foreground LOCAL_QUORUM at {:.0}/s, {what}: {} ok, {errors} failed, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            r.foreground_rate,
            l.count,
            ms(l.p50_us),
            ms(l.p99_us),
            ms(l.max_us)
        );
    }
    println!(
        "p99 while Joining / idle p99 = {:.2} (goal <= 2)",
        r.p99_ratio
    );
    args.spawn.write_json(&r)
}
