//! Handing a leaver's anti-entropy records to an adopter (review Medium of
//! stop 21). A node records a key's token range for repair when a
//! destination refused an entry or a hint passed its window
//! (`Store::needs_repair`); those records live in its meta column family
//! and would be deleted with its store once it has left, so the missed
//! writes would wait for the next periodic sweep. A node that has left
//! sends them, in the `Adopt` call's batch shape ([`batch`]: one entry
//! per record, `adopt_for` = [`LABEL`]), to a live Normal member of any
//! datacenter (`adopt::record_adopters`: a coordinator-only datacenter's
//! last node has none of its own), those that replicate the page's ranges
//! first, then its own datacenter's (`adopt::by_replicated`), which
//! records each again in its own store ([`adopt`]) and acknowledges it
//! durable; its recorded pass repairs the ranges with their replicas,
//! wherever it runs. The leaver deletes a record only then
//! ([`handed`]). The drain waits for it (`Hints::left_to_hand_over`).
//!
//! An older adopter refuses the label (`adopt::decide`: an unknown
//! queue), so nothing is deleted and the next adopter is asked.
//!
//! The loop reads one page of records a round (from a cursor, starting
//! over once past the last), and keeps their count in [`tally`] rather
//! than rescanning them; a round that fails is logged at warn with its
//! reason, at most every [`WARN_EVERY`].
//!
//! Owns the encoding of a record as an entry ([`batch`], [`adopt`]) and
//! the leaver's hand-over loop ([`run`]). Must not repair anything: the
//! adopter's recorded pass does that.

use super::acks;
use crate::engine::WriteBatch;
use crate::hints::failure::HandOverError;
use crate::hints::link::{Link, Wire};
use crate::hints::queue::Dest;
use crate::hints::schedule::{BACKOFF, BATCH_TIMEOUT};
use crate::hints::throttle::Throttle;
use crate::hints::Hints;
use crate::proto::v1::internode::{EntryAck, StreamAck, StreamBatch, StreamEntry};
use crate::repair::plan::Recorded;
use crate::repair::records::{deletes, load_page};
use crate::topology::NodeInfo;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The `adopt_for` of a batch of anti-entropy records.
pub const LABEL: &str = "repair-records";
/// Records per batch.
pub const MAX_BATCH: usize = 1000;
/// How often a node looks for records to hand over.
pub const POLL: Duration = Duration::from_secs(1);

/// A batch of `records` (at most [`MAX_BATCH`]) from node `me`: entry `i`
/// is record `i`, its key the token (8 bytes, big-endian), its record the
/// destination's label.
pub fn batch(me: &NodeInfo, records: &[Recorded], batch_id: u64) -> StreamBatch {
    let entries = (records.iter().enumerate())
        .map(|(i, r)| StreamEntry {
            seq: i as u64,
            keyspace: r.keyspace.clone(),
            key: r.token.to_be_bytes().to_vec(),
            record: r.dest.clone().into_bytes(),
            ..Default::default()
        })
        .collect();
    StreamBatch {
        source_node: me.id.clone(),
        source_dc: me.dc.clone(),
        entries,
        batch_id,
        urgent: false,
        adopt_for: LABEL.to_string(),
    }
}

/// The records of `records` the adopter took (durable) or will never take
/// (refused: not a record), so the leaver deletes them; each once, however
/// often the acknowledgement names it (the count of what is left takes
/// off one per record).
pub fn handed<'a>(records: &'a [Recorded], ack: &StreamAck) -> Vec<&'a Recorded> {
    let settled = |a: &EntryAck| a.durable || a.refused;
    let seqs: std::collections::BTreeSet<u64> = (ack.entries.iter())
        .filter(|a| settled(a))
        .map(|a| a.seq)
        .collect();
    (seqs.into_iter())
        .filter_map(|seq| records.get(seq as usize))
        .collect()
}

/// Records a batch of [`LABEL`] here, in one committed write: each entry
/// acknowledged durable, or refused when it is not a record; none when
/// this node has left itself or the write fails (the sender keeps them).
pub async fn adopt(hints: &Arc<Hints>, batch: StreamBatch) -> StreamAck {
    let seqs: Vec<u64> = batch.entries.iter().map(|e| e.seq).collect();
    if hints.cluster.current().has_left() {
        return acks(batch.batch_id, &seqs, false);
    }
    let mut wb = WriteBatch::new();
    let mut out = Vec::new();
    for e in &batch.entries {
        let token = <[u8; 8]>::try_from(&e.key[..]).map(u64::from_be_bytes);
        let dest = std::str::from_utf8(&e.record).ok();
        let ok = match (token, dest) {
            (Ok(token), Some(dest)) if Dest::from_label(dest).is_some() => {
                // A keyspace name no record key holds: refused, not truncated.
                (hints.store.record_token(&e.keyspace, token, dest, &mut wb)).is_ok()
            }
            _ => false,
        };
        out.push(EntryAck {
            seq: e.seq,
            durable: ok,
            refused: !ok,
            ..Default::default()
        });
    }
    let written = hints.store.blocking(move |s| s.engine().write(wb)).await;
    if !matches!(written, Ok(Ok(()))) {
        tracing::warn!(from = %batch.source_node, "could not adopt anti-entropy records");
        return acks(batch.batch_id, &seqs, false);
    }
    let n = out.iter().filter(|a| a.durable).count();
    tracing::info!(from = %batch.source_node, records = n, "adopted anti-entropy records");
    StreamAck {
        batch_id: batch.batch_id,
        entries: out,
    }
}

