//! What anti-entropy keeps in the meta column family:
//!
//! - the **records** `hints` leaves for keys that need repair
//!   ([`load_records`], [`delete_records`]); every record is its own key
//!   (see [`super::plan::repair_key`]), so a pass deletes exactly the
//!   records it loaded, and one written while the pass runs survives it;
//! - **when each swept range was last repaired** ([`SweepClock`]), so the
//!   periodic sweep is scheduled from that, not from the process start: a
//!   node restarted more often than the sweep interval still sweeps.
//!
//! ```text
//! key   = "repair-swept/" [ks_len: u8][keyspace][start: u64 BE][end: u64 BE]
//! value = [swept_ms: u64 BE]
//! key   = "repair-swept-base"   value = [first start of this node, ms: u64 BE]
//! ```
//! After a start that may have lost a tail of its WAL (not after a clean
//! shutdown, and not under `Durability::Sync`), [`record_every_range`]
//! writes one record per vnode range the node replicates, towards itself:
//! the recorded pass (every few seconds, once every replica is up) brings
//! back what the other replicas acknowledged meanwhile, without waiting for
//! the periodic sweep.
//!
//! A range never swept counts as swept at the node's first start (so a new
//! cluster does not sweep everything at once, and a node that keeps
//! restarting still sweeps an interval after its first start).
//!
//! Must not: decide what to repair or talk to peers.

use super::error::RepairError;
use super::plan::{repair_key, REPAIR_PREFIX};
use super::plan::{RangeTable, Recorded};
use crate::engine::{Cf, Engine, WriteBatch};
use crate::ring::{Ring, Token, TokenRange};
use crate::topology::NodeIdx;
use std::sync::Arc;
use std::time::Duration;

const SWEPT_PREFIX: &[u8] = b"repair-swept/";
const SWEPT_BASE: &[u8] = b"repair-swept-base";

/// Where a record key that does not parse is moved (its suffix kept), so
/// it neither holds a leave that waits for every record to be handed over
/// nor is read again by every pass.
pub const QUARANTINE_PREFIX: &[u8] = b"repair-quarantine/";

/// Every anti-entropy record, in key order (malformed ones quarantined,
/// see [`load_page`]).
pub fn load_records(engine: &dyn Engine) -> Result<Vec<Recorded>, RepairError> {
    let mut after: Option<Vec<u8>> = None;
    let mut out = Vec::new();
    loop {
        let (page, next) = load_page(engine, after.as_deref(), 4096)?;
        out.extend(page);
        match next {
            Some(k) => after = Some(k),
            None => return Ok(out),
        }
    }
}

/// Up to `limit` records after the record key `after` (from the first
/// without), in key order, and the key to go on after (`None`: the end was
/// reached). A key under the records' prefix that is not a record is moved
/// to [`QUARANTINE_PREFIX`] and logged, once: it never counts as a record.
/// Reads `limit` keys, not every record: a caller handing records over in
/// batches pages through them instead of loading all of them every round.
pub fn load_page(
    engine: &dyn Engine,
    after: Option<&[u8]>,
    limit: usize,
) -> Result<(Vec<Recorded>, Option<Vec<u8>>), RepairError> {
    let mut end = REPAIR_PREFIX.to_vec();
    *end.last_mut().expect("non-empty prefix") += 1;
    let mut from = match after {
        Some(k) => [k, &[0]].concat(),
        None => REPAIR_PREFIX.to_vec(),
    };
    let (mut out, limit) = (Vec::new(), limit.max(1));
    while out.len() < limit {
        let want = limit - out.len();
        let page = engine.scan_raw(Cf::Meta, &from, &end, want)?;
        let full = page.len() == want;
        let Some((last, _)) = page.last() else { break };
        from = [&last[..], &[0]].concat();
        let mut bad = WriteBatch::new();
        let mut quarantined = 0u64;
        for (k, v) in &page {
            match Recorded::parse(k, v) {
                Some(r) => out.push(r),
                None => {
                    let aside = [QUARANTINE_PREFIX, &k[REPAIR_PREFIX.len()..]].concat();
                    bad.put_raw(Cf::Meta, &aside, v);
                    bad.delete_raw(Cf::Meta, k);
                    quarantined += 1;
                    tracing::warn!(key = ?k, "an anti-entropy record that does not parse: set aside");
                }
            }
        }
        if quarantined > 0 {
            engine.write(bad)?;
            metrics::counter!("geokv_repair_records_quarantined_total").increment(quarantined);
        }
        if !full {
            return Ok((out, None));
        }
    }
    // Full: `out` holds `limit` records, the last one the place to go on.
    let next = out.last().map(|r| r.key.clone());
    Ok((out, next))
}

