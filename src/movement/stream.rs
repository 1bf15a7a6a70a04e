//! The streaming driver: copies the ranges a node gains from their current
//! owners into this node's engine, page by page, resumably.
//!
//! Owns [`Streamer`] and the [`RangeSource`] seam (a peer's `RangeScan` in
//! production, a loopback over engines in tests); it reports to a
//! [`Progress`] (`super::stream_progress`, re-exported here). Each page
//! is a set of rows in `(token, key)` order with their full sibling sets
//! (clocks and tombstones included); it is applied as **merges** — never an
//! overwrite, so a write that reached this node meanwhile (it is a pending
//! replica) survives — in ONE engine batch together with the range's cursor
//! ([`super::cursor`]): after a crash of either side the range continues
//! after its last committed key. A range an owner loses is streamed from
//! that owner only (strict, as Cassandra's consistent range movement: a
//! down loser stalls the range and the join retries); a range nobody loses
//! from its owners in the plan's order. Each page starts again from the
//! first source, skipping those believed down and moving on when one
//! fails. Page size and pauses follow [`super::rate`], one rate per source.
//! Must not decide which ranges move or when a movement finishes.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::cursor::{self, Cursor};
use super::plan::Gain;
use super::push::blocking;
use super::rate::{RateConfig, Rates};
use super::throughput::Throughput;
use crate::engine::{Engine, EngineError, WriteBatch};
use crate::ring::TokenRange;
use crate::version::SiblingSet;

pub use super::stream_progress::{Progress, ProgressSnapshot};

/// One page of a source's rows of a range.
#[derive(Clone, Debug, Default)]
pub struct Page {
    pub rows: Vec<(Vec<u8>, SiblingSet)>,
    /// The range has rows after the last one.
    pub more: bool,
}

/// A source failed to serve a page.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{node}: {detail}")]
pub struct SourceError {
    pub node: String,
    pub detail: String,
}

/// Where rows come from: a node's `RangeScan`.
pub trait RangeSource: Send + Sync {
    /// Whether `node` is believed up (a down one is skipped, not asked).
    fn is_up(&self, node: &str) -> bool;

    /// Up to `limit` rows of `node`'s copy of `range` after `after`.
    fn scan(
        &self,
        node: &str,
        keyspace: &str,
        range: TokenRange,
        after: Option<Vec<u8>>,
        limit: u32,
    ) -> impl Future<Output = Result<Page, SourceError>> + Send;
}

/// A shared source serves several streamers (one per source node in a
/// re-replication).
impl<S: RangeSource + ?Sized> RangeSource for std::sync::Arc<S> {
    fn is_up(&self, node: &str) -> bool {
        (**self).is_up(node)
    }

    fn scan(
        &self,
        node: &str,
        keyspace: &str,
        range: TokenRange,
        after: Option<Vec<u8>>,
        limit: u32,
    ) -> impl Future<Output = Result<Page, SourceError>> + Send {
        (**self).scan(node, keyspace, range, after, limit)
    }
}

/// Why a stream stopped. Its cursors stay: running it again resumes.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("no source could serve {keyspace} {range:?} after {rounds} rounds: {last}")]
    NoSource {
        keyspace: String,
        range: TokenRange,
        rounds: u32,
        last: String,
    },
    /// A gainer did not sync what it took (the leave's switch waits).
    #[error("{node} did not sync what it took after {rounds} rounds: {last}")]
    NotSynced {
        node: String,
        rounds: u32,
        last: String,
    },
    /// A gainer restarted under a new incarnation in every round of the
    /// push (it may have lost what it took; the leave's switch waits).
    #[error("{node} restarted (a new incarnation) during every one of {rounds} rounds of the push: run the decommission again")]
    GainerRestarted { node: String, rounds: u32 },
    /// A gainer of an older build cannot make its pages durable on request
    /// or tell its incarnation (a crash of it would go unseen): the leave's
    /// switch waits, unless [`StreamConfig::allow_old_gainers`] (issue 11).
    #[error("{node} runs an older build that cannot confirm that what it took is durable: upgrade {node}, or run `geokv decommission --allow-old-gainers` (POST /decommission?allow_old_gainers=true) to pass it")]
    GainerTooOld { node: String },
    #[error("stream stopped by its caller between ranges: {0}")]
    Stopped(String),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("stream task: {0}")]
    Task(String),
    /// A leave's push whose leave was begun again since (its cancel
    /// missed): its cursor is not saved ([`super::push::LeaveEpoch`]).
    #[error("this push's decommission was begun again since: it starts over")]
    Superseded,
}

