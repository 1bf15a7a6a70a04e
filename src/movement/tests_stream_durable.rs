//! A stream's end makes what it copied durable (review-abort27 L3): a
//! movement past its switch of reads does not copy again, so its copy must
//! not sit in an unsynced WAL tail when the switch is proposed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::plan::Gain;
use super::stream::{StreamConfig, Streamer};
use super::tests_loopback::{write, Loopback};
use crate::engine::testing::{Hooked, Hooks};
use crate::engine::{Engine, MemoryEngine, WriteBatch};
use crate::ring::TokenRange;
use crate::version::{CausalContext, SiblingSet};

/// Counts writes, and the writes done when the last flush ran.
#[derive(Default)]
struct Syncs {
    writes: AtomicUsize,
    synced_at: Mutex<Option<usize>>,
}

impl Hooks for Syncs {
    fn after_write(&self) {
        self.writes.fetch_add(1, Ordering::SeqCst);
    }
    fn after_flush(&self) {
        *self.synced_at.lock() = Some(self.writes.load(Ordering::SeqCst));
    }
}

/// Under periodic durability a page is in the WAL, not on disk, when its
/// batch returns: an OS crash after the switch lost the tail that the
/// resumed movement then skipped. The stream syncs after its last page.
#[tokio::test]
async fn a_stream_syncs_what_it_copied_after_its_last_page() {
    let src: Arc<dyn Engine> = Arc::new(MemoryEngine::default());
    let mut batch = WriteBatch::new();
    for i in 0..200 {
        let mut set = SiblingSet::new();
        write(1, &CausalContext::new(), Some(&format!("v{i}")), &mut set);
        batch.merge_versions("ks", format!("key-{i}").as_bytes(), &set);
    }
    src.write(batch).unwrap();
    let dst = Arc::new(Hooked::new(Syncs::default()));
    let source = Loopback {
        engines: [("a".to_string(), src)].into(),
        ..Loopback::default()
    };
    let gains = vec![Gain {
        keyspace: "ks".into(),
        range: TokenRange::new(0, u64::MAX / 2),
        sources: vec!["a".into()],
        losing: vec![],
    }];
    let engine: Arc<dyn Engine> = dst.clone();
    let streamer = Streamer::new(engine, source, "join-x", StreamConfig::default());
    streamer.run(&gains).await.unwrap();
    let writes = dst.writes.load(Ordering::SeqCst);
    assert!(writes > 0, "the stream wrote pages");
    assert_eq!(
        *dst.synced_at.lock(),
        Some(writes),
        "synced after the last page"
    );
}