/// Deletes exactly these records (what a pass covered).
pub fn delete_records(engine: &dyn Engine, recs: &[Recorded]) -> Result<usize, RepairError> {
    engine.write(deletes(recs))?;
    Ok(recs.len())
}

/// The batch [`delete_records`] writes.
pub fn deletes(recs: &[Recorded]) -> WriteBatch {
    let mut batch = WriteBatch::new();
    for r in recs {
        batch.delete_raw(Cf::Meta, &r.key);
    }
    batch
}

/// Records every vnode range `me` replicates, in every keyspace, for repair
/// towards `me` (see the module docs). Returns how many it wrote.
pub fn record_every_range(
    engine: &dyn Engine,
    ring: &Ring,
    me: NodeIdx,
) -> Result<usize, RepairError> {
    let mut ends = Vec::new();
    for keyspace in ring.topology().keyspaces.keys() {
        let table = RangeTable::new(ring, keyspace)?;
        let mine = table.iter().filter(|p| p.replicas.contains(&me));
        ends.extend(mine.map(|p| (keyspace.as_str(), p.range.end)));
    }
    record_at(engine, &ring.node(me).id, ends)
}

/// Records every range `me` is a pending replica of (it gains it in a
/// movement in progress), in every keyspace, for repair towards `me`: after
/// a start that may have lost its unsynced WAL tail, the writes it
/// acknowledged as a pending replica may be gone. Until the movement makes
/// `me` an owner, a pass repairs the range's owners among themselves (so a
/// write `me` acknowledged reaches all of them); after, towards `me`.
/// `pending` (between `ring` and `after`, the ring once the movements end)
/// joins adjacent pieces, and a pass repairs only the vnode range holding a
/// record's token: so one record at every cut `pending` makes before it
/// joins them (the tokens of both rings: every vnode range end of either)
/// where `me` is pending (review-elastic2-30 M4, review-final30 L1).
/// Returns how many it wrote.
pub fn record_pending_ranges(
    engine: &dyn Engine,
    ring: &Ring,
    after: &Ring,
    pending: &crate::ring::PendingRanges,
    me: NodeIdx,
) -> Result<usize, RepairError> {
    let mut cuts: Vec<Token> = ring
        .tokens()
        .iter()
        .chain(after.tokens())
        .copied()
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    let gains =
        |ks: &str, t: Token| (pending.for_token(ks, t).iter()).any(|d| d.nodes.contains(&me));
    let ends = (ring.topology().keyspaces.keys()).flat_map(|ks| {
        let mine = cuts.iter().filter(move |t| gains(ks, **t));
        mine.map(move |t| (ks.as_str(), *t))
    });
    record_at(engine, &ring.node(me).id, ends)
}

/// Writes one record for repair towards node `dest` at each `(keyspace,
/// range end)`, in one batch: a range is `(start, end]`, so its end token
/// is inside it, and a pass repairs the vnode range holding that token. A
/// fixed suffix: starting again before the pass overwrites, not adds.
/// Returns how many it wrote.
fn record_at<'a>(
    engine: &dyn Engine,
    dest: &str,
    ends: impl IntoIterator<Item = (&'a str, Token)>,
) -> Result<usize, RepairError> {
    let dest = format!("node:{dest}");
    let mut batch = WriteBatch::new();
    let mut n = 0;
    for (keyspace, end) in ends {
        let key = repair_key(keyspace, end, u64::MAX)?;
        batch.put_raw(Cf::Meta, &key, dest.as_bytes());
        n += 1;
    }
    engine.write(batch)?;
    Ok(n)
}