/// Hands this node's records over while it has left (an adopter is
/// offered: `Link::adopters`), until `shutdown`.
pub(crate) async fn run<L: Link>(
    hints: Arc<Hints>,
    link: Arc<L>,
    me: NodeInfo,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut h = Handing {
        tried: 0,
        batch_id: 0,
        cursor: None,
        warned: Throttle::new(WARN_EVERY),
    };
    // The hinted streams' policy, jittered: leavers do not retry in step.
    let mut backoff = geokv_client::Streak::new(BACKOFF);
    while !*shutdown.borrow() {
        let wait = match h.round(&hints, &*link, &me).await {
            Ok(0) => POLL,
            Ok(_) => {
                backoff.succeeded();
                Duration::ZERO
            }
            Err(e) => {
                h.stuck(&e);
                h.tried = h.tried.wrapping_add(1); // the next adopter
                backoff.failed(rand::random())
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// A hand-over stuck on one adopter after another is logged at most this
/// often at warn (each failure in between at debug).
pub const WARN_EVERY: Duration = Duration::from_secs(30);

/// The state of the hand-over loop.
struct Handing {
    /// Adopters tried so far: each failure asks the next.
    tried: usize,
    batch_id: u64,
    /// The last record handed (or kept) this sweep: the next page starts
    /// after it, so a round reads one page, not every record.
    cursor: Option<Vec<u8>>,
    /// A stuck hand-over at warn at most every [`WARN_EVERY`].
    warned: Throttle,
}

impl Handing {
    /// Logs why a round failed: at warn, at most every [`WARN_EVERY`].
    fn stuck(&mut self, why: &HandOverError) {
        if !self.warned.warn_now() {
            tracing::debug!(error = %why, "handing anti-entropy records over failed");
            return;
        }
        tracing::warn!(error = %why, "handing anti-entropy records over failed; trying the next adopter");
    }

    /// One page of records handed to adopter number `tried`: how many left
    /// this node (0: nothing to hand, or it has not left).
    async fn round<L: Link>(
        &mut self,
        hints: &Arc<Hints>,
        link: &L,
        me: &NodeInfo,
    ) -> Result<usize, HandOverError> {
        let adopters = link.record_adopters();
        if adopters.is_empty() && !hints.cluster.current().has_left() {
            return Ok(0); // a member keeps its records
        }
        let tally = &hints.store.records;
        if tally.left().is_none() {
            let at = tally.begin();
            let n = hints.store.blocking(|s| count(&**s.engine())).await;
            tally.counted(at, n??);
        }
        let Some((records, next)) = self.page(hints).await? else {
            return Ok(0);
        };
        // A kept record comes round again on the next sweep.
        self.cursor = next;
        self.batch_id += 1;
        let adopters = super::by_replicated(&hints.cluster.current(), adopters, &records);
        let to =
            (adopters.get(self.tried % adopters.len().max(1))).ok_or(HandOverError::NoAdopter)?;
        let ack = offer(link, to, batch(me, &records, self.batch_id)).await?;
        let done: Vec<Recorded> = handed(&records, &ack).into_iter().cloned().collect();
        if done.is_empty() {
            return Err(HandOverError::NoneTaken {
                to: to.clone(),
                offered: records.len(),
            });
        }
        let n = done.len();
        let deleted = hints
            .store
            .blocking(move |s| s.engine().write(deletes(&done)))
            .await;
        deleted??;
        tally.handed(n as u64);
        tracing::info!(to = %to, records = n, "anti-entropy records handed over");
        Ok(n)
    }

    /// The next page of records after the cursor, starting over from the
    /// first once past the last; `None` when a sweep from the first finds
    /// none (the tally then says so).
    async fn page(
        &mut self,
        hints: &Arc<Hints>,
    ) -> Result<Option<(Vec<Recorded>, Option<Vec<u8>>)>, HandOverError> {
        let tally = &hints.store.records;
        for _ in 0..2 {
            let (after, at) = (self.cursor.take(), tally.begin());
            let from_start = after.is_none();
            let loaded = (hints.store)
                .blocking(move |s| load_page(&**s.engine(), after.as_deref(), MAX_BATCH))
                .await;
            let (records, next) = loaded??;
            if !records.is_empty() {
                return Ok(Some((records, next)));
            }
            if from_start {
                tally.none_left(at);
                return Ok(None);
            }
        }
        Ok(None)
    }
}

/// Sends `batch` to `to` on a stream of its own; its acknowledgement.
async fn offer<L: Link>(
    link: &L,
    to: &str,
    batch: StreamBatch,
) -> Result<StreamAck, HandOverError> {
    let mut stream = link.open(to, true).await?;
    stream.send(batch).await?;
    let ack = tokio::time::timeout(BATCH_TIMEOUT, stream.next_ack()).await;
    let ack = ack.map_err(|_| HandOverError::NoAck(to.to_string()))?;
    Ok(ack?)
}

/// How many records there are (one scan, when the hand-over begins).
fn count(engine: &dyn crate::engine::Engine) -> Result<u64, crate::repair::RepairError> {
    let (mut n, mut after) = (0u64, None::<Vec<u8>>);
    loop {
        let (page, next) = load_page(engine, after.as_deref(), 4096)?;
        n += page.len() as u64;
        match next {
            Some(k) => after = Some(k),
            None => return Ok(n),
        }
    }
}
