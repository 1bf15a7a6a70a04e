//! A batch of peer writes is one engine write (one WAL sync under
//! `Durability::Sync`); a write refused by its own checks is left out
//! whole and answered on its own, the rest are applied.

use super::*;
use crate::engine::testing::{Hooked, Hooks};
use crate::engine::{EngineError, Limits};
use crate::version::{ActorId, CausalContext};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Counts the engine's writes.
struct Counting(AtomicUsize);

impl Hooks for Counting {
    fn before_write(&self, _: &WriteBatch) -> Result<(), EngineError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
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
    let engine = Arc::new(Hooked::with_limits(limits, Counting(AtomicUsize::new(0))));
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
    assert_eq!(engine.0.load(Ordering::SeqCst), 1, "one engine write");
    assert!(replica.read("ks", b"a").unwrap().is_some());
    assert!(replica.read("ks", b"c").unwrap().is_some());
    assert!(replica.read("ks", b"b").unwrap().is_none(), "never written");
    assert!(checks[3].is_err(), "a keyspace name the engine refuses");
}

#[test]
fn a_closed_replica_applies_nothing() {
    let engine = Arc::new(Hooked::new(Counting(AtomicUsize::new(0))));
    let replica = Replica::new(engine.clone(), "n1", 8);
    replica
        .close(crate::replica::gate::CLOSE_WITHIN)
        .expect("closed");
    let s = set(10);
    let (checks, _) = replica.apply_all(&[("ks", b"a", &s)]);
    assert!(
        matches!(checks[0], Err(GeokvError::ShuttingDown)),
        "{checks:?}"
    );
    assert_eq!(engine.0.load(Ordering::SeqCst), 0);
}