fn swept_key(keyspace: &str, range: TokenRange) -> Vec<u8> {
    let mut k = SWEPT_PREFIX.to_vec();
    k.push(keyspace.len() as u8);
    k.extend_from_slice(keyspace.as_bytes());
    k.extend_from_slice(&range.start.to_be_bytes());
    k.extend_from_slice(&range.end.to_be_bytes());
    k
}

fn read_ms(v: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(v.get(..8)?.try_into().ok()?))
}

/// When each swept range was last repaired, persisted (wall-clock ms).
#[derive(Clone)]
pub struct SweepClock {
    engine: Arc<dyn Engine>,
    interval: Duration,
    /// When this node first started (persisted at its first start).
    base_ms: u64,
}

impl SweepClock {
    /// Opens the clock at `now_ms`, persisting it as the node's first start
    /// if there is none yet.
    pub fn open(
        engine: Arc<dyn Engine>,
        interval: Duration,
        now_ms: u64,
    ) -> Result<Self, RepairError> {
        let base_ms = match engine
            .get_raw(Cf::Meta, SWEPT_BASE)?
            .as_deref()
            .and_then(read_ms)
        {
            Some(ms) => ms,
            None => {
                let mut b = WriteBatch::new();
                b.put_raw(Cf::Meta, SWEPT_BASE, &now_ms.to_be_bytes());
                engine.write(b)?;
                now_ms
            }
        };
        Ok(SweepClock {
            engine,
            interval,
            base_ms,
        })
    }

    /// When `range` of `keyspace` was last swept (the node's first start if
    /// never).
    pub fn last_swept(&self, keyspace: &str, range: TokenRange) -> Result<u64, RepairError> {
        let v = self.engine.get_raw(Cf::Meta, &swept_key(keyspace, range))?;
        Ok(v.as_deref().and_then(read_ms).unwrap_or(self.base_ms))
    }

    /// Whether `range` is due for its periodic sweep at `now_ms` (never with
    /// a zero interval).
    pub fn is_due(
        &self,
        keyspace: &str,
        range: TokenRange,
        now_ms: u64,
    ) -> Result<bool, RepairError> {
        if self.interval.is_zero() {
            return Ok(false);
        }
        let last = self.last_swept(keyspace, range)?;
        Ok(now_ms >= last.saturating_add(self.interval.as_millis() as u64))
    }