/// Tuning of a [`Streamer`].
#[derive(Clone, Debug)]
pub struct StreamConfig {
    pub rate: RateConfig,
    /// Rounds over every source of a range before giving up on it.
    pub max_rounds: u32,
    /// Wait between two rounds.
    pub round_backoff: Duration,
    /// The node's byte cap, shared by every stream in or out of it.
    pub throughput: Arc<Throughput>,
    /// A leave's push passes gainers of an older build (the operator's
    /// `--allow-old-gainers`) instead of [`StreamError::GainerTooOld`].
    pub allow_old_gainers: bool,
    /// The leave a push belongs to: its cursors are saved only while no
    /// later leave began (review-final33 L5); `None` outside a leave.
    pub epoch: Option<super::push::LeaveEpoch>,
}

impl StreamConfig {
    /// The defaults under the node's throughput cap.
    pub fn capped(throughput: Arc<Throughput>) -> StreamConfig {
        StreamConfig {
            throughput,
            ..StreamConfig::default()
        }
    }
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            rate: RateConfig::default(),
            max_rounds: 10,
            round_backoff: Duration::from_secs(1),
            throughput: Arc::default(),
            allow_old_gainers: false,
            epoch: None,
        }
    }
}

/// Streams ranges into one engine under one stream id (one per movement).
pub struct Streamer<S> {
    engine: Arc<dyn Engine>,
    source: S,
    stream_id: String,
    cfg: StreamConfig,
    progress: Arc<Progress>,
}

impl<S: RangeSource> Streamer<S> {
    pub fn new(engine: Arc<dyn Engine>, source: S, stream_id: &str, cfg: StreamConfig) -> Self {
        Streamer {
            engine,
            source,
            stream_id: stream_id.to_string(),
            cfg,
            progress: Arc::default(),
        }
    }

    /// Reports into `progress` (shared with whoever shows it).
    pub fn with_progress(mut self, progress: Arc<Progress>) -> Self {
        self.progress = progress;
        self
    }

    pub fn source(&self) -> &S {
        &self.source
    }

    pub fn progress(&self) -> &Arc<Progress> {
        &self.progress
    }

    /// Streams every range of `gains` not done yet, in order.
    pub async fn run(&self, gains: &[Gain]) -> Result<(), StreamError> {
        self.progress.begin(gains.len() as u64);
        self.run_counted(gains).await
    }

    /// [`Streamer::run`], asking `stop` before each range: `Some(why)` ends
    /// it, [`StreamError::Stopped`] (a joiner removed meanwhile).
    pub async fn run_while(
        &self,
        gains: &[Gain],
        stop: impl Fn() -> Option<String> + Sync,
    ) -> Result<(), StreamError> {
        self.progress.begin(gains.len() as u64);
        self.counted(gains, &stop).await
    }

    /// [`Streamer::run`] without resetting the progress: for a movement
    /// made of several runs that share one [`Progress`] (after
    /// [`Progress::begin`] with their total).
    pub async fn run_counted(&self, gains: &[Gain]) -> Result<(), StreamError> {
        self.counted(gains, &|| None).await
    }

    async fn counted(
        &self,
        gains: &[Gain],
        stop: &(dyn Fn() -> Option<String> + Sync),
    ) -> Result<(), StreamError> {
        let mut rates = Rates::new(self.cfg.rate.clone());
        for gain in gains {
            if let Some(why) = stop() {
                return Err(StreamError::Stopped(why));
            }
            self.range(gain, &mut rates).await?;
            self.progress.range_done();
        }
        // Synced before the caller proposes the switch of reads: past the
        // switch a movement does not copy again, so an OS crash must not
        // take the copy's unsynced WAL tail (review-abort27 L3).
        let engine = self.engine.clone();
        blocking(move || Ok(engine.flush()?)).await
    }

