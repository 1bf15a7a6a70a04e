//! The hinted queues' storage (Cassandra's hints store): every engine read
//! and write of the `hints` column family, the sequence counter, the size
//! mirror ([`Counts`]), and the anti-entropy records of entries that could
//! not be delivered. Its calls block on the engine: from async code they go
//! through [`Store::blocking`] (the one rule for blocking I/O in `hints`).
//!
//! An entry is counted in when it is added to a batch and out exactly once,
//! by whoever deletes it: the deliverer (acknowledged, expired, refused,
//! corrupt) or a settled intent ([`Store::settle`]). A load never returns
//! an intent whose direct write is in flight, and [`Store::settle`] releases
//! an intent only after deleting it, excluding loads for that step alone, so
//! an intent is never both settled and delivered.
//!
//! Must not: decide when or where entries are sent.

use super::counts::{Backlog, Counts};
use super::intent::InFlight;
use super::queue::{encode_entry, Dest, EntryKey, Lane};
use super::{now_ms, HintsConfig};
use crate::engine::{CallSite, Cf, Engine, EngineError, WriteBatch};
use crate::error::GeokvError;
use crate::proto::v1::internode::StreamEntry;
use crate::repair::plan::{repair_key, KeyspaceTooLong};
use crate::ring::token_of;
use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// One queued entry as loaded from disk.
#[derive(Clone, Debug, PartialEq)]
pub struct Loaded {
    pub key: Vec<u8>,
    pub created_ms: u64,
    pub entry: StreamEntry,
    pub bytes: u64,
}

/// The queues on disk.
pub(crate) struct Store {
    engine: Arc<dyn Engine>,
    pub(crate) config: HintsConfig,
    /// Next sequence number; starts at wall-clock microseconds so it keeps
    /// increasing across restarts without a persisted counter.
    seq: AtomicU64,
    pub(crate) counts: Counts,
    /// Node hints whose direct write is in flight (see `intent`).
    pub(crate) inflight: InFlight,
    /// Held shared by a load across its scan and its in-flight filter, and
    /// exclusively by [`Store::settle`] to release an intent after deleting
    /// it: a settled intent is either gone before a load scans or held back
    /// by it.
    gate: RwLock<()>,
    /// Where [`Store::call`] runs (inline unless writes wait for an fsync).
    pub(crate) writes: CallSite,
    /// The anti-entropy records a node that has left still holds.
    pub(crate) records: super::adopt::tally::Tally,
}

impl Store {
    /// Opens the queues, counting what is on disk.
    pub(crate) fn open(engine: Arc<dyn Engine>, config: HintsConfig) -> Result<Self, EngineError> {
        let mut found: BTreeMap<(Dest, Lane), Backlog> = BTreeMap::new();
        let mut max_seq = 0u64;
        let mut from: Vec<u8> = Vec::new();
        loop {
            let page = engine.scan_raw(Cf::Hints, &from, &[0xff; 1], 10_000)?;
            let Some((last, _)) = page.last() else { break };
            from = last.clone();
            from.push(0);
            for (k, v) in &page {
                if let Some(EntryKey { dest, lane, seq }) = Dest::parse_key(k) {
                    let b = found.entry((dest, lane)).or_default();
                    b.entries += 1;
                    b.bytes += v.len() as u64;
                    max_seq = max_seq.max(seq);
                }
            }
        }
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        Ok(Store {
            writes: CallSite::for_writes(&*engine),
            engine,
            config,
            seq: AtomicU64::new(micros.max(max_seq + 1)),
            counts: Counts::new(found),
            inflight: InFlight::default(),
            gate: RwLock::new(()),
            records: Default::default(),
        })
    }

    /// The engine the queues live in.
    pub(crate) fn engine(&self) -> &Arc<dyn Engine> {
        &self.engine
    }

    /// Runs `f` on the blocking pool, in the caller's span (so an entry
    /// enqueued there carries the caller's trace context): the engine's
    /// call site's `BlockingPool`.
    pub(crate) async fn blocking<T, F>(self: &Arc<Self>, f: F) -> Result<T, GeokvError>
    where
        F: FnOnce(&Store) -> T + Send + 'static,
        T: Send + 'static,
    {
        let me = self.clone();
        (CallSite::BlockingPool.run(move || f(&me)).await)
            .map_err(|e| GeokvError::Internal(format!("hints task failed: {e}")))
    }

