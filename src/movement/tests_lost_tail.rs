//! A joiner that loses its unsynced WAL tail mid-stream (audit11 D2): its
//! cursors are synced past a key, then it acknowledges a write of that key
//! as a pending replica, then power fails. Resuming on its cursors it never
//! copies the key again and, after the switch, lacks a write a quorum
//! acknowledged; the start after such a loss forgets its pull cursors
//! (`node::storage`, [`cursor::forget_after_lost_tail`]) and the copy, run again from
//! the start, brings the write back from the losing owner.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::cursor;
use super::ops::{join, LayoutHandle};
use super::tests_loopback::write;
use super::tests_ops::{request, small_pages, source, world, World};
use crate::engine::testing::{Hooked, Hooks};
use crate::engine::{Engine, EngineError, MemoryEngine, WriteBatch};
use crate::ring::Ring;
use crate::version::CausalContext;

/// Every write since the last flush is in the "unsynced tail".
#[derive(Default)]
struct Tail {
    log: Mutex<Vec<WriteBatch>>,
    synced: AtomicUsize,
}

impl Hooks for Tail {
    fn before_write(&self, batch: &WriteBatch) -> Result<(), EngineError> {
        self.log.lock().push(batch.clone());
        Ok(())
    }
    fn after_flush(&self) {
        self.synced.store(self.log.lock().len(), Ordering::SeqCst);
    }
}

/// The engine as it comes back after a power loss: the synced writes only.
fn after_power_loss(tail: &Tail) -> Arc<dyn Engine> {
    let engine = MemoryEngine::default();
    for b in &tail.log.lock()[..tail.synced.load(Ordering::SeqCst)] {
        engine.write(b.clone()).unwrap();
    }
    Arc::new(engine)
}

/// The keys joiner `d` replicates once it is Normal that it lacks or holds
/// differently from `w.data`.
fn missing(w: &World, engine: &dyn Engine) -> Vec<Vec<u8>> {
    let ring = Ring::from_layout(&w.layout.current());
    let me = ring.node_by_id("d").unwrap().idx;
    (w.data.iter())
        .filter(|(k, _)| ring.replicas("ks", k).unwrap().contains(me))
        .filter(|(k, set)| engine.get_versions("ks", k).unwrap().as_ref() != Some(*set))
        .map(|(k, _)| k.clone())
        .collect()
}

/// Streams six pages into `d`, syncs (the periodic sync), has every
/// replica of a key `d` has streamed (its owners, and `d` as a pending
/// replica) acknowledge a new write, loses `d`'s unsynced tail, then
/// resumes the join (forgetting the pull cursors first if `forget`, as
/// the start after such a loss does); the keys `d` then misses.
async fn resume_after_power_loss(forget: bool) -> Vec<Vec<u8>> {
    let mut w = world();
    let lossy = Arc::new(Hooked::new(Tail::default()));
    let (req, cfg) = (request("d", 9), small_pages());
    let first = join(
        &w.layout,
        lossy.clone(),
        source(&w, Some(6)),
        &req,
        cfg,
        Arc::default(),
    );
    first.await.unwrap_err();
    lossy.flush().unwrap();
    let (key, mut set) = (w.data.iter())
        .find(|(k, _)| lossy.get_versions("ks", k).unwrap().is_some())
        .map(|(k, s)| (k.clone(), s.clone()))
        .expect("d streamed a key");
    write(2, &CausalContext::new(), Some("acked"), &mut set);
    let ring = Ring::from_layout(&w.layout.current());
    let mut b = WriteBatch::new();
    b.merge_versions("ks", &key, &set);
    for n in ring.replicas("ks", &key).unwrap().all() {
        w.engines[&ring.node(n).id].write(b.clone()).unwrap();
    }
    lossy.write(b).unwrap();
    w.data.insert(key.clone(), set.clone());

    let engine = after_power_loss(&lossy.hooks);
    assert_ne!(engine.get_versions("ks", &key).unwrap(), Some(set), "lost");
    if forget {
        assert!(
            cursor::forget_after_lost_tail(&*engine).unwrap(),
            "d had cursors"
        );
    }
    let again = join(
        &w.layout,
        engine.clone(),
        source(&w, None),
        &req,
        small_pages(),
        Arc::default(),
    );
    again.await.unwrap();
    missing(&w, &*engine)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joiner_that_lost_its_unsynced_tail_mid_stream_holds_every_acked_write() {
    let on_old_cursors = resume_after_power_loss(false).await;
    assert_eq!(
        on_old_cursors.len(),
        1,
        "the hazard: resumed past the acked write"
    );
    let missed = resume_after_power_loss(true).await;
    assert!(missed.is_empty(), "d misses {missed:?}");
}

/// review-cancel33 M1: a cancelled leave's `Done` push cursors (and the
/// gainer's recorded incarnation) come back when the forget of a
/// decommission begun again was in a lost WAL tail; resumed on them, the
/// leave would skip ranges the gainer dropped after the cancel. The start
/// after such a loss forgets push cursors as it forgets pulls. Fails
/// before: only the pull prefixes were deleted (`Done` read back).
#[test]
fn the_start_after_a_lost_tail_forgets_a_leaves_push_cursors_too() {
    use super::push::stream_id;
    use crate::ring::TokenRange;
    let engine = MemoryEngine::default();
    let (id, range) = (
        stream_id("dc1-n4", "dc1-n2"),
        TokenRange { start: 1, end: 9 },
    );
    let mut b = WriteBatch::new();
    cursor::save(&mut b, &id, "ks", range, &cursor::Cursor::Done);
    cursor::save_incarnation(&mut b, &id, cursor::Incarnation::Known(7));
    engine.write(b).unwrap();
    assert!(
        cursor::forget_after_lost_tail(&engine).unwrap(),
        "it had cursors"
    );
    let left = cursor::load(&engine, &id, "ks", range).unwrap();
    assert_eq!(left, cursor::Cursor::Start, "the push copies again");
    assert_eq!(cursor::load_incarnation(&engine, &id).unwrap(), None);
}
