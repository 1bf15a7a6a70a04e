//! Pushing ranges away: a leaving node copies each range it loses from its
//! own engine to every node that gains it, page by page, resumably.
//!
//! Owns [`RangeSink`] (where the rows go: a peer's `ReplicaWrite` in
//! production, [`PeerSink`]; engines in tests) and [`push_losses`]. The
//! leaver is the strict source of every range it loses (it is the only
//! owner losing it), so the gainers get every write it acknowledged. Each
//! page is sent as merges (idempotent: a write that reached the gainer
//! meanwhile survives) and only then is the range's cursor committed in the
//! leaver's meta column family ([`super::cursor`], one stream id per
//! gainer): after a crash of the leaver, or of a gainer that kept what it
//! acknowledged, the push resumes after the last page the gainer
//! acknowledged; a gainer that may have lost its unsynced tail (a new
//! incarnation) is pushed to from the start ([`super::push_sync`]). A
//! decommission's cursor is committed only while its leave is the latest
//! ([`LeaveEpoch`]): once a new leave is accepted a pass of the earlier one
//! ends [`StreamError::Superseded`] and lands no cursor. Must not decide
//! which ranges move or when the leave finishes.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::cursor::{self, Cursor};
use super::plan::Loss;
use super::push_sync;
use super::rate::{Rate, Rates};
use super::stream::{Progress, SourceError, StreamConfig, StreamError};
use crate::engine::{Engine, WriteBatch};
use crate::version::SiblingSet;

/// Where a leaver's rows go.
pub trait RangeSink: Send + Sync {
    /// Whether `node` is believed up (a down one is waited for, not asked).
    fn is_up(&self, node: &str) -> bool;

    /// Merges `rows` of `keyspace` into `node`'s copies; `Ok` once `node`
    /// applied them all durably.
    fn push(
        &self,
        node: &str,
        keyspace: &str,
        rows: Vec<(Vec<u8>, SiblingSet)>,
    ) -> impl Future<Output = Result<(), SourceError>> + Send;

    /// Makes everything `node` acknowledged durable (its WAL synced) and
    /// tells the incarnation it took it under.
    fn sync(&self, node: &str) -> impl Future<Output = Result<Synced, SourceError>> + Send;
}

pub use super::push_sync::Synced;

/// The stream id of the push of `leaver`'s ranges to `gainer`.
pub fn stream_id(leaver: &str, gainer: &str) -> String {
    format!("{}{leaver}-to-{gainer}", cursor::LEAVE)
}

/// Pushes every range of `losses` from `engine` (the leaver `me`'s) to each
/// of its new owners through `sink`, resuming after committed cursors
/// while the gainer is the incarnation they were pushed into, then has
/// every gainer sync what it took ([`super::push_sync`]): `Ok` means the
/// switch may be proposed.
pub async fn push_losses<S: RangeSink>(
    engine: Arc<dyn Engine>,
    sink: &S,
    me: &str,
    losses: &[Loss],
    cfg: &StreamConfig,
    progress: &Progress,
) -> Result<(), StreamError> {
    let total = losses.iter().map(|l| l.new_owners.len() as u64).sum();
    progress.begin(total);
    let run = Run {
        engine: &engine,
        sink,
        me,
        losses,
        cfg,
        progress,
    };
    let gainers: BTreeSet<&str> = (losses.iter())
        .flat_map(|l| l.new_owners.iter().map(String::as_str))
        .collect();
    // The incarnation each gainer takes its pages into (review-elastic29 H1).
    let mut into = Vec::new();
    for gainer in gainers {
        into.push((gainer, push_sync::check_in(&run, gainer).await?));
    }
    // One rate per gainer: each is judged against its own fastest page.
    let mut rates = Rates::new(cfg.rate.clone());
    let mut moved = BTreeSet::new();
    for loss in losses {
        for gainer in &loss.new_owners {
            if run.push_range(gainer, loss, rates.of(gainer)).await? {
                moved.insert(gainer.as_str());
            }
            progress.range_done();
        }
    }
    for (gainer, at) in into {
        let moved = moved.contains(gainer);
        push_sync::settle(&run, gainer, at, moved, &mut rates).await?;
    }
    Ok(())
}

