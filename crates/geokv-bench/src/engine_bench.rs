//! `geokv bench engine`: ops/s of the engine's write and read paths, shaped
//! like RocksDB's `db_bench fillrandom,readrandom` (16-byte keys, 100-byte
//! values, uniformly random keys in `[0, ops)`, one op per batch, one thread)
//! so the two can be compared.
//!
//! Owns the benchmark workload and its report. Must not be run as a timed
//! test; the CLI calls [`run_engine_bench`].

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use geokv::engine::{Durability, Engine, EngineError, EngineOptions, RocksEngine, WriteBatch};
use geokv::version::{ActorId, CausalContext, SiblingSet};

const KEYSPACE: &str = "bench";

/// What to run.
#[derive(Debug, Clone)]
pub struct EngineBenchOptions {
    /// Scratch directory (removed afterwards); a fresh one under the system
    /// temp dir when `None`.
    pub dir: Option<PathBuf>,
    /// Ops per phase.
    pub ops: usize,
    /// Key size in bytes (at least 8).
    pub key_bytes: usize,
    /// Value size in bytes.
    pub value_bytes: usize,
    /// Durability of the fill and get phases.
    pub durability: Durability,
    /// Block cache bytes.
    pub block_cache_bytes: usize,
    /// Writer-thread counts for the `Sync` group-commit phase; empty skips it.
    pub group_commit_threads: Vec<usize>,
    /// Writes per row of the group-commit phase.
    pub group_commit_ops: usize,
    /// RNG seed.
    pub seed: u64,
}

impl Default for EngineBenchOptions {
    fn default() -> Self {
        EngineBenchOptions {
            dir: None,
            ops: 1_000_000,
            key_bytes: 16,
            value_bytes: 100,
            durability: Durability::default(),
            block_cache_bytes: EngineOptions::default().block_cache_bytes,
            group_commit_threads: vec![1, 4, 16, 64],
            group_commit_ops: 4000,
            seed: 42,
        }
    }
}

/// One measured phase.
#[derive(Debug, Clone)]
pub struct Phase {
    pub name: &'static str,
    pub ops: usize,
    pub secs: f64,
    /// Gets only: how many keys were found.
    pub found: Option<usize>,
}

impl Phase {
    /// Operations per second.
    pub fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.secs.max(f64::EPSILON)
    }
}

/// One row of the group-commit phase (`Durability::Sync`).
#[derive(Debug, Clone)]
pub struct GroupCommitRow {
    pub threads: usize,
    pub ops: usize,
    pub secs: f64,
    pub wal_syncs: u64,
}

/// The result of [`run_engine_bench`].
#[derive(Debug, Clone)]
pub struct EngineBenchReport {
    pub options: EngineBenchOptions,
    pub phases: Vec<Phase>,
    pub group_commit: Vec<GroupCommitRow>,
}

/// Runs the benchmark. Errors are engine errors (disk full, ...).
pub fn run_engine_bench(opts: EngineBenchOptions) -> Result<EngineBenchReport, EngineError> {
    let root = opts.dir.clone().unwrap_or_else(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        std::env::temp_dir().join(format!("geokv-engine-bench-{}-{nanos}", std::process::id()))
    });
    let result = run_in(&root, &opts);
    let _ = std::fs::remove_dir_all(&root);
    let (phases, group_commit) = result?;
    Ok(EngineBenchReport {
        options: opts,
        phases,
        group_commit,
    })
}

type Measured = (Vec<Phase>, Vec<GroupCommitRow>);

fn run_in(root: &std::path::Path, o: &EngineBenchOptions) -> Result<Measured, EngineError> {
    let open = |name: &str, durability: Durability| open_in(root, o, name, durability);
    let mut w = Workload::new(o);
    let mut phases = Vec::new();

    let engine = open("merge", o.durability)?;
    phases.push(w.timed("put: merge_versions (merge operator)", |w| {
        let (key, set) = w.next_write();
        let mut b = WriteBatch::new();
        b.merge_versions(KEYSPACE, &key, &set);
        engine.write(b).map(|_| false)
    })?);
    phases.push(w.timed("get: get_versions after merge fill", |w| {
        Ok(engine.get_versions(KEYSPACE, &w.next_key())?.is_some())
    })?);
    drop(engine);

    let engine = open("read-put", o.durability)?;
    phases.push(w.timed("put: get_versions + put_versions", |w| {
        let (key, set) = w.next_write();
        let merged = match engine.get_versions(KEYSPACE, &key)? {
            Some(mut old) => {
                old.merge(&set);
                old
            }
            None => set,
        };
        let mut b = WriteBatch::new();
        b.put_versions(KEYSPACE, &key, &merged);
        engine.write(b).map(|_| false)
    })?);
    phases.push(w.timed("get: get_versions after put fill", |w| {
        Ok(engine.get_versions(KEYSPACE, &w.next_key())?.is_some())
    })?);
    drop(engine);

    let rows = (o.group_commit_threads.iter())
        .map(|&threads| group_commit(root, o, threads))
        .collect::<Result<_, _>>()?;
    Ok((phases, rows))
}

