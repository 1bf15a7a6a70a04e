//! `geokv bench join`: what a node join costs (issue 11, performance).
//!
//! On its own plaintext cluster of three real node processes in dc1
//! (127.0.0.91-93, rf 3, so every node stores every key): (1) LOCAL_QUORUM
//! inserts load `size_mib` MiB of values; with rf = nodes each node applies
//! every insert, so their rate is one node's raw write rate; the nodes'
//! compactions of the load are waited for (at most `settle`), so that the
//! idle baseline is not the load's aftermath; (2) an open-loop
//! LOCAL_QUORUM foreground (reads of loaded keys and puts of fresh ones)
//! starts and runs idle for `idle`; (3) a fourth node is started with the
//! real `geokv node --join` on 127.0.0.94 and the seed's layout is polled
//! until it is Normal; (4) the foreground stops, the joiner's streaming
//! counters give the stream rate and the keys moved, and the old owners'
//! `geokv_cleanup_keys_total` how many copies they dropped.
//!
//! Owns the scenario's sequence. Must not format it (`cli/bench_join.rs`).
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;

use super::compare::start_cluster;
use super::runner::{self, RunSpec, Shared};
use super::stats::{LatencySummary, PhaseReport};
use super::workload::Workload;
use super::BenchError;
use geokv::consistency::ConsistencyLevel;
use geokv::layout::NodeState;
use geokv::local_cluster::{admin_request, topology_yaml, LocalCluster};

mod foreground;
mod joiner;
pub mod math;

use joiner::{state_at, Joiner, JoinerSpec};
use math::{
    compaction_settled, ideal_fraction, keys_for, mb_per_sec, moved_fraction, per_sec, ratio,
};

/// Addresses of the cluster before the join, and of the joining node.
pub const JOIN_IPS: [&str; 3] = ["127.0.0.91", "127.0.0.92", "127.0.0.93"];
pub const JOINER_IP: &str = "127.0.0.94";
const JOINER_ID: &str = "dc1-n4";
const RF: u32 = 3;

/// What to run.
#[derive(Debug, Clone)]
pub struct JoinOptions {
    pub exe: PathBuf,
    pub work_dir: PathBuf,
    pub durability: String,
    /// MiB of values loaded before the join.
    pub size_mib: u64,
    pub value_size: usize,
    /// Concurrent inserts of the load.
    pub concurrency: usize,
    /// Foreground operations per second (open loop).
    pub foreground_rate: f64,
    /// Foreground time before the join starts (the idle baseline).
    pub idle: Duration,
    /// Give up if the new node is not Normal after this long.
    pub timeout: Duration,
    /// At most this long for the nodes' compactions after the load (zero:
    /// do not wait).
    pub settle: Duration,
    /// How long to wait for the old owners' cleanup after the join.
    pub cleanup_wait: Duration,
    pub progress: bool,
}

/// What the scenario measured.
#[derive(Debug, Clone, Serialize)]
pub struct JoinReport {
    pub nodes_before: usize,
    pub rf: u32,
    pub keys: u64,
    pub value_size: usize,
    pub loaded_bytes: u64,
    /// The LOCAL_QUORUM inserts of the load.
    pub load: PhaseReport,
    /// One node's write rate: every node applies every insert (rf = nodes).
    pub node_write_keys_per_sec: f64,
    pub node_write_mb_per_sec: f64,
    /// How long the nodes compacted after the load before the foreground
    /// started; `None` when they had not settled within `--settle-secs`
    /// (or it was 0).
    pub settle_secs: Option<f64>,
    /// From starting the process until the seed's layout shows it Normal.
    pub join_secs: f64,
    /// From the first poll that showed it Joining until Normal.
    pub joining_secs: f64,
    pub streamed_keys: u64,
    pub streamed_bytes: u64,
    /// Streamed over `joining_secs`.
    pub stream_keys_per_sec: f64,
    pub stream_mb_per_sec: f64,
    /// Stream MB/s ÷ one node's write MB/s.
    pub stream_to_write_ratio: f64,
    /// Streamed keys ÷ (keys × rf): the share of the DC's copies moved.
    pub moved_fraction: f64,
    /// 1 / (nodes before + 1).
    pub ideal_fraction: f64,
    /// Copies the old owners deleted by cleanup after the join (per node).
    pub cleanup_keys: Vec<(String, u64)>,
    pub foreground_rate: f64,
    /// Foreground before the join.
    pub idle: LatencySummary,
    pub idle_errors: u64,
    /// Foreground while the new node was Joining (streaming).
    pub during: LatencySummary,
    pub during_errors: u64,
    /// `during.p99` ÷ `idle.p99` (goal ≤ 2).
    pub p99_ratio: f64,
}

