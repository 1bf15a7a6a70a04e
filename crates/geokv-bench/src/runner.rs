//! Runs a load phase (insert `records` keys) or a run phase (the workload's
//! mix) through the client SDK with `concurrency` tokio tasks, and returns
//! what they measured.
//!
//! Concurrency: every worker claims the next operation number from one atomic
//! counter (so an open-loop schedule is global, not per worker), keeps its own
//! [`Recorder`] and generator, and shares the context cache and the progress
//! bar. Must not decide how a cluster is started or reported.
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use parking_lot::Mutex;

use super::keys::key_name;
use super::schedule::Schedule;
use super::stats::{PhaseReport, Recorder};
use super::workload::{Distribution, Op, OpGenerator, OpKind, Workload};
use geokv::client::{code_name, CausalContext, Client, ClientError};
use geokv::consistency::ConsistencyLevel;

/// What to run.
#[derive(Debug, Clone)]
pub struct RunSpec {
    pub workload: Workload,
    pub distribution: Distribution,
    /// Keys inserted by the load phase (and the key space of the run phase).
    pub records: u64,
    /// Run-phase operations; with `duration` the first bound reached ends it.
    pub operations: Option<u64>,
    pub duration: Option<Duration>,
    /// Concurrent requests (tokio tasks).
    pub concurrency: usize,
    pub value_size: usize,
    /// Open loop at this many ops/s (run phase only); closed loop when `None`.
    pub target_rate: Option<f64>,
    pub read_consistency: ConsistencyLevel,
    pub write_consistency: ConsistencyLevel,
    /// Write updates without any causal context (pure YCSB blind writes; each
    /// becomes a sibling until a read-modify-write resolves it). By default an
    /// update carries the context of the last read or write of that key.
    pub blind_updates: bool,
    /// First record number the load phase inserts (lets a scenario write
    /// fresh keys into a loaded cluster).
    pub first_record: u64,
    pub seed: u64,
    /// Show a progress bar (only ever drawn when stderr is a terminal).
    pub progress: bool,
}

impl Default for RunSpec {
    fn default() -> Self {
        RunSpec {
            workload: Workload::A,
            distribution: Distribution::Zipfian,
            records: 10_000,
            operations: Some(10_000),
            duration: None,
            concurrency: 32,
            value_size: 100,
            target_rate: None,
            read_consistency: ConsistencyLevel::LocalQuorum,
            write_consistency: ConsistencyLevel::LocalQuorum,
            blind_updates: false,
            first_record: 0,
            seed: 42,
            progress: true,
        }
    }
}

/// A finished phase: its report and the merged histograms (for plots).
#[derive(Debug, Clone)]
pub struct PhaseOutcome {
    pub report: PhaseReport,
    pub recorder: Recorder,
}

/// Which phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Load,
    Run,
}

/// The latest causal context this process saw per record, in 64 shards.
/// Each shard is a plain mutex held for one map lookup or insert.
struct ContextCache {
    shards: Vec<Mutex<HashMap<u64, CausalContext>>>,
}

