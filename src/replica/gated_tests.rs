//! Tests of [`Gated`]: movement's engine writes pass the replica's gate,
//! so the node's close waits for one in flight and refuses later ones.

use super::*;
use crate::engine::testing::Hooked;
use crate::engine::testing::Threads;
use crate::engine::{Limits, MemoryEngine};
use crate::replica::gate::Stuck;
use crate::replica::Replica;
use std::time::Duration;

/// A batch as a stream page writes it: a row's bytes and its cursor.
fn page() -> WriteBatch {
    let mut b = WriteBatch::new();
    b.put_raw(Cf::Meta, b"stream/cursor", b"after key-9");
    b
}

/// Issue 10/11: movement wrote to the engine without the gate the node's
/// close shuts, so a stream page or a cleanup queued on a blocking thread
/// could commit after the final sync and the clean-shutdown marker.
#[test]
fn a_write_after_the_close_is_refused_and_writes_nothing() {
    let engine: Arc<dyn Engine> = Arc::new(MemoryEngine::new(Limits::default()));
    let replica = Replica::new(engine.clone(), "dc1-n1", 8);
    let gated = replica.gated();
    gated.write(page()).expect("open: written");
    let mut other = WriteBatch::new();
    other.put_raw(Cf::Meta, b"cleanup", b"deletes");
    replica
        .close(Duration::from_secs(1))
        .expect("nothing inside");

    let refused = gated.write(other.clone());
    assert!(
        matches!(refused, Err(EngineError::Closed(_))),
        "{refused:?}"
    );
    let stalled = gated.write_unless_stalled(&other);
    assert!(
        matches!(stalled, Err(EngineError::Closed(_))),
        "{stalled:?}"
    );
    assert_eq!(engine.get_raw(Cf::Meta, b"cleanup").expect("read"), None);
    assert!(engine
        .get_raw(Cf::Meta, b"stream/cursor")
        .expect("read")
        .is_some());
}

/// A movement write inside the engine when the node closes is one of the
/// writes the close waits for: past the bound it is reported stuck (so the
/// clean-shutdown marker is skipped), and it completes once let go.
#[test]
fn the_close_counts_a_movement_write_in_flight() {
    let hooked = Arc::new(Hooked::new(Threads::new()));
    let engine: Arc<dyn Engine> = hooked.clone();
    let replica = Replica::new(engine, "dc1-n1", 8);
    let gated = replica.gated();
    let held = hooked.hold.lock();
    let writer = std::thread::spawn(move || gated.write(page()));
    for _ in 0..10_000 {
        if !hooked.writers.lock().is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(hooked.writers.lock().len(), 1, "the write is in the engine");

    let closed = replica.close(Duration::from_millis(50));
    assert!(matches!(closed, Err(Stuck { inside: 1, .. })), "{closed:?}");
    drop(held);
    writer.join().expect("joined").expect("written once let go");
}