/// The instants of the join, relative to the foreground's start.
struct Timeline {
    spawned: Duration,
    joining: Duration,
    normal: Duration,
}

/// What a run collected, before [`report`] summarises it.
struct Measured {
    keys: u64,
    load: PhaseReport,
    settle_secs: Option<f64>,
    timeline: Timeline,
    samples: Vec<math::Sample>,
    streamed_keys: u64,
    streamed_bytes: u64,
    cleanup_keys: Vec<(String, u64)>,
}

/// Runs the scenario.
pub async fn run_join(opts: &JoinOptions) -> Result<JoinReport, BenchError> {
    if opts.value_size == 0 || opts.foreground_rate <= 0.0 {
        return Err(BenchError::InvalidOption(
            "--value-size and --foreground-rate must be positive".into(),
        ));
    }
    let yaml = topology_yaml("geokv-bench-join", &[("dc1", &JOIN_IPS)], RF);
    let levels = [ConsistencyLevel::LocalQuorum];
    let mut started =
        start_cluster(&opts.exe, &opts.durability, &opts.work_dir, &yaml, &levels).await?;
    let keys = keys_for(opts.size_mib, opts.value_size);
    let spec = RunSpec {
        workload: Workload::Insert,
        records: keys,
        concurrency: opts.concurrency,
        value_size: opts.value_size,
        write_consistency: ConsistencyLevel::LocalQuorum,
        progress: opts.progress,
        ..RunSpec::default()
    };
    let load = runner::load(&started.client, &spec, &Shared::new(&spec))
        .await
        .report;
    let settle_secs = settle(&started.cluster, opts.settle).await;

    let began = Instant::now();
    let (stop, stop_rx) = watch::channel(false);
    let fg = tokio::spawn(foreground::run(
        started.client.clone(),
        opts.foreground_rate,
        keys,
        began,
        stop_rx,
    ));
    tokio::time::sleep(opts.idle).await;
    let joined = join_one(&started.cluster, opts, began).await;
    let _ = stop.send(true);
    let samples = fg.await.unwrap_or_default();
    let (timeline, joiner) = joined?;
    let (streamed_keys, streamed_bytes) = joiner.streamed().await;
    let cleanup_keys = cleanup_counts(&started.cluster, opts.cleanup_wait).await;
    drop(joiner);
    started.cluster.stop();
    Ok(report(
        opts,
        Measured {
            keys,
            load,
            settle_secs,
            timeline,
            samples,
            streamed_keys,
            streamed_bytes,
            cleanup_keys,
        },
    ))
}

/// The rates, fractions and foreground windows of what a run measured.
fn report(opts: &JoinOptions, m: Measured) -> JoinReport {
    let (keys, timeline) = (m.keys, &m.timeline);
    let loaded_bytes = keys * opts.value_size as u64;
    let load_time = Duration::from_secs_f64(m.load.elapsed_secs);
    let idle = math::window(&m.samples, Duration::ZERO, timeline.spawned);
    let during = math::window(&m.samples, timeline.joining, timeline.normal);
    let joining = timeline.normal.saturating_sub(timeline.joining);
    let node_write_mb_per_sec = mb_per_sec(loaded_bytes, load_time);
    let stream_mb_per_sec = mb_per_sec(m.streamed_bytes, joining);
    let (idle, during) = (
        (idle.summary(), idle.errors),
        (during.summary(), during.errors),
    );
    JoinReport {
        nodes_before: JOIN_IPS.len(),
        rf: RF,
        keys,
        value_size: opts.value_size,
        loaded_bytes,
        node_write_keys_per_sec: m.load.throughput,
        node_write_mb_per_sec,
        load: m.load,
        settle_secs: m.settle_secs,
        join_secs: timeline
            .normal
            .saturating_sub(timeline.spawned)
            .as_secs_f64(),
        joining_secs: joining.as_secs_f64(),
        streamed_keys: m.streamed_keys,
        streamed_bytes: m.streamed_bytes,
        stream_keys_per_sec: per_sec(m.streamed_keys, joining),
        stream_mb_per_sec,
        stream_to_write_ratio: stream_mb_per_sec / node_write_mb_per_sec.max(f64::EPSILON),
        moved_fraction: moved_fraction(m.streamed_keys, keys, RF),
        ideal_fraction: ideal_fraction(JOIN_IPS.len()),
        cleanup_keys: m.cleanup_keys,
        foreground_rate: opts.foreground_rate,
        p99_ratio: ratio(during.0.p99_us, idle.0.p99_us),
        idle: idle.0,
        idle_errors: idle.1,
        during: during.0,
        during_errors: during.1,
    }
}