impl ContextCache {
    fn new() -> Self {
        ContextCache {
            shards: (0..64).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }
    fn get(&self, record: u64) -> Option<CausalContext> {
        self.shards[(record % 64) as usize]
            .lock()
            .get(&record)
            .cloned()
    }
    fn put(&self, record: u64, ctx: CausalContext) {
        self.shards[(record % 64) as usize]
            .lock()
            .insert(record, ctx);
    }
}

/// State the workers of one bench share.
pub struct Shared {
    /// Next operation number of the current phase.
    next: AtomicU64,
    /// Next record number an insert uses (= keys that exist, in-flight included).
    inserted: AtomicU64,
    contexts: ContextCache,
}

impl Shared {
    /// Fresh state for a bench over `spec`.
    pub fn new(spec: &RunSpec) -> Arc<Self> {
        Arc::new(Shared {
            next: AtomicU64::new(0),
            inserted: AtomicU64::new(spec.first_record + spec.records),
            contexts: ContextCache::new(),
        })
    }
}

/// Inserts records `first_record .. first_record + records`, closed loop.
pub async fn load(client: &Client, spec: &RunSpec, shared: &Arc<Shared>) -> PhaseOutcome {
    let load_spec = RunSpec {
        operations: Some(spec.records),
        duration: None,
        target_rate: None,
        ..spec.clone()
    };
    run_phase(client, &load_spec, shared, Phase::Load).await
}

/// Runs the workload's mix.
pub async fn run(client: &Client, spec: &RunSpec, shared: &Arc<Shared>) -> PhaseOutcome {
    run_phase(client, spec, shared, Phase::Run).await
}

async fn run_phase(
    client: &Client,
    spec: &RunSpec,
    shared: &Arc<Shared>,
    phase: Phase,
) -> PhaseOutcome {
    shared.next.store(0, Ordering::Relaxed);
    let bar = progress_bar(spec, phase);
    let schedule = Schedule::new(
        Instant::now(),
        spec.target_rate,
        spec.operations,
        spec.duration,
    );
    let workers: Vec<_> = (0..spec.concurrency.max(1))
        .map(|w| {
            let client = client.clone();
            let spec = spec.clone();
            let shared = shared.clone();
            let bar = bar.clone();
            tokio::spawn(async move { worker(client, spec, shared, bar, schedule, phase, w).await })
        })
        .collect();
    let mut merged = Recorder::new();
    for w in workers {
        match w.await {
            Ok(r) => merged.merge(&r),
            Err(e) => merged.record_error(&format!("WORKER_PANIC: {e}")),
        }
    }
    let elapsed = schedule.start().elapsed();
    bar.finish_and_clear();
    PhaseOutcome {
        report: merged.summarize(elapsed),
        recorder: merged,
    }
}

fn progress_bar(spec: &RunSpec, phase: Phase) -> ProgressBar {
    let target = if spec.progress {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let name = match phase {
        Phase::Load => "load",
        Phase::Run => "run",
    };
    let bar = match spec.operations {
        Some(n) => ProgressBar::with_draw_target(Some(n), target).with_style(
            ProgressStyle::with_template(
                "{prefix:>4} [{elapsed_precise}] {wide_bar} {pos}/{len} ({per_sec}, eta {eta})",
            )
            .expect("static template"),
        ),
        None => ProgressBar::with_draw_target(None, target).with_style(
            ProgressStyle::with_template(
                "{prefix:>4} [{elapsed_precise}] {spinner} {pos} ops ({per_sec})",
            )
            .expect("static template"),
        ),
    };
    bar.set_prefix(name);
    bar
}

async fn worker(
    client: Client,
    spec: RunSpec,
    shared: Arc<Shared>,
    bar: ProgressBar,
    schedule: Schedule,
    phase: Phase,
    index: usize,
) -> Recorder {
    let mut rec = Recorder::new();
    let mut gen = OpGenerator::new(
        spec.workload,
        spec.distribution,
        spec.seed.wrapping_add(index as u64 * 7919),
    );
    let value = gen.value(spec.value_size);
    loop {
        let i = shared.next.fetch_add(1, Ordering::Relaxed);
        if !schedule.admits(i, Instant::now()) {
            break;
        }
        if let Some(at) = schedule.intended(i) {
            tokio::time::sleep_until(at.into()).await;
        }
        let origin = schedule.latency_origin(i, Instant::now());
        let op = match phase {
            Phase::Load => Op {
                kind: OpKind::Insert,
                record: spec.first_record + i,
            },
            Phase::Run => {
                let mut op = gen.next_op(shared.inserted.load(Ordering::Relaxed));
                if op.kind == OpKind::Insert {
                    op.record = shared.inserted.fetch_add(1, Ordering::Relaxed);
                }
                op
            }
        };
        let result = execute(&client, &spec, &shared, op, &value).await;
        let done = Instant::now();
        match result {
            Ok(read) => {
                rec.record_ok(op.kind, done - origin, done - schedule.start());
                if let Some((siblings, absent)) = read {
                    rec.record_read(siblings, absent);
                }
            }
            Err(e) => rec.record_error(code_name(e.code())),
        }
        bar.inc(1);
    }
    rec
}

/// Runs one operation; for reads returns (siblings, absent).
async fn execute(
    client: &Client,
    spec: &RunSpec,
    shared: &Shared,
    op: Op,
    value: &[u8],
) -> Result<Option<(usize, bool)>, ClientError> {
    let key = key_name(op.record);
    let cache = &shared.contexts;
    match op.kind {
        OpKind::Read => {
            let read = client.get(&key).consistency(spec.read_consistency).await?;
            cache.put(op.record, read.context.clone());
            Ok(Some((read.siblings.len(), read.is_absent())))
        }
        OpKind::Update | OpKind::Insert => {
            let mut put = client
                .put(&key, value.to_vec())
                .consistency(spec.write_consistency);
            let known = if spec.blind_updates && op.kind == OpKind::Update {
                None
            } else {
                cache.get(op.record)
            };
            if let Some(ctx) = &known {
                put = put.context(ctx);
            }
            let written = put.await?;
            if !spec.blind_updates {
                cache.put(op.record, written.context);
            }
            Ok(None)
        }
        OpKind::ReadModifyWrite => {
            let read = client.get(&key).consistency(spec.read_consistency).await?;
            let seen = (read.siblings.len(), read.is_absent());
            let written = client
                .put(&key, value.to_vec())
                .context(&read.context)
                .consistency(spec.write_consistency)
                .await?;
            cache.put(op.record, written.context);
            Ok(Some(seen))
        }
    }
}
