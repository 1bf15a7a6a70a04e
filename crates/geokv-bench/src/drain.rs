//! `geokv bench drain`: how fast a datacenter's backlog drains after a
//! partition heals, against how fast the cluster takes writes normally.
//!
//! On its own six-node cluster (127.0.0.61-63 / .71-73): (1) LOCAL_QUORUM
//! inserts from dc1 measure normal write throughput; once their streams to dc2
//! are empty, (2) every link between dc1 and dc2 is cut on both sides,
//! (3) `keys` more inserts are written at LOCAL_QUORUM (they queue in the dc1
//! coordinators' durable streams to dc2), (4) the links are healed and every
//! dc1 node's `geokv_hint_backlog_entries{dest="dc:dc2",lane="backlog"}` is polled until all
//! are 0 (`wan_delay_ms` puts a one-way delay on every inter-DC link first).
//! Drain rate = entries queued at heal ÷ seconds from heal to empty.
//!
//! Two probes write one put at a time, first with the streams idle and then
//! throughout the drain: EACH_QUORUM shows whether a client waiting on dc2
//! queues behind the backlog (it should not: such writes take the streams'
//! urgent lane), LOCAL_QUORUM coordinated in dc2 (the side replaying the
//! backlog) whether replay starves foreground requests there.
//!
//! Owns the scenario's sequence and the metric scrape. Must not format it.
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::compare::start_cluster;
use super::runner::{self, RunSpec, Shared};
use super::stats::{LatencySummary, PhaseReport};
use super::workload::Workload;
use super::BenchError;
use geokv::client::Client;
use geokv::consistency::ConsistencyLevel;
use geokv::local_cluster::{topology_yaml, LocalCluster};
use hdrhistogram::Histogram;
use tokio::sync::watch;

mod scrape;
use scrape::{backlogs, wait_empty};

/// Probe puts per level with the streams idle.
const IDLE_PROBES: u64 = 200;

/// Addresses of the drain cluster: dc1, then dc2.
pub const DRAIN_IPS: [&[&str]; 2] = [
    &["127.0.0.61", "127.0.0.62", "127.0.0.63"],
    &["127.0.0.71", "127.0.0.72", "127.0.0.73"],
];

const METRIC: &str = "geokv_hint_backlog_entries";

/// What to run.
#[derive(Debug, Clone)]
pub struct DrainOptions {
    pub exe: PathBuf,
    pub work_dir: PathBuf,
    pub durability: String,
    /// Inserts of the baseline (normal write throughput).
    pub baseline_keys: u64,
    /// Inserts written while dc1 and dc2 are cut apart.
    pub keys: u64,
    pub concurrency: usize,
    pub value_size: usize,
    /// Give up waiting for the backlog after this long.
    pub timeout: Duration,
    /// One-way delay (ms) set on every inter-DC link before the baseline.
    pub wan_delay_ms: u64,
    pub progress: bool,
}

/// What the scenario measured.
#[derive(Debug, Clone, Serialize)]
pub struct DrainReport {
    pub wan_delay_ms: u64,
    /// LOCAL_QUORUM inserts with every link up.
    pub baseline: PhaseReport,
    /// LOCAL_QUORUM inserts while dc1 and dc2 were cut apart.
    pub partitioned: PhaseReport,
    /// Entries queued for dc2 on each dc1 node when the links were healed.
    pub backlog_at_heal: BTreeMap<String, u64>,
    pub backlog_total: u64,
    /// Seconds from heal until the backlog first shrank.
    pub first_progress_secs: f64,
    /// Seconds from heal until every dc1 backlog was 0.
    pub drain_secs: f64,
    /// Entries per second, heal to empty.
    pub drain_rate: f64,
    /// Entries per second, first progress to empty.
    pub drain_rate_active: f64,
    /// `drain_rate` ÷ the baseline's write throughput.
    pub ratio_to_writes: f64,
    /// (seconds since heal, total backlog) at every poll.
    pub samples: Vec<(f64, u64)>,
    /// EACH_QUORUM probe puts (one at a time) with the streams idle.
    pub each_quorum_idle: LatencySummary,
    /// The same probe from heal until the backlog was empty.
    pub each_quorum_during_drain: LatencySummary,
    /// LOCAL_QUORUM probe puts (one at a time, coordinated in dc2) with the
    /// streams idle.
    pub local_quorum_idle: LatencySummary,
    /// The same probe from heal until the backlog was empty.
    pub local_quorum_during_drain: LatencySummary,
    /// Probe puts that failed (idle + during the drain).
    pub probe_errors: u64,
}

