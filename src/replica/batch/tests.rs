//! A batch of peer writes is one engine write (one WAL sync under
//! `Durability::Sync`); a write refused by its own checks is left out
//! whole and answered on its own, the rest are applied.

use super::*;
use crate::engine::memory::MemoryEngine;
use crate::engine::{incarnation, Cf, Engine, EngineError, Limits, RawEntry};
use crate::version::{ActorId, CausalContext};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The memory engine, counting writes.
struct Counting(MemoryEngine, AtomicUsize);

impl Engine for Counting {
    fn write(&self, batch: WriteBatch) -> Result<(), EngineError> {
        self.1.fetch_add(1, Ordering::SeqCst);
        self.0.write(batch)
    }
    fn get_versions(&self, ks: &str, key: &[u8]) -> Result<Option<SiblingSet>, EngineError> {
        self.0.get_versions(ks, key)
    }
    fn get_raw(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        self.0.get_raw(cf, key)
    }
    fn scan_raw(&self, cf: Cf, f: &[u8], t: &[u8], n: usize) -> Result<Vec<RawEntry>, EngineError> {
        self.0.scan_raw(cf, f, t, n)
    }
    fn scan_token_range(
        &self,
        ks: &str,
        s: u64,
        e: u64,
        after: Option<&[u8]>,
        n: usize,
    ) -> Result<Vec<(Vec<u8>, SiblingSet)>, EngineError> {
        self.0.scan_token_range(ks, s, e, after, n)
    }
    fn limits(&self) -> &Limits {
        self.0.limits()
    }
    fn flush(&self) -> Result<(), EngineError> {
        self.0.flush()
    }
    fn incarnation(&self) -> &incarnation::Current {
        self.0.incarnation()
    }
}

fn set(value_len: usize) -> SiblingSet {
    let mut s = SiblingSet::default();
    let v = Some(bytes::Bytes::from(vec![7u8; value_len]));
    (s.update(
        ActorId::from_node_id("n9"),
        &CausalContext::default(),
        v,
        1,
        8,
    ))
    .expect("an update");
    s
}

#[test]
fn a_batch_is_one_engine_write_and_a_refused_entry_is_left_out_whole() {
    let limits = Limits {
        max_value_bytes: 100,
        ..Limits::default()
    };
    let engine = Arc::new(Counting(MemoryEngine::new(limits), AtomicUsize::new(0)));
    let replica = Replica::new(engine.clone(), "n1", 8);
    let (small, big) = (set(10), set(500));
    let long = "x".repeat(300);
    let writes: Vec<BatchWrite<'_>> = vec![
        ("ks", b"a", &small),
        ("ks", b"b", &big),
        ("ks", b"c", &small),
        (&long, b"d", &small),
    ];
    let (checks, write) = replica.apply_all(&writes);
    write.expect("the engine write");
    assert!(checks[0].is_ok() && checks[2].is_ok(), "{checks:?}");
    let too_large = checks[1].as_ref().expect_err("over the value limit");
    assert!(too_large.nothing_applied(), "{too_large:?}");
    assert_eq!(engine.1.load(Ordering::SeqCst), 1, "one engine write");
    assert!(replica.read("ks", b"a").unwrap().is_some());
    assert!(replica.read("ks", b"c").unwrap().is_some());
    assert!(replica.read("ks", b"b").unwrap().is_none(), "never written");
    assert!(checks[3].is_err(), "a keyspace name the engine refuses");
}

#[test]
fn a_closed_replica_applies_nothing() {
    let engine = Arc::new(Counting(
        MemoryEngine::new(Limits::default()),
        AtomicUsize::new(0),
    ));
    let replica = Replica::new(engine.clone(), "n1", 8);
    replica.close();
    let s = set(10);
    let (checks, _) = replica.apply_all(&[("ks", b"a", &s)]);
    assert!(
        matches!(checks[0], Err(GeokvError::ShuttingDown)),
        "{checks:?}"
    );
    assert_eq!(engine.1.load(Ordering::SeqCst), 0);
}