/// One push of a leaver's losses, shared by its steps.
pub(super) struct Run<'a, S> {
    pub(super) engine: &'a Arc<dyn Engine>,
    pub(super) sink: &'a S,
    pub(super) me: &'a str,
    pub(super) losses: &'a [Loss],
    pub(super) cfg: &'a StreamConfig,
    pub(super) progress: &'a Progress,
}

impl<S: RangeSink> Run<'_, S> {
    /// Pushes every range `gainer` gains from its cursor on (all of them
    /// once its cursors were forgotten).
    pub(super) async fn push_to(&self, gainer: &str, rate: &mut Rate) -> Result<(), StreamError> {
        let mine = self
            .losses
            .iter()
            .filter(|l| l.new_owners.iter().any(|g| g == gainer));
        for loss in mine {
            self.push_range(gainer, loss, rate).await?;
        }
        Ok(())
    }

    /// Pushes `loss`'s range to `gainer`, from its cursor on; whether any
    /// page was left to push.
    async fn push_range(
        &self,
        gainer: &str,
        loss: &Loss,
        rate: &mut Rate,
    ) -> Result<bool, StreamError> {
        let (engine, cfg) = (self.engine, self.cfg);
        let id = stream_id(self.me, gainer);
        let (ks, range) = (loss.keyspace.clone(), loss.range);
        let mut at = {
            let (e, id, ks) = (engine.clone(), id.clone(), ks.clone());
            blocking(move || Ok(cursor::load(&*e, &id, &ks, range)?)).await?
        };
        let moved = at != Cursor::Done;
        let mut failures = 0u32;
        let mut last = String::new();
        while at != Cursor::Done {
            if failures > 0 {
                if failures >= cfg.max_rounds {
                    return Err(StreamError::NoSource {
                        keyspace: ks,
                        range,
                        rounds: failures,
                        last,
                    });
                }
                tokio::time::sleep(cfg.round_backoff).await;
            }
            if !self.sink.is_up(gainer) {
                failures += 1;
                last = format!("{gainer}: believed down");
                continue;
            }
            let (page, next) = next_page(engine, &ks, range, &at, rate.rows() as usize).await?;
            let (keys, bytes) = (
                page.len() as u64,
                page.iter()
                    .map(|(k, s)| (k.len() + s.encoded_len()) as u64)
                    .sum::<u64>(),
            );
            let began = tokio::time::Instant::now();
            match self.sink.push(gainer, &ks, page).await {
                Ok(()) => {
                    rate.on_page(began.elapsed(), keys as u32);
                    failures = 0;
                    let epoch = cfg.epoch.clone();
                    save_cursor(engine, &id, (&ks, range), &next, epoch).await?;
                    self.progress.add(keys, bytes);
                    at = next;
                    cfg.throughput.moved(bytes).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, ?range, "push page failed; retrying");
                    rate.on_error();
                    failures += 1;
                    last = e.to_string();
                }
            }
            if rate.pause() > Duration::ZERO {
                tokio::time::sleep(rate.pause()).await;
            }
        }
        Ok(moved)
    }
}

/// The page of `keyspace`'s rows in `range` after `at` (at most `limit`),
/// read on a blocking thread, and the cursor after it.
async fn next_page(
    engine: &Arc<dyn Engine>,
    keyspace: &str,
    range: crate::ring::TokenRange,
    at: &Cursor,
    limit: usize,
) -> Result<(Vec<(Vec<u8>, SiblingSet)>, Cursor), StreamError> {
    let after = match at {
        Cursor::After(k) => Some(k.clone()),
        _ => None,
    };
    let (e, ks) = (engine.clone(), keyspace.to_string());
    let rows = blocking(move || {
        Ok(e.scan_token_range(&ks, range.start, range.end, after.as_deref(), limit + 1)?)
    })
    .await?;
    let more = rows.len() > limit;
    let page: Vec<_> = rows.into_iter().take(limit).collect();
    let next = match (more, page.last()) {
        (true, Some((k, _))) => Cursor::After(k.clone()),
        _ => Cursor::Done,
    };
    Ok((page, next))
}