/// Runs the scenario.
pub async fn run_drain(opts: &DrainOptions) -> Result<DrainReport, BenchError> {
    let yaml = topology_yaml(
        "geokv-bench-drain",
        &[("dc1", DRAIN_IPS[0]), ("dc2", DRAIN_IPS[1])],
        3,
    );
    let levels = [ConsistencyLevel::EachQuorum];
    let mut started =
        start_cluster(&opts.exe, &opts.durability, &opts.work_dir, &yaml, &levels).await?;
    if opts.wan_delay_ms > 0 {
        started.cluster.set_wan_delay(opts.wan_delay_ms).await?;
    }
    let client = &started.client;
    let spec = RunSpec {
        workload: Workload::Insert,
        records: opts.baseline_keys,
        concurrency: opts.concurrency,
        value_size: opts.value_size,
        write_consistency: ConsistencyLevel::LocalQuorum,
        read_consistency: ConsistencyLevel::LocalQuorum,
        progress: opts.progress,
        ..RunSpec::default()
    };
    let baseline = runner::load(client, &spec, &Shared::new(&spec))
        .await
        .report;
    let cluster = &started.cluster;
    wait_empty(cluster, opts.timeout, |_, _| {}).await?;
    // The LOCAL_QUORUM probe runs in dc2, where the backlog is applied (its
    // own writes go to dc2's stream to dc1, not to the one being drained).
    let probes = Probes {
        each: client.clone(),
        local: dc_client(cluster, "dc2").await?,
    };
    let (idle_each, idle_local) = probes.idle().await;

    let cut_spec = RunSpec {
        records: opts.keys,
        first_record: opts.baseline_keys,
        ..spec
    };
    let (partitioned, backlog_at_heal) = write_partitioned(cluster, client, &cut_spec).await?;
    let backlog_total: u64 = backlog_at_heal.values().sum();
    cluster.set_dc_link("dc1", "dc2", false).await?;
    let drained = measure_drain(cluster, &probes, backlog_total, opts.timeout).await?;
    started.cluster.stop();

    let Drained {
        drain,
        first,
        samples,
        each: during_each,
        local: during_local,
    } = drained;
    let drain_rate = backlog_total as f64 / drain.as_secs_f64().max(f64::EPSILON);
    let active = (drain - first).as_secs_f64().max(f64::EPSILON);
    Ok(DrainReport {
        wan_delay_ms: opts.wan_delay_ms,
        ratio_to_writes: drain_rate / baseline.throughput.max(f64::EPSILON),
        baseline,
        partitioned,
        backlog_at_heal,
        backlog_total,
        first_progress_secs: first.as_secs_f64(),
        drain_secs: drain.as_secs_f64(),
        drain_rate,
        drain_rate_active: backlog_total as f64 / active,
        samples,
        probe_errors: idle_each.errors
            + during_each.errors
            + idle_local.errors
            + during_local.errors,
        each_quorum_idle: idle_each.summary(),
        each_quorum_during_drain: during_each.summary(),
        local_quorum_idle: idle_local.summary(),
        local_quorum_during_drain: during_local.summary(),
    })
}

/// Step (3): cuts every link between dc1 and dc2 and writes `spec`'s keys
/// from dc1; returns the phase and each dc1 node's backlog to dc2 then.
async fn write_partitioned(
    cluster: &LocalCluster,
    client: &Client,
    spec: &RunSpec,
) -> Result<(PhaseReport, BTreeMap<String, u64>), BenchError> {
    cluster.set_dc_link("dc1", "dc2", true).await?;
    let partitioned = runner::load(client, spec, &Shared::new(spec)).await.report;
    Ok((partitioned, backlogs(cluster).await?))
}