    /// Runs `f` where [`CallSite::for_writes`] puts it: on the calling
    /// worker unless writes wait for an fsync. For short writes only; scans
    /// use [`Store::blocking`].
    pub(crate) async fn call<T, F>(self: &Arc<Self>, f: F) -> Result<T, GeokvError>
    where
        F: FnOnce(&Store) -> T + Send + 'static,
        T: Send + 'static,
    {
        let me = self.clone();
        self.writes
            .run(move || f(&me))
            .await
            .map_err(|e| GeokvError::Internal(format!("hints task failed: {e}")))
    }

    /// Commits `batch`.
    pub(crate) fn write(&self, batch: WriteBatch) -> Result<(), EngineError> {
        self.engine.write(batch)
    }

    /// Adds `entry` (its sequence number, and its trace context unless it
    /// has one, filled in here)
    /// to `batch` and counts it; its sequence number and stored size, or
    /// `None` when the queue is over its byte bound (the key is recorded for
    /// anti-entropy in `batch` instead).
    pub(crate) fn enqueue(
        &self,
        dest: &Dest,
        lane: Lane,
        entry: StreamEntry,
        batch: &mut WriteBatch,
    ) -> Option<(u64, u64)> {
        self.enqueue_as_of(dest, lane, entry, None, batch)
    }

    /// [`Store::enqueue`], the entry created at `created_ms` (an adopted
    /// one, so its hint window runs on; never later than now) or now.
    pub(crate) fn enqueue_as_of(
        &self,
        dest: &Dest,
        lane: Lane,
        mut entry: StreamEntry,
        created_ms: Option<u64>,
        batch: &mut WriteBatch,
    ) -> Option<(u64, u64)> {
        // Stored beside the entry, not in it.
        entry.created_ms = None;
        let now = now_ms();
        let created = created_ms.map_or(now, |c| c.min(now));
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        entry.seq = seq;
        if entry.traceparent.is_empty() {
            // An entry queued again (adopted, copied, redirected) keeps
            // the trace of the request that made it.
            entry.traceparent = crate::telemetry::current_traceparent();
        }
        let value = encode_entry(created, &entry);
        let bytes = value.len() as u64;
        if !self
            .counts
            .add(dest, lane, bytes, self.config.max_backlog_bytes)
        {
            metrics::counter!("geokv_hint_overflows_total", "dest" => dest.label()).increment(1);
            self.needs_repair(&entry.keyspace, &entry.key, dest, batch);
            return None;
        }
        batch.put_raw(Cf::Hints, &dest.key(lane, seq), &value);
        Some((seq, bytes))
    }

    /// Records a key's token as needing anti-entropy towards `dest`. Its
    /// keyspace is one of the topology's (validated: at most 255 bytes);
    /// one that is not has no replica to repair, and is logged.
    pub(crate) fn needs_repair(
        &self,
        keyspace: &str,
        key: &[u8],
        dest: &Dest,
        batch: &mut WriteBatch,
    ) {
        let recorded = self.record_token(keyspace, token_of(key), &dest.label(), batch);
        debug_assert!(recorded.is_ok(), "{recorded:?}");
        if let Err(e) = recorded {
            tracing::error!(dest = %dest.label(), error = %e, "not recorded for anti-entropy");
        }
    }

    /// Records `token` of `keyspace` as needing anti-entropy towards the
    /// destination labelled `dest` (also for records adopted from a leaver,
    /// see `adopt::records`).
    pub(crate) fn record_token(
        &self,
        keyspace: &str,
        token: u64,
        dest: &str,
        batch: &mut WriteBatch,
    ) -> Result<(), KeyspaceTooLong> {
        // The queue's sequence counter: unique, and increasing across restarts.
        let unique = self.seq.fetch_add(1, Ordering::Relaxed);
        let k = repair_key(keyspace, token, unique)?;
        self.records.written();
        batch.put_raw(Cf::Meta, &k, dest.as_bytes());
        metrics::counter!("geokv_repair_recorded_total", "dest" => dest.to_string()).increment(1);
        Ok(())
    }