    /// The committed cursor of `gain`'s range.
    pub async fn cursor(&self, gain: &Gain) -> Result<Cursor, StreamError> {
        let k = self.key_of(gain);
        blocking(move || Ok(cursor::load(&*k.engine, &k.id, &k.ks, k.range)?)).await
    }

    fn key_of(&self, gain: &Gain) -> RangeKey {
        RangeKey {
            engine: self.engine.clone(),
            id: self.stream_id.clone(),
            ks: gain.keyspace.clone(),
            range: gain.range,
        }
    }

    async fn range(&self, gain: &Gain, rates: &mut Rates) -> Result<(), StreamError> {
        let mut at = self.cursor(gain).await?;
        // Strict sources: a range an owner loses comes from that owner
        // only (another owner may lack a write a quorum acknowledged
        // without it); other owners serve only ranges nobody loses.
        let sources = if gain.losing.is_empty() {
            &gain.sources
        } else {
            &gain.losing
        };
        let n = sources.len().max(1);
        let (mut tries, mut last) = (0usize, String::from("no source is up"));
        while at != Cursor::Done {
            if tries > 0 && tries % n == 0 {
                let rounds = (tries / n) as u32;
                if rounds >= self.cfg.max_rounds {
                    return Err(StreamError::NoSource {
                        keyspace: gain.keyspace.clone(),
                        range: gain.range,
                        rounds,
                        last,
                    });
                }
                tokio::time::sleep(self.cfg.round_backoff).await;
            }
            let source = &sources[tries % n];
            if !self.source.is_up(source) {
                tries += 1;
                last = format!("{source}: believed down");
                continue;
            }
            let rate = rates.of(source);
            if rate.pause() > Duration::ZERO {
                tokio::time::sleep(rate.pause()).await;
            }
            let after = match &at {
                Cursor::After(k) => Some(k.clone()),
                _ => None,
            };
            let began = tokio::time::Instant::now();
            let scan = self
                .source
                .scan(source, &gain.keyspace, gain.range, after, rate.rows());
            match scan.await {
                Ok(page) => {
                    let got = page.rows.len() as u32;
                    let bytes = page_bytes(&page);
                    at = self.commit(gain, page).await?;
                    rate.on_page(began.elapsed(), got);
                    // Outside the page's timing: the cap is this node's
                    // choice, not a sign of the source's load.
                    self.cfg.throughput.moved(bytes).await;
                    // Each page starts again from the first source.
                    tries = 0;
                }
                Err(e) => {
                    tracing::warn!(error = %e, range = ?gain.range, "stream page failed; trying the next source");
                    rate.on_error();
                    last = e.to_string();
                    tries += 1;
                }
            }
        }
        Ok(())
    }

    /// Merges `page` and its cursor in one batch; the new cursor.
    async fn commit(&self, gain: &Gain, page: Page) -> Result<Cursor, StreamError> {
        let next = match (page.more, page.rows.last()) {
            (true, Some((k, _))) => Cursor::After(k.clone()),
            _ => Cursor::Done,
        };
        let keys = page.rows.len() as u64;
        let bytes = page_bytes(&page);
        let k = self.key_of(gain);
        let cursor = next.clone();
        blocking(move || {
            let mut batch = WriteBatch::new();
            for (key, set) in &page.rows {
                batch.merge_versions(&k.ks, key, set);
            }
            cursor::save(&mut batch, &k.id, &k.ks, k.range, &cursor);
            Ok(k.engine.write(batch)?)
        })
        .await?;
        self.progress.add(keys, bytes);
        Ok(next)
    }
}

/// What a blocking load or save of one range's cursor takes along
/// ([`Streamer::key_of`]): the engine, the stream's id, the keyspace and
/// the range.
struct RangeKey {
    engine: Arc<dyn Engine>,
    id: String,
    ks: String,
    range: TokenRange,
}

/// Keys plus encoded records: what the progress and the cap count.
fn page_bytes(page: &Page) -> u64 {
    page.rows
        .iter()
        .map(|(k, s)| (k.len() + s.encoded_len()) as u64)
        .sum()
}
