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
//! gainer): after a crash of either side the push resumes after the last
//! page the gainer acknowledged. Must not decide which ranges move or when
//! the leave finishes.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::cursor::{self, Cursor};
use super::plan::Loss;
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

    /// Makes everything `node` acknowledged durable (its WAL synced).
    fn sync(&self, node: &str) -> impl Future<Output = Result<Synced, SourceError>> + Send;
}

/// How a gainer answered [`RangeSink::sync`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Synced {
    /// What it took is durable, if it took it under `incarnation`.
    Durable { incarnation: u64 },
    /// Its build predates the request (UNIMPLEMENTED): its pages become
    /// durable with its own periodic sync.
    Unsupported,
}

/// The stream id of the push of `leaver`'s ranges to `gainer`.
pub fn stream_id(leaver: &str, gainer: &str) -> String {
    format!("leave-{leaver}-to-{gainer}")
}

/// Pushes every range of `losses` from `engine` (the leaver `me`'s) to each
/// of its new owners through `sink`, resuming after committed cursors, then
/// has every gainer sync what it took ([`sync_gainers`]): `Ok` means the
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
    // One rate per gainer: each is judged against its own fastest page.
    let mut rates = Rates::new(cfg.rate.clone());
    for loss in losses {
        for gainer in &loss.new_owners {
            let id = stream_id(me, gainer);
            let to = To { id: &id, gainer };
            let rate = rates.of(gainer);
            push_range(&engine, sink, to, loss, cfg, rate, progress).await?;
            progress.range_done();
        }
    }
    sync_gainers(sink, losses, cfg).await
}

/// Asks every gainer of `losses` to sync what it took (review-elastic28
/// M1): once the leave switches, the leaver, the strict source of its
/// ranges, is gone, so the switch must not rest on pages in a gainer's
/// unsynced WAL tail. A gainer of an older build (no such request) is
/// passed with a warning; any other failure is retried `cfg.max_rounds`
/// times, then [`StreamError::NotSynced`]: the leave is run again and its
/// switch waits.
async fn sync_gainers<S: RangeSink>(
    sink: &S,
    losses: &[Loss],
    cfg: &StreamConfig,
) -> Result<(), StreamError> {
    let gainers: std::collections::BTreeSet<&str> = (losses.iter())
        .flat_map(|l| l.new_owners.iter().map(String::as_str))
        .collect();
    for gainer in gainers {
        sync_one(sink, gainer, cfg).await?;
    }
    Ok(())
}

async fn sync_one<S: RangeSink>(
    sink: &S,
    gainer: &str,
    cfg: &StreamConfig,
) -> Result<(), StreamError> {
    let mut last = String::new();
    for round in 0..cfg.max_rounds {
        if round > 0 {
            tokio::time::sleep(cfg.round_backoff).await;
        }
        if !sink.is_up(gainer) {
            last = format!("{gainer}: believed down");
            continue;
        }
        match sink.sync(gainer).await {
            Ok(Synced::Durable { .. }) => return Ok(()),
            Ok(Synced::Unsupported) => {
                tracing::warn!(
                    gainer,
                    "the gainer's build cannot sync on request (older): what it took is durable at its next periodic sync"
                );
                return Ok(());
            }
            Err(e) => {
                tracing::warn!(error = %e, gainer, "sync of the pushed pages failed; retrying");
                last = e.to_string();
            }
        }
    }
    Err(StreamError::NotSynced {
        node: gainer.into(),
        rounds: cfg.max_rounds,
        last,
    })
}

/// Where one push goes: the gainer, under the stream id of its cursors.
struct To<'a> {
    id: &'a str,
    gainer: &'a str,
}

/// Pushes `loss`'s range to `to.gainer` (stream `to.id`), from its cursor on.
async fn push_range<S: RangeSink>(
    engine: &Arc<dyn Engine>,
    sink: &S,
    To { id, gainer }: To<'_>,
    loss: &Loss,
    cfg: &StreamConfig,
    rate: &mut Rate,
    progress: &Progress,
) -> Result<(), StreamError> {
    let (ks, range) = (loss.keyspace.clone(), loss.range);
    let mut at = {
        let (e, id, ks) = (engine.clone(), id.to_string(), ks.clone());
        blocking(move || Ok(cursor::load(&*e, &id, &ks, range)?)).await?
    };
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
        if !sink.is_up(gainer) {
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
        match sink.push(gainer, &ks, page).await {
            Ok(()) => {
                rate.on_page(began.elapsed(), keys as u32);
                failures = 0;
                save_cursor(engine, id, &ks, range, &next).await?;
                progress.add(keys, bytes);
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
    Ok(())
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

/// Commits stream `id`'s cursor of `keyspace`'s `range`, on a blocking thread.
async fn save_cursor(
    engine: &Arc<dyn Engine>,
    id: &str,
    keyspace: &str,
    range: crate::ring::TokenRange,
    at: &Cursor,
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
        Ok(e.write(batch)?)
    })
    .await
}

/// Forgets the push cursors of `leaver` to each of `gainers`.
pub fn forget(
    engine: &dyn Engine,
    leaver: &str,
    gainers: impl IntoIterator<Item = String>,
) -> Result<(), crate::engine::EngineError> {
    for g in gainers {
        cursor::forget(engine, &stream_id(leaver, &g))?;
    }
    Ok(())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StreamError> + Send + 'static,
) -> Result<T, StreamError> {
    tokio::task::spawn_blocking(f)
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