    /// Records that `range` of `keyspace` was swept at `now_ms`.
    pub fn swept(&self, keyspace: &str, range: TokenRange, now_ms: u64) -> Result<(), RepairError> {
        let mut b = WriteBatch::new();
        b.put_raw(Cf::Meta, &swept_key(keyspace, range), &now_ms.to_be_bytes());
        self.engine.write(b)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::memory::MemoryEngine;
    use crate::engine::Limits;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// Writes a record of `key` towards the destination labelled `dest`
    /// as the hint store does (`plan::repair_key`, a unique suffix each).
    fn record(engine: &dyn Engine, key: &[u8], dest: &str) {
        static UNIQUE: AtomicU64 = AtomicU64::new(0);
        let unique = UNIQUE.fetch_add(1, Ordering::Relaxed);
        let k = repair_key("default", crate::token::token_of(key), unique).expect("key");
        let mut b = WriteBatch::new();
        b.put_raw(Cf::Meta, &k, dest.as_bytes());
        engine.write(b).expect("write");
    }

    fn dests(recs: &[Recorded]) -> Vec<String> {
        let mut v: Vec<String> = recs.iter().map(|r| r.dest.clone()).collect();
        v.sort();
        v
    }

    /// Two destinations that missed the same key both stay recorded, and a
    /// record written while a pass runs survives the deletion at its end.
    #[test]
    fn records_accumulate_and_a_pass_deletes_only_what_it_loaded() {
        let engine: Arc<dyn Engine> = Arc::new(MemoryEngine::new(Limits::default()));
        record(&*engine, b"k", "node:dc1-n2");
        record(&*engine, b"k", "dc:dc2");
        let loaded = load_records(&*engine).expect("load");
        assert_eq!(dests(&loaded), vec!["dc:dc2", "node:dc1-n2"]);
        // While the pass runs, the same key is recorded again.
        record(&*engine, b"k", "node:dc1-n3");
        delete_records(&*engine, &loaded).expect("delete");
        let left = load_records(&*engine).expect("load");
        assert_eq!(dests(&left), vec!["node:dc1-n3"]);
        assert_eq!(left[0].token, loaded[0].token, "the same key's token");
    }

    /// Records page by page from a cursor, every one once, in key order;
    /// a key under the prefix that is not a record is moved aside (kept,
    /// not lost) and returned by no page, so it holds nothing up.
    #[test]
    fn records_page_from_a_cursor_and_a_malformed_key_is_set_aside() {
        let engine: Arc<dyn Engine> = Arc::new(MemoryEngine::new(Limits::default()));
        for i in 0..5u32 {
            record(&*engine, &i.to_be_bytes(), "dc:dc2");
        }
        let bad = [REPAIR_PREFIX, &[9, b'x']].concat();
        let mut b = WriteBatch::new();
        b.put_raw(Cf::Meta, &bad, b"dc:dc2");
        engine.write(b).expect("write");
        let (mut seen, mut after) = (Vec::new(), None::<Vec<u8>>);
        loop {
            let (page, next) = load_page(&*engine, after.as_deref(), 2).expect("load");
            assert!(page.len() <= 2);
            seen.extend(page.into_iter().map(|r| r.key));
            match next {
                Some(k) => after = Some(k),
                None => break,
            }
        }
        let all: Vec<Vec<u8>> = load_records(&*engine)
            .expect("load")
            .into_iter()
            .map(|r| r.key)
            .collect();
        assert_eq!((seen.len(), &seen), (5, &all));
        assert_eq!(engine.get_raw(Cf::Meta, &bad).expect("read"), None);
        let aside = [QUARANTINE_PREFIX, &[9, b'x']].concat();
        assert!(engine.get_raw(Cf::Meta, &aside).expect("read").is_some());
    }

    /// A range never swept counts from the node's first start, which a
    /// restart does not move; a sweep moves it.
    #[test]
    fn sweep_times_persist_across_restarts() {
        let engine: Arc<dyn Engine> = Arc::new(MemoryEngine::new(Limits::default()));
        let hour = Duration::from_secs(3600);
        let range = TokenRange { start: 5, end: 9 };
        let t0 = 1_000_000_000;
        let c = SweepClock::open(engine.clone(), hour, t0).expect("open");
        assert!(!c.is_due("default", range, t0 + 1_800_000).expect("read"));
        // Restarted every half hour: the schedule still counts from t0.
        let c = SweepClock::open(engine.clone(), hour, t0 + 1_800_000).expect("open");
        assert!(!c.is_due("default", range, t0 + 3_000_000).expect("read"));
        let c = SweepClock::open(engine.clone(), hour, t0 + 3_600_000).expect("open");
        assert!(c.is_due("default", range, t0 + 3_600_000).expect("read"));
        c.swept("default", range, t0 + 3_700_000).expect("write");
        let c = SweepClock::open(engine, hour, t0 + 3_800_000).expect("open");
        assert!(!c.is_due("default", range, t0 + 7_000_000).expect("read"));
        assert!(c.is_due("default", range, t0 + 7_300_000).expect("read"));
        assert!(!c
            .is_due("other", TokenRange { start: 0, end: 1 }, t0)
            .expect("read"));
    }
}
