//! Node hints whose destination no longer takes them: it has left the
//! cluster (Left after a decommission, Removed after a removenode or a
//! replacement), or it is a member that no longer replicates the hint's
//! key (the hint was planned on an older view; the receiver refuses it in
//! its own view, see `receive::for_node`, since applying it could put the
//! record back on an old owner that cleaned the range up). Nobody would
//! deliver them: a node that left is gone, and after a restart no delivery
//! task is started for a non-member. Left alone they would also keep a
//! leaver "draining" forever. So they are **redirected**: each entry
//! carries the full record (a sibling set with its clocks), and merging it
//! is idempotent, so it is handed to the key's current replicas (and
//! pending replicas) in the destination's datacenter — a durable hint
//! each, or a merge here when this node is one — and then deleted. An
//! entry that cannot be redirected (its keyspace is gone, it has no
//! replica there, or it cannot be decoded) is dropped, counted and
//! recorded for anti-entropy.
//!
//! This runs on every node, in place of the destination's delivery task
//! (the task turns into [`drain`] once its node has left), so nothing else
//! deletes from the queue meanwhile.
//!
//! Owns [`fate`] (pure: the view in, the decision out), [`drain`] (the
//! queue of a node that left) and [`sift`] (a member's page, before it is
//! sent).
//! Must not send anything itself: redirected hints go through the queues.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::failure::HandOverError;
use super::page::Page;
use super::queue::{Dest, Lane};
use super::store::Loaded;
use super::Hints;
use crate::layout::NodeState;
use crate::ring::token_of;
use crate::version::SiblingSet;
use crate::view::ClusterView;

/// Entries redirected per page.
const PAGE: usize = 256;

/// What becomes of a node hint for `dest` in a view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fate {
    /// `dest` replicates the key (an owner or a pending replica), or is
    /// not known yet (a newer view may add it): deliver as usual.
    Deliver,
    /// `dest` has left, or no longer replicates the key (the hint was
    /// planned on an older view): hand the record to these nodes (the
    /// key's replicas and pending replicas in `dest`'s datacenter), then
    /// delete it.
    Redirect(Vec<String>),
    /// As `Redirect`, but the key has no replica in `dest`'s datacenter
    /// (or its keyspace is gone): drop it, recorded for anti-entropy.
    Drop,
}

/// Whether `dest` has left the cluster in `view` (Left or Removed).
pub fn gone(view: &ClusterView, dest: &str) -> bool {
    view.layout
        .node(dest)
        .is_some_and(|(_, _, n)| matches!(n.state, NodeState::Left | NodeState::Removed))
}

/// The fate of a hint for `dest` about `key` of `keyspace` in `view`.
/// A member `dest` that replicates the key gets it; one that does not
/// (it lost the range, and its own view refuses the hint: see
/// `receive::for_node`) has it redirected like a node that left, so a
/// hint planned on an older view reaches the key's replicas now.
pub fn fate(view: &ClusterView, dest: &str, keyspace: &str, key: &[u8]) -> Fate {
    let Some((dc, _, node)) = view.layout.node(dest) else {
        return Fate::Deliver;
    };
    let left = matches!(node.state, NodeState::Left | NodeState::Removed);
    let Ok(set) = view.ring.replicas(keyspace, key) else {
        // A member keeps hints for a keyspace this view lacks (a newer
        // view may have it); for a node that left nobody will take them.
        return if left { Fate::Drop } else { Fate::Deliver };
    };
    let mut owners: Vec<String> = set
        .all()
        .map(|n| view.ring.node(n))
        .filter(|n| n.dc == dc)
        .map(|n| n.id.clone())
        .collect();
    let pending = view.pending.for_token(keyspace, token_of(key));
    for p in pending.iter().filter(|p| p.dc == dc) {
        for &i in &p.nodes {
            let id = &view.ring.node(i).id;
            if !owners.contains(id) {
                owners.push(id.clone());
            }
        }
    }
    if !left && owners.iter().any(|o| o == dest) {
        Fate::Deliver
    } else if owners.is_empty() {
        Fate::Drop
    } else {
        Fate::Redirect(owners)
    }
}

/// The entries of `page` (just loaded from the `lane` of `dest`, a
/// member's queue) that `dest` still replicates in the view in force; the
/// others are redirected to the key's replicas (or dropped, recorded)
/// and deleted first, so they are never sent to a node that would refuse
/// them. Should that fail part-way, those not taken out yet are returned
/// with the page (the receiver keeps refusing them, and the next load
/// tries again).
pub(crate) async fn sift(
    hints: &Arc<Hints>,
    me: &str,
    dest: &Dest,
    lane: Lane,
    page: Page,
) -> Page {
    let view = hints.cluster.current();
    let stray = |l: &Loaded| fate(&view, dest.name(), &l.entry.keyspace, &l.entry.key);
    if page.entries.iter().all(|l| stray(l) == Fate::Deliver) {
        return page;
    }
    let Page {
        range,
        entries,
        held,
        clear_to,
    } = page;
    let (keep, out): (Vec<Loaded>, Vec<Loaded>) =
        entries.into_iter().partition(|l| stray(l) == Fate::Deliver);
    let placed = place(hints, &view, me, dest, lane, out.clone()).await;
    match placed.failed {
        None => Page {
            range,
            entries: keep,
            held,
            clear_to,
        },
        Some(e) => {
            tracing::warn!(dest = %dest.label(), error = %e, "redirecting stray hints; sending the rest as they are");
            let mut entries = keep;
            // The first `taken` are out of the queue: never sent or
            // counted out again.
            entries.extend(out.into_iter().skip(placed.taken));
            entries.sort_by(|a, b| a.key.cmp(&b.key));
            Page {
                range,
                entries,
                held,
                clear_to,
            }
        }
    }
}

