//! Adopting a leaver's queued entries (issue 11: a decommission "hands its
//! queued hints and inter-DC stream backlog to another node of its DC").
//!
//! A node that has left the cluster still holds what it queued: hints for
//! its peers and its streams to the other datacenters. It delivers them
//! itself while their destination is up; for one that is down (a remote
//! datacenter in an outage, a dead peer) it would wait as long as the
//! outage lasts. Instead it sends those batches, marked with their queue
//! (`StreamBatch::adopt_for`), to a live member of its own datacenter
//! ([`adopters`]), which **adopts** them: it queues every entry durably
//! for the same destination, in one batch, and acknowledges them all as
//! durable; its own delivery task takes them from there. The leaver's
//! delivery task deletes them on that acknowledgement as after any
//! delivery, so nothing else deletes from the queue meanwhile.
//!
//! It also hands a queue over when its destination is up in gossip but
//! unreachable from the leaver alone: after [`HAND_OVER_AFTER`] stalls in
//! a row ([`hand_over`]), else the leave would wait as long as that lasts.
//!
//! Its anti-entropy records (keys a destination refused, hints past their
//! window) are handed over once it has left too (`records`), but not
//! bound to its datacenter: to any live Normal member
//! ([`record_adopters`]), one that replicates the records' ranges first
//! ([`by_replicated`]).
//!
//! Owns [`decide`] (pure: may this node adopt for that queue), [`adopters`],
//! [`record_adopters`] and [`by_replicated`] (pure: who may adopt, in
//! which order), [`hand_over`] (pure: does the leaver hand over)
//! and [`adopt`] (the receiving side's I/O).
//! Must not apply an adopted entry to a replica: it is delivered later,
//! from the adopter's queue, like any entry queued there.

use std::sync::Arc;

pub mod records;
pub mod tally;

use super::queue::{Dest, Lane};
use super::Hints;
use crate::engine::WriteBatch;
use crate::layout::NodeState;
use crate::proto::v1::internode::{EntryAck, StreamAck, StreamBatch, StreamEntry};
use crate::view::ClusterView;

/// Why a node does not adopt a batch (the sender keeps its entries).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("this node has left the cluster")]
    Left,
    #[error("no queue is called '{0}'")]
    UnknownQueue(String),
    #[error("entries for this node's own queue are delivered, not adopted")]
    Mine,
    #[error("'{0}' is not a destination this node queues for")]
    NotMine(String),
}

/// Whether the node `me` (of datacenter `my_dc`) adopts entries for the
/// queue labelled `label`, in `view`.
pub fn decide(view: &ClusterView, me: &str, my_dc: &str, label: &str) -> Result<Dest, Refusal> {
    if view.has_left() {
        return Err(Refusal::Left);
    }
    let dest = Dest::from_label(label).ok_or_else(|| Refusal::UnknownQueue(label.into()))?;
    match &dest {
        Dest::Node(id) if id == me => Err(Refusal::Mine),
        // A node queues hints only for members (a queue for anyone else
        // would have no delivery task).
        Dest::Node(id) if view.node(id).is_none() => Err(Refusal::NotMine(label.into())),
        // Streams go to the other datacenters only.
        Dest::Dc(dc) if dc == my_dc => Err(Refusal::NotMine(label.into())),
        Dest::Dc(dc) if !view.ring.topology().datacenter_names().contains(dc) => {
            Err(Refusal::NotMine(label.into()))
        }
        _ => Ok(dest),
    }
}

/// Stalls in a row ([`Scheduler::stalls_in_a_row`](super::schedule::Scheduler::stalls_in_a_row))
/// after which a node that has left hands a queue over although its
/// destination is believed up. A stall is a failed open or send (the
/// connect timeout is 5 s), a batch unacknowledged for 10 s, or entries
/// not durable there; with the back-off between them (50 ms doubling),
/// five in a row is at least ~1.5 s of attempts and up to a minute when
/// the destination hangs: past a restart's refused connections or one
/// slow batch, yet short beside an outage a leave would otherwise wait
/// out. Handing over early costs one hop, never an entry.
pub const HAND_OVER_AFTER: u32 = 5;

