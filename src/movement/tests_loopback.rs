//! The in-process range source the movement tests stream from: scans of
//! named engines, with sources that are down, that fail after some pages,
//! or whose pages take virtual time (per row, per round trip); and `write`, one sibling-set update.
//! Test-only; must not hold assertions.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;

use super::stream::{Page, RangeSource, SourceError};
use crate::engine::Engine;
use crate::ring::TokenRange;
use crate::version::{ActorId, CausalContext, SiblingSet};

/// Serves scans of named engines in-process.
#[derive(Default)]
pub(super) struct Loopback {
    pub(super) engines: BTreeMap<String, Arc<dyn Engine>>,
    pub(super) down: BTreeSet<String>,
    /// Pages served before every later scan fails (the sender "crashes").
    pub(super) fail_after: Option<usize>,
    /// Virtual time a page takes per row (with `tokio::time::pause`).
    pub(super) per_row: Duration,
    /// Virtual time every page takes on top (a WAN round trip).
    pub(super) round_trip: Duration,
    /// From this many pages served on, `round_trip` is this instead (the
    /// source gets loaded).
    pub(super) slower_after: Option<(usize, Duration)>,
    pub(super) pages: AtomicUsize,
    pub(super) rows_served: AtomicUsize,
    pub(super) limits: Mutex<Vec<u32>>,
}

impl RangeSource for Loopback {
    fn is_up(&self, node: &str) -> bool {
        !self.down.contains(node)
    }

    async fn scan(
        &self,
        node: &str,
        keyspace: &str,
        range: TokenRange,
        after: Option<Vec<u8>>,
        limit: u32,
    ) -> Result<Page, SourceError> {
        let err = |detail: &str| SourceError {
            node: node.into(),
            detail: detail.into(),
        };
        if self
            .fail_after
            .is_some_and(|n| self.pages.load(Ordering::SeqCst) >= n)
        {
            return Err(err("connection refused"));
        }
        let engine = self.engines.get(node).ok_or_else(|| err("unknown"))?;
        self.limits.lock().push(limit);
        let mut rows = engine
            .scan_token_range(
                keyspace,
                range.start,
                range.end,
                after.as_deref(),
                limit as usize + 1,
            )
            .map_err(|e| err(&e.to_string()))?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let served = self.pages.load(Ordering::SeqCst);
        let round_trip = match self.slower_after {
            Some((n, slower)) if served >= n => slower,
            _ => self.round_trip,
        };
        tokio::time::sleep(round_trip + self.per_row * rows.len() as u32).await;
        self.pages.fetch_add(1, Ordering::SeqCst);
        self.rows_served.fetch_add(rows.len(), Ordering::SeqCst);
        Ok(Page { rows, more })
    }
}

pub(super) fn write(actor: u64, ctx: &CausalContext, value: Option<&str>, set: &mut SiblingSet) {
    set.update(
        ActorId::from(actor),
        ctx,
        value.map(|v| Bytes::from(v.to_string())),
        1,
        64,
    )
    .unwrap();
}