/// Redirects the queue of `dest` (a node that has left) until `shutdown`;
/// `me` is this node's id.
pub(crate) async fn drain(
    hints: Arc<Hints>,
    me: String,
    dest: Dest,
    mut shutdown: watch::Receiver<bool>,
) {
    tracing::info!(dest = %dest.label(), "node has left the cluster: redirecting its hints to the key's replicas");
    while !*shutdown.borrow() {
        let pause = match redirect_page(&hints, &me, &dest).await {
            Ok(0) => Duration::from_secs(1),
            Ok(_) => continue,
            Err(e) => {
                tracing::warn!(dest = %dest.label(), error = %e, "redirecting hints; retrying");
                Duration::from_secs(2)
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = hints.notified(&dest, Lane::Backlog) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Redirects (or drops) one page of `dest`'s queue; how many entries it
/// took out.
async fn redirect_page(hints: &Arc<Hints>, me: &str, dest: &Dest) -> Result<usize, HandOverError> {
    let (d, from) = (dest.clone(), dest.prefix(Lane::Backlog));
    let page = (hints.store)
        .blocking(move |s| s.load_page(&d, Lane::Backlog, from, Vec::new(), PAGE))
        .await??;
    let view = hints.cluster.current();
    let placed = place(hints, &view, me, dest, Lane::Backlog, page.entries).await;
    match placed.failed {
        None => Ok(placed.taken),
        Some(e) => Err(e),
    }
}

/// What [`place_as`] did: it took the first `taken` entries it was given
/// out of the queue, and stopped early on `failed`, if set.
struct Placed {
    taken: usize,
    failed: Option<HandOverError>,
}

/// Hands each of `entries` (from the `lane` of `dest`'s queue) over as
/// its [`fate`] in `view` says: redirected (a durable copy first) or
/// dropped and recorded, then deleted from the queue; an entry to deliver
/// ends the pass.
///
/// A copy that fails ends the pass too, but the entries copied before it
/// are still deleted (review Medium of stop 20: the next pass would copy
/// them again, duplicates in the other replicas' queues). Only the
/// replicas the failing entry was copied to before the failure can get
/// it twice.
async fn place(
    hints: &Arc<Hints>,
    view: &ClusterView,
    me: &str,
    dest: &Dest,
    lane: Lane,
    entries: Vec<Loaded>,
) -> Placed {
    let decide = |l: &Loaded| fate(view, dest.name(), &l.entry.keyspace, &l.entry.key);
    place_as(hints, view, me, dest, lane, entries, decide).await
}

/// [`place`] with each entry's fate decided by `decide` (in `view`).
async fn place_as(
    hints: &Arc<Hints>,
    view: &ClusterView,
    me: &str,
    dest: &Dest,
    lane: Lane,
    entries: Vec<Loaded>,
    decide: impl Fn(&Loaded) -> Fate,
) -> Placed {
    let (mut moved, mut dropped, mut failed) = (Vec::new(), Vec::new(), None);
    'entries: for l in entries {
        let set = SiblingSet::decode(&l.entry.record);
        match (decide(&l), set) {
            (Fate::Deliver, _) => break,
            (Fate::Redirect(owners), Ok(set)) => {
                let decided = super::moving::Decided::in_view(view, owners.clone());
                for o in owners {
                    let copied = super::moving::copy(hints, me, &o, &l.entry, &set, &decided);
                    if let Err(e) = copied.await {
                        failed = Some(e.into());
                        break 'entries;
                    }
                }
                moved.push(l);
            }
            _ => dropped.push(l),
        }
    }
    let n = moved.len() + dropped.len();
    if n == 0 {
        return Placed { taken: 0, failed };
    }
    let label = dest.label();
    metrics::counter!("geokv_hints_redirected_total", "dest" => label.clone())
        .increment(moved.len() as u64);
    metrics::counter!("geokv_hints_orphaned_total", "dest" => label)
        .increment(dropped.len() as u64);
    let d = dest.clone();
    let removed = (hints.store)
        .blocking(move |s| s.remove(&d, lane, &moved, &dropped))
        .await;
    match removed {
        Ok(Ok(())) => Placed { taken: n, failed },
        Ok(Err(e)) => Placed {
            taken: 0,
            failed: Some(e.into()),
        },
        Err(e) => Placed {
            taken: 0,
            failed: Some(e.into()),
        },
    }
}

#[cfg(test)]
mod tests;