fn open_in(
    root: &std::path::Path,
    o: &EngineBenchOptions,
    name: &str,
    durability: Durability,
) -> Result<RocksEngine, EngineError> {
    let opts = EngineOptions {
        durability,
        block_cache_bytes: o.block_cache_bytes,
        statistics: durability == Durability::Sync,
        ..EngineOptions::default()
    };
    RocksEngine::open(root.join(name), opts)
}

/// `threads` writers merging under Sync durability at once: how many WAL
/// syncs their writes shared.
fn group_commit(
    root: &std::path::Path,
    o: &EngineBenchOptions,
    threads: usize,
) -> Result<GroupCommitRow, EngineError> {
    let engine = Arc::new(open_in(
        root,
        o,
        &format!("sync-{threads}"),
        Durability::Sync,
    )?);
    let per_thread = (o.group_commit_ops / threads.max(1)).max(1);
    let before = engine.wal_syncs().unwrap_or(0);
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let engine = engine.clone();
            let mut w = Workload::new(&EngineBenchOptions {
                seed: o.seed + t as u64,
                ..o.clone()
            });
            std::thread::spawn(move || -> Result<(), EngineError> {
                for _ in 0..per_thread {
                    let (key, set) = w.next_write();
                    let mut b = WriteBatch::new();
                    b.merge_versions(KEYSPACE, &key, &set);
                    engine.write(b)?;
                }
                Ok(())
            })
        })
        .collect();
    for h in handles {
        h.join()
            .map_err(|_| EngineError::Backend("bench writer panicked".into()))??;
    }
    let secs = started.elapsed().as_secs_f64();
    let wal_syncs = engine.wal_syncs().unwrap_or(0) - before;
    Ok(GroupCommitRow {
        threads,
        ops: per_thread * threads,
        secs,
        wal_syncs,
    })
}

/// Key and value generator (db_bench style: a big-endian integer padded with '0').
struct Workload {
    rng: SmallRng,
    ops: usize,
    key_bytes: usize,
    value: Vec<u8>,
    actor: ActorId,
}

impl Workload {
    fn new(o: &EngineBenchOptions) -> Self {
        let mut rng = SmallRng::seed_from_u64(o.seed);
        let value = (0..o.value_bytes)
            .map(|_| rng.random_range(b' '..=b'~'))
            .collect();
        Workload {
            rng,
            ops: o.ops,
            key_bytes: o.key_bytes.max(8),
            value,
            actor: ActorId::from(1u64),
        }
    }

    fn next_key(&mut self) -> Vec<u8> {
        let n = self.rng.random_range(0..self.ops.max(1) as u64);
        let mut key = vec![b'0'; self.key_bytes];
        key[..8].copy_from_slice(&n.to_be_bytes());
        key
    }

    fn next_write(&mut self) -> (Vec<u8>, SiblingSet) {
        let key = self.next_key();
        let mut set = SiblingSet::default();
        let value = Bytes::copy_from_slice(&self.value);
        set.update(self.actor, &CausalContext::new(), Some(value), 0, 8)
            .expect("a first write into an empty set cannot exceed the sibling cap");
        (key, set)
    }

    /// Runs `op` `self.ops` times; `op` returns whether a get found its key.
    fn timed(
        &mut self,
        name: &'static str,
        mut op: impl FnMut(&mut Self) -> Result<bool, EngineError>,
    ) -> Result<Phase, EngineError> {
        let started = Instant::now();
        let mut found = 0;
        for _ in 0..self.ops {
            found += usize::from(op(self)?);
        }
        let secs = started.elapsed().as_secs_f64();
        let found = name.starts_with("get").then_some(found);
        Ok(Phase {
            name,
            ops: self.ops,
            secs,
            found,
        })
    }
}

impl fmt::Display for EngineBenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.options;
        writeln!(
            f,
            "engine bench: {} ops/phase, {}-byte keys, {}-byte values, durability {:?}, 1 thread",
            o.ops, o.key_bytes, o.value_bytes, o.durability
        )?;
        writeln!(
            f,
            "{:<40} {:>12} {:>10} {:>10}",
            "phase", "ops/s", "secs", "found"
        )?;
        for p in &self.phases {
            let found = p.found.map_or(String::new(), |n| n.to_string());
            writeln!(
                f,
                "{:<40} {:>12.0} {:>10.2} {:>10}",
                p.name,
                p.ops_per_sec(),
                p.secs,
                found
            )?;
        }
        if !self.group_commit.is_empty() {
            writeln!(f, "group commit (Durability::Sync, merge_versions):")?;
            writeln!(
                f,
                "{:>8} {:>8} {:>12} {:>10} {:>14}",
                "threads", "ops", "ops/s", "fsyncs", "writes/fsync"
            )?;
            for r in &self.group_commit {
                let per = r.ops as f64 / (r.wal_syncs.max(1)) as f64;
                let rate = r.ops as f64 / r.secs.max(f64::EPSILON);
                writeln!(
                    f,
                    "{:>8} {:>8} {:>12.0} {:>10} {:>14.1}",
                    r.threads, r.ops, rate, r.wal_syncs, per
                )?;
            }
        }
        Ok(())
    }
}