/// A client that coordinates in `dc` only.
async fn dc_client(cluster: &LocalCluster, dc: &str) -> Result<Client, BenchError> {
    let endpoints: Vec<String> = (cluster.nodes.iter())
        .filter(|n| n.dc == dc)
        .map(|n| format!("http://{}", n.client_address))
        .collect();
    Ok(Client::builder()
        .endpoints(endpoints)
        .local_datacenter(dc)
        .retries(0)
        .build()
        .await?)
}

/// The two probe clients: EACH_QUORUM from dc1, LOCAL_QUORUM in dc2.
struct Probes {
    each: Client,
    local: Client,
}

impl Probes {
    /// [`IDLE_PROBES`] puts of each probe, one after the other.
    async fn idle(&self) -> (Probe, Probe) {
        let (_, stop) = watch::channel(false);
        let each = ConsistencyLevel::EachQuorum;
        let local = ConsistencyLevel::LocalQuorum;
        let e = probe(
            self.each.clone(),
            each,
            "idle-eq",
            Some(IDLE_PROBES),
            stop.clone(),
        )
        .await;
        let l = probe(
            self.local.clone(),
            local,
            "idle-lq",
            Some(IDLE_PROBES),
            stop,
        )
        .await;
        (e, l)
    }
}

/// What happened from heal until the backlog was empty.
struct Drained {
    /// Heal to empty.
    drain: Duration,
    /// Heal to the first poll that saw the backlog shrink.
    first: Duration,
    samples: Vec<(f64, u64)>,
    each: Probe,
    local: Probe,
}

/// Runs both probes while polling the backlog until it is empty.
async fn measure_drain(
    cluster: &LocalCluster,
    probes: &Probes,
    backlog_total: u64,
    timeout: Duration,
) -> Result<Drained, BenchError> {
    let healed = Instant::now();
    let (stop, stop_rx) = watch::channel(false);
    let each = ConsistencyLevel::EachQuorum;
    let local = ConsistencyLevel::LocalQuorum;
    let each_task = tokio::spawn(probe(
        probes.each.clone(),
        each,
        "drain-eq",
        None,
        stop_rx.clone(),
    ));
    let local_task = tokio::spawn(probe(
        probes.local.clone(),
        local,
        "drain-lq",
        None,
        stop_rx,
    ));
    let mut samples = Vec::new();
    let mut first_progress = None;
    let waited = wait_empty(cluster, timeout, |at, total| {
        samples.push((at.as_secs_f64(), total));
        if first_progress.is_none() && total < backlog_total {
            first_progress = Some(at);
        }
    })
    .await;
    let drain = healed.elapsed();
    let _ = stop.send(true);
    let each = each_task.await.unwrap_or_else(|_| Probe::empty());
    let local = local_task.await.unwrap_or_else(|_| Probe::empty());
    waited?;
    Ok(Drained {
        drain,
        first: first_progress.unwrap_or(drain),
        samples,
        each,
        local,
    })
}

/// Latencies of probe puts.
struct Probe {
    hist: Histogram<u64>,
    errors: u64,
    elapsed: Duration,
}

impl Probe {
    fn empty() -> Self {
        Probe {
            hist: super::stats::histogram(),
            errors: 0,
            elapsed: Duration::ZERO,
        }
    }

    fn summary(&self) -> LatencySummary {
        LatencySummary::of(&self.hist, self.elapsed.as_secs_f64())
    }
}

/// Puts of fresh keys at `level`, one at a time, until `count` are done or
/// `stop` turns true.
async fn probe(
    client: Client,
    level: ConsistencyLevel,
    prefix: &'static str,
    count: Option<u64>,
    stop: watch::Receiver<bool>,
) -> Probe {
    let mut p = Probe::empty();
    let started = Instant::now();
    let mut i = 0u64;
    while !*stop.borrow() && count.is_none_or(|c| i < c) {
        let t = Instant::now();
        let put = client
            .put(format!("probe-{prefix}-{i}"), b"probe".to_vec())
            .consistency(level)
            .await;
        match put {
            Ok(_) => {
                let us = t.elapsed().as_micros() as u64;
                let _ = p.hist.record(us.max(1));
            }
            Err(_) => p.errors += 1,
        }
        i += 1;
    }
    p.elapsed = started.elapsed();
    p
}