/// Whether a queue's next stream goes to an adopter rather than to its
/// destination: only with an adopter to ask (this node has left, see
/// [`adopters`]), and then when no node of the destination is believed
/// up (`dest_live`), or when delivering to it has stalled
/// [`HAND_OVER_AFTER`] times in a row (up in gossip, unreachable from
/// this node alone).
///
/// Past the threshold, every other reopen tries the destination again: the
/// stall count keeps growing while adopters fail too (all of them older
/// nodes refusing `Adopt` in a rolling upgrade, say), and a leaver that
/// asked only adopters then would never deliver to a destination that has
/// become reachable, and its leave would hang.
pub fn hand_over(adopter_live: bool, dest_live: bool, stalls_in_a_row: u32) -> bool {
    adopter_live
        && (!dest_live
            || (stalls_in_a_row >= HAND_OVER_AFTER && (stalls_in_a_row - HAND_OVER_AFTER) % 2 == 0))
}

/// The members of `my_dc` that may adopt entries for `dest`, in `view`:
/// Normal ones, neither this node nor `dest` itself, up (`is_up`).
pub fn adopters(
    view: &ClusterView,
    me: &str,
    my_dc: &str,
    dest: &Dest,
    is_up: impl Fn(&str) -> bool,
) -> Vec<String> {
    (live_normal(view, me, is_up))
        .filter(|n| n.dc == my_dc)
        .filter(|n| !matches!(dest, Dest::Node(d) if *d == n.id))
        .map(|n| n.id.clone())
        .collect()
}

/// The members of `view` but `me` that are Normal and up (`is_up`).
fn live_normal<'v>(
    view: &'v ClusterView,
    me: &'v str,
    is_up: impl Fn(&str) -> bool + 'v,
) -> impl Iterator<Item = &'v crate::topology::NodeInfo> + 'v {
    let normal = |id: &str| {
        view.layout
            .node(id)
            .is_some_and(|(_, _, n)| n.state == NodeState::Normal)
    };
    (view.members().iter()).filter(move |n| n.id != me && normal(&n.id) && is_up(&n.id))
}

/// The members that may adopt the anti-entropy records of `me` (of
/// datacenter `my_dc`), in `view`: every Normal member but `me` that is up
/// (`is_up`), those of `my_dc` first. Unlike a queue's entries, a record
/// is not bound to a datacenter's stream: the adopter's recorded pass
/// repairs the range with all its replicas, wherever it runs (review M3 of
/// stop 23: offered to `my_dc` only, the last node of a datacenter without
/// replicas kept its records, and its leave waited forever).
pub fn record_adopters(
    view: &ClusterView,
    me: &str,
    my_dc: &str,
    is_up: impl Fn(&str) -> bool,
) -> Vec<String> {
    let mut v: Vec<&crate::topology::NodeInfo> = live_normal(view, me, is_up).collect();
    v.sort_by_key(|n| n.dc != my_dc);
    v.into_iter().map(|n| n.id.clone()).collect()
}

/// `adopters` (as [`record_adopters`] lists them) ordered for a page of
/// `records`: those that replicate more of the records' ranges in `view`
/// first, in the given order otherwise. A replica's recorded pass compares
/// its own copy with each other replica; an adopter that replicates none
/// of a range runs a session between every other replica and each target
/// (every pair without one; `repair::plan::pairs`), Merkle trees and rows
/// crossing the WAN to it and back when it sits in another datacenter.
pub fn by_replicated(
    view: &ClusterView,
    adopters: Vec<String>,
    records: &[crate::repair::plan::Recorded],
) -> Vec<String> {
    let replicated = |id: &str| {
        let Some(n) = view.node(id) else { return 0 };
        (records.iter())
            .filter(|r| {
                (view.ring.replicas_for_token(&r.keyspace, r.token))
                    .is_ok_and(|s| s.contains(n.idx))
            })
            .count()
    };
    let mut ranked: Vec<(usize, String)> = (adopters.into_iter())
        .map(|id| (replicated(&id), id))
        .collect();
    ranked.sort_by_key(|(n, _)| std::cmp::Reverse(*n)); // stable
    ranked.into_iter().map(|(_, id)| id).collect()
}

