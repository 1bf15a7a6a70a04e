//! Runs the engine benchmark that `geokv bench engine` exposes:
//!
//! ```text
//! cargo run --example engine_bench -- [ops] [periodic|sync|none] [group-commit-threads,...]
//! ```
//!
//! Compare with RocksDB's own `db_bench --benchmarks=fillrandom,readrandom
//! --key_size=16 --value_size=100 --num=<ops> --compression_type=lz4`.

#[cfg(feature = "server")]
fn main() {
    use geokv::engine::bench::{run_engine_bench, EngineBenchOptions};
    use geokv::engine::Durability;

    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut opts = EngineBenchOptions::default();
    if let Some(ops) = args.first() {
        opts.ops = ops.parse().expect("ops: a number");
    }
    if let Some(d) = args.get(1) {
        opts.durability = match d.as_str() {
            "sync" => Durability::Sync,
            "none" => Durability::None,
            _ => Durability::Periodic { interval_ms: 1000 },
        };
    }
    if let Some(t) = args.get(2) {
        opts.group_commit_threads = t
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().expect("threads"))
            .collect();
    }
    match run_engine_bench(opts) {
        Ok(report) => print!("{report}"),
        Err(e) => {
            eprintln!("engine bench failed: {e}");
            std::process::exit(1);
        }
    }
}

#[cfg(not(feature = "server"))]
fn main() {
    eprintln!("engine_bench needs the `server` feature");
}
