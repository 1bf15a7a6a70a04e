//! A joiner removed while it streams (review-elastic28 L1): a joiner that
//! comes back on its persisted Joining layout starts streaming before
//! gossip brings the version that removed it; it checks its state between
//! ranges and stops with the final error naming the removal, instead of
//! copying its whole plan first.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::ops::{join, LayoutHandle};
use super::plan::gains;
use super::stream::{Page, Progress, RangeSource, SourceError};
use super::tests_loopback::Loopback;
use super::tests_ops::{request, small_pages, world, Fake};
use crate::engine::{Engine, MemoryEngine};
use crate::layout::{Layout, NodeState};
use crate::ring::TokenRange;

/// Serves `inner`'s pages; once it has served `after` of them, installs
/// `removed` (gossip bringing the removal to the joiner).
struct RemovedMidway<'a> {
    inner: Loopback,
    layout: &'a Fake,
    removed: Arc<Layout>,
    after: usize,
}

impl RangeSource for RemovedMidway<'_> {
    fn is_up(&self, node: &str) -> bool {
        self.inner.is_up(node)
    }

    async fn scan(
        &self,
        node: &str,
        keyspace: &str,
        range: TokenRange,
        after: Option<Vec<u8>>,
        limit: u32,
    ) -> Result<Page, SourceError> {
        let page = self.inner.scan(node, keyspace, range, after, limit).await;
        if self.inner.pages.load(Ordering::SeqCst) >= self.after {
            *self.layout.0.lock() = self.removed.clone();
        }
        page
    }
}

#[tokio::test]
async fn a_joiner_removed_mid_stream_stops_before_its_next_range() {
    let w = world();
    let req = request("d", 9);
    let now = w.layout.current();
    let tokens = crate::ring::allocate_tokens(&now, "dc1", "r1", 16, 2).unwrap();
    let begun = now
        .begin_join(req.node.clone(), "dc1", "r1", &tokens)
        .unwrap();
    let removed = super::remove::begin(&begun, "d", &|_| false).unwrap();
    assert_eq!(removed.node("d").unwrap().2.state, NodeState::Removed);
    w.layout.propose(begun.clone()).await.unwrap();
    let ranges = gains(&begun, "d").unwrap().len() as u64;
    assert!(ranges > 2, "{ranges} ranges");
    let source = RemovedMidway {
        inner: Loopback {
            engines: w.engines.clone(),
            ..Loopback::default()
        },
        layout: &w.layout,
        removed: Arc::new(removed.clone()),
        after: 1,
    };
    let progress = Arc::new(Progress::default());
    let engine: Arc<dyn Engine> = Arc::new(MemoryEngine::default());
    let run = join(
        &w.layout,
        engine,
        source,
        &req,
        small_pages(),
        progress.clone(),
    );
    let err = run.await.unwrap_err();
    assert!(err.is_final(), "{err}");
    assert!(err.to_string().contains("removenode d"), "{err}");
    let done = progress.snapshot().ranges_done;
    assert!(
        done <= 1,
        "{done} of {ranges} ranges streamed after the removal"
    );
    assert_eq!(*w.layout.current(), removed, "nothing proposed");
}
