//! Tests of [`Hints`]' seal: a node hint or anti-entropy record being
//! written holds the seal off until it is written, even when the request
//! that asked for it was cancelled meanwhile.
use super::*;
use crate::engine::memory::MemoryEngine;
use crate::engine::Limits;
use crate::version::{ActorId, CausalContext};
use std::time::Duration;

/// Hints of `d`, a node that has left (`hints::testing::layouts`).
fn leaver() -> Arc<Hints> {
    let (_, left) = crate::hints::testing::layouts();
    let cluster = Cluster::new(left, "d", None).expect("a view");
    let mut me = cluster.current().node("a").expect("a member").clone();
    me.id = "d".into();
    let engine: Arc<dyn Engine> = Arc::new(MemoryEngine::new(Limits::default()));
    let hints = Hints::open(engine, cluster, me, super::super::HintsConfig::default());
    Arc::new(hints.expect("open"))
}

/// One blocking thread, kept busy until the returned sender is dropped, so
/// a write handed to the blocking pool stays queued.
fn busy_runtime() -> (tokio::runtime::Runtime, std::sync::mpsc::Sender<()>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .max_blocking_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let (release, wait) = std::sync::mpsc::channel::<()>();
    rt.spawn_blocking(move || wait.recv());
    (rt, release)
}

/// Review of stop 23 (M1): the shared guard was held only while the caller
/// awaited the blocking write; a request cancelled with its write queued
/// let the seal through, and the write then landed in a store nobody
/// drains. The guard now travels with the write.
#[test]
fn a_cancelled_requests_queued_write_holds_the_seal_off_until_it_ran() {
    let (rt, release) = busy_runtime();
    rt.block_on(async {
        let hints = leaver();
        let dc2 = Dest::Dc("dc2".into());
        let mut set = SiblingSet::new();
        (set.update(ActorId(1), &CausalContext::new(), Some("v".into()), 1, 8))
            .expect("one sibling");
        let writes = [
            tokio::spawn({
                let (h, dc2) = (hints.clone(), dc2.clone());
                async move { h.record_for_repair("ks", b"late", &dc2).await }
            }),
            tokio::spawn({
                let (h, set) = (hints.clone(), set.clone());
                async move { h.hint_node("b", "ks", b"late", &set).await }
            }),
        ];
        tokio::time::sleep(Duration::from_millis(20)).await;
        for w in &writes {
            w.abort();
        }
        for w in writes {
            assert!(w.await.is_err_and(|e| e.is_cancelled()));
        }
        assert!(
            hints.open.try_write().is_err(),
            "the queued writes no longer hold the seal off"
        );
        drop(release);
        // Once they ran, the seal can be taken.
        let sealing = tokio::time::timeout(Duration::from_secs(10), hints.open.write());
        assert!(sealing.await.is_ok(), "the writes ran and let go");
    });
}