/// The leave a push belongs to (review-final33 L5, review-cancel33 L2):
/// the node's leave count (`Control`'s, bumped by each decommission begun)
/// and this leave's. A cursor is written while the count reads this
/// leave's, under the count's read lock, so once a later leave bumps it
/// (the write lock) no cursor of this one lands: a pass dropped with its
/// write in flight cannot save `Done` after the new leave's forget.
#[derive(Clone, Debug)]
pub struct LeaveEpoch {
    pub count: tokio::sync::watch::Receiver<u64>,
    pub mine: u64,
}

/// Commits stream `id`'s cursor of `keyspace`'s `range`, on a blocking
/// thread; [`StreamError::Superseded`] once `epoch`'s leave is not the
/// latest.
async fn save_cursor(
    engine: &Arc<dyn Engine>,
    id: &str,
    (keyspace, range): (&str, crate::ring::TokenRange),
    at: &Cursor,
    epoch: Option<LeaveEpoch>,
) -> Result<(), StreamError> {
    let (e, id, ks, at) = (
        engine.clone(),
        id.to_string(),
        keyspace.to_string(),
        at.clone(),
    );
    blocking(move || {
        let mut batch = WriteBatch::new();
        cursor::save(&mut batch, &id, &ks, range, &at);
        let Some(epoch) = epoch else {
            return Ok(e.write(batch)?);
        };
        let count = epoch.count.borrow();
        if *count != epoch.mine {
            return Err(StreamError::Superseded);
        }
        Ok(e.write(batch)?)
    })
    .await
}

/// Forgets the push cursors of `leaver` to each of `gainers`, in one
/// write run on the engine's call site ([`cursor::forget_all`]).
pub async fn forget(
    engine: &Arc<dyn Engine>,
    leaver: &str,
    gainers: impl IntoIterator<Item = String>,
) -> Result<(), StreamError> {
    let ids = gainers.into_iter().map(|g| stream_id(leaver, &g));
    cursor::forget_all(engine, ids).await
}

/// Runs `f` on the blocking pool (the engine's call site), for the
/// streams' scans, flushes and cursor writes.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StreamError> + Send + 'static,
) -> Result<T, StreamError> {
    crate::engine::CallSite::BlockingPool
        .run(f)
        .await
        .map_err(|e| StreamError::Task(e.to_string()))?
}

/// The production sink: the gainer's `ReplicaWrite`, a page's rows at once.
pub struct PeerSink {
    pub peers: Arc<crate::transport::Peers>,
    pub resolve: Arc<super::peer::Resolve>,
    pub timeout: Duration,
}

impl RangeSink for PeerSink {
    fn is_up(&self, node: &str) -> bool {
        (self.resolve)(node).is_some_and(|(_, up)| up)
    }

    async fn push(
        &self,
        node: &str,
        keyspace: &str,
        rows: Vec<(Vec<u8>, SiblingSet)>,
    ) -> Result<(), SourceError> {
        let err = |detail: String| SourceError {
            node: node.to_string(),
            detail,
        };
        let (to, _) = (self.resolve)(node).ok_or_else(|| err("not in the layout".into()))?;
        let replica = crate::replica::handle::Handle::Peer {
            peers: self.peers.clone(),
            node: to,
        };
        // A hand-over merges existing records into a gainer in any view,
        // like repair (no plan: unchecked), 32 rows at a time.
        (replica
            .merge_page(keyspace, rows, (None, 32), self.timeout)
            .await)
            .map_err(|e| err(e.to_string()))
    }

    async fn sync(&self, node: &str) -> Result<Synced, SourceError> {
        let err = |detail: String| SourceError {
            node: node.to_string(),
            detail,
        };
        let (to, _) = (self.resolve)(node).ok_or_else(|| err("not in the layout".into()))?;
        use crate::transport::sync_wal::WalSync;
        match self.peers.sync_wal(&to, self.timeout).await {
            Ok(WalSync::Synced { incarnation }) => Ok(Synced::Durable { incarnation }),
            Ok(WalSync::Unsupported) => Ok(Synced::Unsupported),
            Err(e) => Err(err(e.to_string())),
        }
    }
}
