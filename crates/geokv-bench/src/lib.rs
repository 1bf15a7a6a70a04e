//! `geokv-bench` (run as `geokv bench`): a YCSB-style load generator that
//! drives a cluster through the client SDK, and the scenarios built on it.
//! A crate of its own so the node does not build its plotting, histogram
//! and progress-bar dependencies; the `geokv` binary's `bench` subcommand
//! execs this crate's binary (`cli/` is that binary's command line).
//!
//! # Layout
//!
//! | file | owns |
//! |---|---|
//! | `keys.rs` | zipfian / scrambled zipfian / latest / uniform key choice, key names (pure) |
//! | `workload.rs` | YCSB workloads A–F and `insert` as operation mixes (pure) |
//! | `schedule.rs` | closed vs open loop; latency from the *scheduled* start (pure) |
//! | `stats.rs` | per-op HDR histograms, errors by code, siblings seen, summaries |
//! | `runner.rs` | load and run phases over [`Client`](geokv::client::Client) with N tasks |
//! | `report.rs`, `plot.rs` | tables and JSON; SVG latency CDF and throughput plots |
//! | (`geokv::local_cluster`) | [`LocalCluster`]: real node processes, in the server crate (shared with `geokv dev`) |
//! | `engine_loop.rs` | the same workload in-process on the engine |
//! | `engine_bench.rs` | `geokv bench engine`: the engine alone, shaped like RocksDB's `db_bench` |
//! | `compare.rs`, `drain.rs` | the `compare` and `drain` scenarios |
//! | `secure.rs` | TLS + auth benchmark clusters (`compare --secure`), the reconnect timing |
//! | `join.rs`, `join/` | the `join` scenario: time to join, stream rate, foreground p99, keys moved |
//! | `cost.rs`, `proc_stats.rs` | the `cost` scenario: server CPU and context switches per op from `/proc` |
//!
//! Must not reach into a node's internals: everything below the engine row
//! goes through gRPC and the admin port, like a real client would.
use std::path::PathBuf;
use std::time::Duration;

pub mod compare;
pub mod cost;
pub mod drain;
pub mod engine_bench;
pub mod engine_loop;
pub mod join;
pub mod keys;
pub mod plot;
pub mod proc_stats;
pub mod report;
pub mod runner;
pub mod schedule;
pub mod secure;
pub mod stats;
pub mod workload;

pub use geokv::local_cluster::{ClusterError, LocalCluster, NodeLaunch};
pub use runner::{PhaseOutcome, RunSpec};
pub use stats::{LatencySummary, PhaseReport, Recorder};
pub use workload::{Distribution, OpKind, Workload};

/// Why a benchmark could not run to the end. Individual failed operations
/// are not errors: they are counted by gRPC code in the report.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Client(#[from] geokv::client::ClientError),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Topology(#[from] geokv::topology::TopologyError),
    #[error("engine: {0}")]
    Engine(#[from] geokv::engine::EngineError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("writing {path}: {reason}")]
    Plot { path: PathBuf, reason: String },
    #[error("{remaining} entries still queued for dc2 after {waited:?}")]
    DrainTimeout { remaining: u64, waited: Duration },
    #[error("{0}")]
    InvalidOption(String),
}
