//! A decommission's gainer that loses its unsynced WAL tail mid-push
//! (review-elastic29 H1): the leaver's cursors are past pages the gainer
//! no longer holds, and the gainer's sync after its restart only makes
//! durable what it still has. The leaver notices the gainer's new
//! incarnation and pushes to it again, so every row of the leaver is on
//! its gainers after the switch.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::leave::{begin, finish, hand_over};
use super::push::{RangeSink, Synced};
use super::stream::{Progress, SourceError};
use super::tests_leave::check_every_member_holds_its_replicas;
use super::tests_ops::{small_pages, world};
use crate::engine::{Engine, WriteBatch};
use crate::version::SiblingSet;

/// A gainer's pages stay in its "unsynced tail" until a sync writes them to
/// its engine; [`Crashy::crash`] drops every tail and starts each gainer
/// under a new incarnation. Pushes fail once `fail_after` pages went.
struct Crashy {
    engines: BTreeMap<String, Arc<dyn Engine>>,
    tails: Mutex<BTreeMap<String, Vec<WriteBatch>>>,
    incarnations: Mutex<BTreeMap<String, u64>>,
    fail_after: Mutex<Option<usize>>,
    pages: AtomicUsize,
}

impl Crashy {
    fn crash(&self) {
        self.tails.lock().clear();
        for inc in self.incarnations.lock().values_mut() {
            *inc += 1;
        }
        *self.fail_after.lock() = None;
    }

    fn incarnation(&self, node: &str) -> u64 {
        *self.incarnations.lock().entry(node.into()).or_insert(1)
    }
}

impl RangeSink for Crashy {
    fn is_up(&self, _: &str) -> bool {
        true
    }

    async fn push(
        &self,
        node: &str,
        keyspace: &str,
        rows: Vec<(Vec<u8>, SiblingSet)>,
    ) -> Result<(), SourceError> {
        let limit = *self.fail_after.lock();
        if limit.is_some_and(|n| self.pages.load(Ordering::SeqCst) >= n) {
            return Err(SourceError {
                node: node.into(),
                detail: "connection refused".into(),
            });
        }
        let mut b = WriteBatch::new();
        for (k, s) in &rows {
            b.merge_versions(keyspace, k, s);
        }
        self.tails.lock().entry(node.into()).or_default().push(b);
        self.pages.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn sync(&self, node: &str) -> Result<Synced, SourceError> {
        let tail = self.tails.lock().remove(node).unwrap_or_default();
        for b in tail {
            self.engines[node].write(b).unwrap();
        }
        Ok(Synced::Durable {
            incarnation: self.incarnation(node),
        })
    }
}

#[tokio::test(start_paused = true)]
#[ignore = "review-elastic29 H1 open: the leaver trusts its cursors to a gainer that lost its unsynced tail (incarnation check not landed)"]
async fn a_gainer_that_lost_its_unsynced_tail_mid_push_is_pushed_to_again() {
    let w = world();
    begin(&w.layout, "a").await.unwrap();
    let sink = Crashy {
        engines: w.engines.clone(),
        tails: Mutex::default(),
        incarnations: Mutex::default(),
        fail_after: Mutex::new(Some(3)),
        pages: AtomicUsize::new(0),
    };
    let engine = w.engines["a"].clone();
    let (cfg, progress) = (small_pages(), Progress::default());
    let run = || hand_over(&w.layout, engine.clone(), &sink, "a", &cfg, &progress);
    // Three pages acknowledged, then the gainer goes down mid-push...
    run().await.unwrap_err();
    assert_eq!(sink.pages.load(Ordering::SeqCst), 3);
    // ...and comes back without its unsynced tail, as a new incarnation.
    sink.crash();
    run().await.unwrap();
    finish(&w.layout, &*engine, "a").await.unwrap();
    check_every_member_holds_its_replicas(&w, "a");
}
