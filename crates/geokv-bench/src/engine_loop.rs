//! The floor of the comparison: the same workload mix, key names and value
//! size run in-process against a [`RocksEngine`], one thread, no network,
//! no replication. Writes are merge operands (what a replica applies),
//! reads are `get_versions`; a read-modify-write is both.
//!
//! Owns a scratch engine under a caller-given directory. Must not be run as
//! a timed test.
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::keys::key_name;
use super::runner::{PhaseOutcome, RunSpec};
use super::stats::Recorder;
use super::workload::{OpGenerator, OpKind};
use geokv::engine::{Durability, Engine, EngineError, EngineOptions, RocksEngine, WriteBatch};
use geokv::version::{ActorId, CausalContext, SiblingSet};

const KEYSPACE: &str = "default";

/// Loads `spec.records` keys, then runs `spec.operations` of the mix (or
/// for `spec.duration`), closed loop. Returns the run phase.
pub fn run_engine_workload(
    dir: &Path,
    spec: &RunSpec,
    durability: Durability,
) -> Result<PhaseOutcome, EngineError> {
    let engine = RocksEngine::open(
        dir,
        EngineOptions {
            durability,
            ..EngineOptions::default()
        },
    )?;
    let mut gen = OpGenerator::new(spec.workload, spec.distribution, spec.seed);
    let value = Bytes::from(gen.value(spec.value_size));
    let record = versions(&value);
    for n in 0..spec.records {
        write(&engine, n, &record)?;
    }
    let mut existing = spec.records;
    let mut rec = Recorder::new();
    let start = Instant::now();
    let end = spec.duration.map(|d| start + d);
    let mut i = 0u64;
    while spec.operations.is_none_or(|n| i < n) && end.is_none_or(|e| Instant::now() < e) {
        let mut op = gen.next_op(existing);
        let t0 = Instant::now();
        match op.kind {
            OpKind::Read => {
                let found = engine.get_versions(KEYSPACE, key_name(op.record).as_bytes())?;
                let n = found.as_ref().map_or(0, |s| s.len());
                rec.record_read(n, n == 0);
            }
            OpKind::Update => write(&engine, op.record, &record)?,
            OpKind::Insert => {
                op.record = existing;
                existing += 1;
                write(&engine, op.record, &record)?;
            }
            OpKind::ReadModifyWrite => {
                let found = engine.get_versions(KEYSPACE, key_name(op.record).as_bytes())?;
                rec.record_read(found.as_ref().map_or(0, |s| s.len()), found.is_none());
                write(&engine, op.record, &record)?;
            }
        }
        let done = Instant::now();
        rec.record_ok(op.kind, done - t0, done - start);
        i += 1;
    }
    let elapsed: Duration = start.elapsed();
    Ok(PhaseOutcome {
        report: rec.summarize(elapsed),
        recorder: rec,
    })
}

fn versions(value: &Bytes) -> SiblingSet {
    let mut set = SiblingSet::default();
    set.update(
        ActorId::from(1u64),
        &CausalContext::new(),
        Some(value.clone()),
        0,
        8,
    )
    .expect("a first write into an empty set cannot exceed the sibling cap");
    set
}

fn write(engine: &RocksEngine, record: u64, set: &SiblingSet) -> Result<(), EngineError> {
    let mut b = WriteBatch::new();
    b.merge_versions(KEYSPACE, key_name(record).as_bytes(), set);
    engine.write(b)
}