/// Starts the joining node and polls the seed's layout (every 100 ms) until
/// it is Normal; the instants relative to `began`, and the running node.
async fn join_one(
    cluster: &LocalCluster,
    opts: &JoinOptions,
    began: Instant,
) -> Result<(Timeline, Joiner), BenchError> {
    let seed = &cluster.nodes[0];
    let data_dir = opts.work_dir.join(JOINER_ID);
    let mut joiner = Joiner::spawn(&JoinerSpec {
        exe: &opts.exe,
        id: JOINER_ID,
        dc: "dc1",
        rack: "r4",
        ip: JOINER_IP,
        seed_peer: seed.peer_address,
        data_dir: &data_dir,
        durability: &opts.durability,
    })?;
    let spawned = began.elapsed();
    let mut joining = None;
    loop {
        let state = state_at(seed.admin_address, JOINER_ID).await;
        let now = began.elapsed();
        if state.is_some() && joining.is_none() {
            joining = Some(now);
        }
        if state == Some(NodeState::Normal) {
            let timeline = Timeline {
                spawned,
                joining: joining.unwrap_or(now),
                normal: now,
            };
            return Ok((timeline, joiner));
        }
        joiner.check_alive()?;
        if now.saturating_sub(spawned) > opts.timeout {
            return Err(BenchError::InvalidOption(format!(
                "{JOINER_ID} not Normal after {:?} (state {state:?}); see its node.log",
                opts.timeout
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls every node's `/metrics` each second until every engine has shown
/// no compaction running or pending for 6 s (the gauges are published
/// every 5 s) or `limit` has passed; the seconds it took, `None` past the
/// limit (or with a zero limit, which does not wait).
async fn settle(cluster: &LocalCluster, limit: Duration) -> Option<f64> {
    let started = Instant::now();
    let mut quiet_since: Option<Instant> = None;
    while started.elapsed() < limit {
        let mut all = true;
        for n in &cluster.nodes {
            let text = admin_request(n.admin_address, "GET", "/metrics").await;
            all &= text.is_ok_and(|t| compaction_settled(&t));
        }
        let since = match (all, quiet_since) {
            (false, _) => None,
            (true, None) => Some(Instant::now()),
            (true, since) => since,
        };
        quiet_since = since;
        if since.is_some_and(|s| s.elapsed() >= Duration::from_secs(6)) {
            return Some(started.elapsed().as_secs_f64());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    None
}

/// Each old node's `geokv_cleanup_keys_total`, polled every second until
/// the sum has not changed for 3 s (and is not 0) or `limit` has passed.
async fn cleanup_counts(cluster: &LocalCluster, limit: Duration) -> Vec<(String, u64)> {
    let started = Instant::now();
    let (mut last, mut steady_since) = (None, Instant::now());
    loop {
        let mut counts = Vec::new();
        for n in &cluster.nodes {
            let text = admin_request(n.admin_address, "GET", "/metrics").await;
            let v = text
                .ok()
                .and_then(|t| geokv::admin::exposition::sum(&t, "geokv_cleanup_keys_total", &[]));
            counts.push((n.id.clone(), v.unwrap_or(0.0).max(0.0) as u64));
        }
        let sum: u64 = counts.iter().map(|(_, v)| v).sum();
        if last != Some(sum) {
            (last, steady_since) = (Some(sum), Instant::now());
        }
        let steady = sum > 0 && steady_since.elapsed() >= Duration::from_secs(3);
        if steady || started.elapsed() >= limit {
            return counts;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