    /// Deletes `done` (acknowledged as durable at the destination) from
    /// `lane` of `dest`; entries the destination refused (`refused`) are
    /// recorded for anti-entropy in the same batch.
    pub(crate) fn remove(
        &self,
        dest: &Dest,
        lane: Lane,
        done: &[Loaded],
        refused: &[Loaded],
    ) -> Result<(), EngineError> {
        if done.is_empty() && refused.is_empty() {
            return Ok(());
        }
        let mut batch = WriteBatch::new();
        for l in refused {
            self.needs_repair(&l.entry.keyspace, &l.entry.key, dest, &mut batch);
        }
        for l in done.iter().chain(refused) {
            batch.delete_raw(Cf::Hints, &l.key);
        }
        self.engine.write(batch)?;
        let n = (done.len() + refused.len()) as u64;
        let bytes = done.iter().chain(refused).map(|l| l.bytes).sum();
        self.counts.sub(dest, lane, n, bytes);
        Ok(())
    }

    /// Settles an intent whose direct write was acknowledged: deletes its
    /// hint and counts it out, then lets loads see it again. Only that last
    /// step excludes loads (see [`Store`]): the delete does not wait behind
    /// page scans, nor they behind it, and deletes commit in groups.
    ///
    /// Why this is enough: a load holds the gate from before its scan until
    /// after its in-flight filter. If its scan sees the hint, the delete
    /// came later, so the `inflight.remove` (after the delete, under the
    /// gate) waits for the load's filter, which holds the hint back; if the
    /// remove came first, the delete did too and the scan cannot see it.
    /// Either way the deliverer never sends, deletes and counts out a hint
    /// that this also counts out. Should the delete fail, the hint is
    /// delivered (and counted out) later instead: harmless.
    pub(crate) fn settle(&self, dest: &Dest, seq: u64, bytes: u64) {
        self.delete_settled(dest, seq, bytes);
        self.release_settled(seq);
    }

    /// The first half of [`Store::settle`]: deletes the hint.
    pub(crate) fn delete_settled(&self, dest: &Dest, seq: u64, bytes: u64) {
        let mut batch = WriteBatch::new();
        batch.delete_raw(Cf::Hints, &dest.key(Lane::Backlog, seq));
        if self.engine.write(batch).is_ok() {
            self.counts.sub(dest, Lane::Backlog, 1, bytes);
        }
    }

    /// The second half of [`Store::settle`]: releases the intent under the
    /// exclusive gate (waits for a load in progress).
    pub(crate) fn release_settled(&self, seq: u64) {
        let _gate = self.gate.write();
        self.inflight.remove(seq);
    }

    /// [`Store::release_settled`] if no load holds the gate; false (nothing
    /// done) otherwise, so an async caller need not wait for a scan.
    pub(crate) fn try_release_settled(&self, seq: u64) -> bool {
        match self.gate.try_write() {
            Some(_gate) => {
                self.inflight.remove(seq);
                true
            }
            None => false,
        }
    }

    /// The sequence number the next entry will get: every entry with a
    /// lower one has been given its number already (`page::Page::clear_to`).
    pub(crate) fn next_seq(&self) -> u64 {
        self.seq.load(Ordering::SeqCst)
    }

    /// Shared with other loads, exclusive of [`Store::settle`].
    pub(crate) fn load_gate(&self) -> parking_lot::RwLockReadGuard<'_, ()> {
        self.gate.read()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hints::testing::{entry, store};
    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::layer::SubscriberExt;

    /// An entry enqueued on the blocking thread carries the caller's trace
    /// context (node hints lost theirs: the closure ran outside the span).
    #[tokio::test]
    async fn an_entry_enqueued_off_thread_carries_the_callers_trace() {
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        let _default = tracing::subscriber::set_default(subscriber);
        let s = store();
        let dest = Dest::Node("dc1-n2".into());
        let span = tracing::info_span!("coordinator.write");
        let outside = {
            let _in = span.enter();
            let d = dest.clone();
            let enqueued = s.blocking(move |s| {
                let mut b = WriteBatch::new();
                s.enqueue(&d, Lane::Backlog, entry(b"k"), &mut b);
                s.write(b).expect("commit");
            });
            enqueued.await.expect("blocking");
            crate::telemetry::current_traceparent()
        };
        let (from, to) = (dest.prefix(Lane::Backlog), dest.prefix_end(Lane::Backlog));
        let rows = s
            .engine()
            .scan_raw(Cf::Hints, &from, &to, 10)
            .expect("scan");
        let (_, stored) = super::super::queue::decode_entry(&rows[0].1).expect("decode");
        assert!(!outside.is_empty(), "the span has a trace context");
        assert_eq!(
            stored.traceparent, outside,
            "stored with the caller's trace"
        );
    }
}