/// Every entry of a batch acknowledged alike: durable, or not applied (the
/// sender keeps it).
fn acks(batch_id: u64, seqs: &[u64], durable: bool) -> StreamAck {
    StreamAck {
        batch_id,
        entries: (seqs.iter())
            .map(|&seq| EntryAck {
                seq,
                durable,
                ..Default::default()
            })
            .collect(),
    }
}

/// A batch meant for adoption that came as a delivery (on `Stream`): not
/// applied, every entry kept by its sender.
pub fn refuse(batch: StreamBatch) -> StreamAck {
    let seqs: Vec<u64> = batch.entries.iter().map(|e| e.seq).collect();
    acks(batch.batch_id, &seqs, false)
}

/// Adopts `batch` (from the `Adopt` call): every entry queued for the
/// destination `adopt_for` names in one committed batch and acknowledged
/// as durable, or none (each acknowledged as not applied, so the sender
/// keeps it).
pub async fn adopt(hints: &Arc<Hints>, me: &str, my_dc: &str, batch: StreamBatch) -> StreamAck {
    if batch.adopt_for == records::LABEL {
        return records::adopt(hints, batch).await;
    }
    let batch_id = batch.batch_id;
    let seqs: Vec<u64> = batch.entries.iter().map(|e| e.seq).collect();
    let acks = |durable: bool| acks(batch_id, &seqs, durable);
    let dest = match decide(&hints.cluster.current(), me, my_dc, &batch.adopt_for) {
        Ok(dest) => dest,
        Err(why) => {
            tracing::warn!(from = %batch.source_node, queue = %batch.adopt_for, %why, "not adopting");
            return acks(false);
        }
    };
    // An entry that does not belong in the queue is refused (the leaver
    // records its key for anti-entropy), not queued where nobody would
    // deliver it to its node.
    let (entries, misfits): (Vec<_>, Vec<_>) =
        (batch.entries.into_iter()).partition(|e| fits(&dest, e));
    let misfits: Vec<u64> = misfits.iter().map(|e| e.seq).collect();
    let mut wb = WriteBatch::new();
    let mut counted = (0u64, 0u64);
    for mut e in entries {
        // Delivered from the backlog here: every replica there applies it,
        // and nobody waits on it any more.
        e.need_acks = 0;
        e.coordinator_pending = None;
        // Queued as of when the leaver queued it: the hint window runs on.
        let created = e.created_ms;
        if let Some((_, bytes)) =
            (hints.store).enqueue_as_of(&dest, Lane::Backlog, e, created, &mut wb)
        {
            counted = (counted.0 + 1, counted.1 + bytes);
        }
    }
    let written = hints.store.blocking(move |s| s.write(wb)).await;
    if !matches!(written, Ok(Ok(()))) {
        hints
            .store
            .counts
            .sub(&dest, Lane::Backlog, counted.0, counted.1);
        tracing::warn!(from = %batch.source_node, queue = %dest.label(), "could not adopt a batch");
        return acks(false);
    }
    metrics::counter!("geokv_hints_adopted_total", "dest" => dest.label())
        .increment((seqs.len() - misfits.len()) as u64);
    hints.notify_queue(&dest, Lane::Backlog);
    let mut ack = acks(true);
    for a in ack.entries.iter_mut().filter(|a| misfits.contains(&a.seq)) {
        (a.durable, a.refused) = (false, true);
    }
    ack
}

/// Whether `entry` belongs in the queue for `dest`: a node hint names
/// that node, an inter-DC stream entry names none.
pub fn fits(dest: &Dest, entry: &StreamEntry) -> bool {
    match dest {
        Dest::Node(id) => entry.target_node == *id,
        Dest::Dc(_) => entry.target_node.is_empty(),
    }
}

#[cfg(test)]
#[path = "adopt_tests.rs"]
mod tests;
