//! Writes planned on an older view (third review, item 2): the replica-side
//! check, pure.
//!
//! A coordinator places a client write in the view it loaded and sends the
//! record to the owners and pending replicas of its datacenter in that view
//! (`ReplicaWriteRequest.targets`, with the view's `layout_version`). By the
//! time the record arrives the replica may be on a newer view, one that
//! makes a joining node a pending replica of the key. The announce wait
//! (`movement::announce`) only delays the joiner's stream until every live
//! member *reports* that view; it proves nothing about writes planned
//! before, still in flight, nor about members it skipped as down. So each
//! replica checks: when its view is newer than the coordinator's and its
//! own owners and pending replicas of the key in its datacenter are not
//! all among the coordinator's targets, it refuses the write
//! ([`GeokvError::StaleView`], nothing applied). The coordinator then
//! fetches that replica's layout and sends the *same* record (same dot, no
//! second version) to the targets of the newer view, within the request's
//! deadline (`write.rs`).
//!
//! Why an acknowledgement that was accepted may still be counted: a replica
//! accepts only while its view is the coordinator's (or one whose targets
//! the write covers). Every live member is on the joining view before the
//! joiner streams, so a replica that accepted on the older view did so
//! before the stream began, and the stream (from the losing owner) carries
//! the write; a newer view's targets that the write covers get it directly.
//! A member the announce skipped as down and that still coordinates on the
//! old view is covered the same way as soon as one of its targets is on the
//! newer view. Left uncovered: a write all of whose targets are on the old
//! view while the joiner already streams, which needs every one of them
//! skipped by the announce (down for the joiner, yet up for the writer).
//!
//! The check and the apply run under one view ([`apply_checked`]): a
//! view installed after the check waits until the apply is done, so a
//! write is never applied while a view that would refuse it is in force
//! (review finding 4).
//!
//! "Newer" is the merge's order, not the version alone: two proposals of
//! one version (made concurrently) resolve by content digest, so the write
//! carries its layout's digest too, and a replica on the same version with
//! the winning digest treats a write planned on the losing one as planned
//! on an older view (review finding 2).
//!
//! A merge that repairs (read repair, anti-entropy) carries the layout
//! version and digest its coordinator decided it in and the **repair mark**
//! (`ReplicaWriteRequest.repair`, [`Planned::repair`]; its targets are
//! ignored): it is no planned write, so only [`check_read`]'s rule applies
//! to it: a
//! replica whose view supersedes that one and no longer replicates the key
//! (neither owner nor pending replica, in any datacenter) refuses it
//! instead of storing a copy where its cleanup has dropped, or will drop,
//! the range (issue 11). A replica that still replicates the key takes it.
//! A peer from before this rule checks such a merge as a write with no
//! targets: on any newer view it refuses it (the repair is retried by the
//! next pass; nothing is lost). The mark, not an empty target list, says
//! "repair": a write without it is a client write, checked against its
//! targets even when it names none, *and* by the repair rule (a peer from
//! before the mark sends its repair merges unmarked, with a version and no
//! targets: refused where the newer view places any owner or pending
//! replica of the key in this datacenter missing from the targets, or
//! where this node no longer replicates the key; retried by the next
//! pass, never accepted where either rule would refuse; review-fix-types
//! F2).
//!
//! Version 0 means "not checked": stream receivers merge records in any
//! view, and peers from before the field sent none (accepting them keeps a
//! rolling upgrade working, with the gap the field closes left open for
//! those peers only).
//!
//! Must not do I/O (the apply is the caller's closure).

use crate::error::GeokvError;
use crate::view::{Cluster, ClusterView};

/// A replica write as the replica checks it: what it is for, and the plan
/// it belongs to (the coordinator's layout version and its targets in the
/// replica's datacenter).
#[derive(Clone, Copy, Debug)]
pub struct Planned<'a> {
    pub keyspace: &'a str,
    pub key: &'a [u8],
    pub version: u64,
    /// The digest of that layout ([`ClusterView::digest_bytes`]); empty
    /// from peers that sent none.
    pub digest: &'a [u8],
    pub targets: &'a [String],
    /// A repair's merge (read repair, anti-entropy, movement), checked by
    /// [`check_read`]'s rule only; `false`: a client write, checked
    /// against `targets`.
    pub repair: bool,
}

impl Planned<'_> {
    /// The `kind` of its refusal in `geokv_stale_view_refusals_total`:
    /// `repair` for a repair's merge (read repair, a repair session, a
    /// movement), `write` for a planned write.
    pub fn kind(&self) -> &'static str {
        match self.repair {
            true => "repair",
            false => "write",
        }
    }
}

/// Counts one refusal of `kind` (`write`, `repair` or `read`) in
/// `geokv_stale_view_refusals_total`.
pub fn refused(kind: &'static str) {
    metrics::counter!("geokv_stale_view_refusals_total", "kind" => kind).increment(1);
}

/// A plan owned (to take onto a blocking thread or keep beside a copy):
/// the view a write or a copy was decided in (its layout version and
/// digest; an empty digest: the version alone) and every node it goes to
/// (none for a repair's merge). [`Decided::of_key`] is its [`Planned`].
#[derive(Clone, Debug, Default)]
pub struct Decided {
    pub version: u64,
    pub digest: Vec<u8>,
    pub targets: Vec<String>,
    /// A repair's merge ([`Planned::repair`]).
    pub repair: bool,
}

impl Decided {
    /// Copies decided in `view`, to `targets`.
    pub fn in_view(view: &ClusterView, targets: Vec<String>) -> Self {
        Decided {
            version: view.version(),
            digest: view.digest_bytes().to_vec(),
            targets,
            repair: false,
        }
    }

    /// The plan of a write of `keyspace`/`key` under this decision.
    pub fn of_key<'a>(&'a self, keyspace: &'a str, key: &'a [u8]) -> Planned<'a> {
        Planned {
            keyspace,
            key,
            version: self.version,
            digest: &self.digest,
            targets: &self.targets,
            repair: self.repair,
        }
    }
}

/// Runs `apply` only if [`check`] accepts `w` in the view in force, and
/// keeps that view in force until `apply` returns (installs wait: see
/// [`Cluster::with_current`]), so a view installed after the check cannot
/// slip in before the apply. Blocking: call it where `apply` may block.
pub fn apply_checked<T>(
    cluster: &Cluster,
    w: &Planned<'_>,
    apply: impl FnOnce() -> Result<T, GeokvError>,
) -> Result<T, GeokvError> {
    apply_checked_with(cluster, std::slice::from_ref(w), || {}, apply)
}

/// [`apply_checked`] of several writes applied together (a repair page):
/// `apply` runs only if every one of `ws` is accepted, so a refused page
/// applied nothing.
pub fn apply_all_checked<T>(
    cluster: &Cluster,
    ws: &[Planned<'_>],
    apply: impl FnOnce() -> Result<T, GeokvError>,
) -> Result<T, GeokvError> {
    apply_checked_with(cluster, ws, || {}, apply)
}

/// [`apply_all_checked`] with `between` run after the check, before the
/// apply (a test installs a view there).
fn apply_checked_with<T>(
    cluster: &Cluster,
    ws: &[Planned<'_>],
    between: impl FnOnce(),
    apply: impl FnOnce() -> Result<T, GeokvError>,
) -> Result<T, GeokvError> {
    cluster.with_current(|view| {
        if let Some((w, stale)) = ws.iter().find_map(|w| Some((w, check(view, w)?))) {
            refused(w.kind());
            return Err(stale);
        }
        between();
        // A cleanup that has not deleted yet sees it and keeps the ranges a
        // newer layout may give this node.
        if let Some(v) = ws.iter().map(|w| w.version).max() {
            cluster.note_planned(v);
        }
        apply()
    })
}

/// `None` when the replica (this node, in `view`) may apply `w`;
/// otherwise the refusal.
pub fn check(view: &ClusterView, w: &Planned<'_>) -> Option<GeokvError> {
    let (keyspace, key, planned_on, targets) = (w.keyspace, w.key, w.version, w.targets);
    let stale = || {
        Some(GeokvError::StaleView {
            planned_on,
            replica_version: view.version(),
        })
    };
    // A node that has left takes nothing, planned or not: whatever it
    // acknowledged would leave with it.
    if view.has_left() {
        return stale();
    }
    if planned_on == 0 || !supersedes(view, planned_on, w.digest) {
        return None;
    }
    if w.repair {
        // A repair's merge, no planned write (see the module docs).
        return check_placed(view, keyspace, key, planned_on, w.digest, Serves::Merge);
    }
    let Some(me) = view.me() else {
        // Not a member any more: the newer view placed the key elsewhere.
        return stale();
    };
    let token = crate::ring::token_of(key);
    let Ok(owners) = view.ring.replicas_for_token(keyspace, token) else {
        // A keyspace this view does not have: nothing to protect.
        return None;
    };
    let pending = view.pending.for_token(keyspace, token);
    let mine = owners.in_dc(&me.dc).iter().chain(
        pending
            .iter()
            .filter(|d| d.dc == me.dc)
            .flat_map(|d| d.nodes.iter()),
    );
    for &n in mine {
        if !targets.iter().any(|t| *t == view.ring.node(n).id) {
            return stale();
        }
    }
    // And the repair rule: an unmarked write may be a repair of a peer
    // from before the mark (a version, no targets), and a node that no
    // longer replicates the key must not count a copy its cleanup drops.
    // A pending replica takes writes (the merge rule, not the read rule).
    check_placed(view, keyspace, key, planned_on, w.digest, Serves::Merge)
}

/// `None` when the replica (this node, in `view`) may answer a read of
/// `keyspace`/`key` planned on layout `version`/`digest`; otherwise the
/// refusal: its view supersedes the coordinator's and it is no read owner
/// of the key there. An old owner that lost the key may have cleaned it up
/// (its "not found" would be a lie, review finding 3), and a pending
/// replica may miss a write acknowledged on the next version (M1).
pub fn check_read(
    view: &ClusterView,
    keyspace: &str,
    key: &[u8],
    version: u64,
    digest: &[u8],
) -> Option<GeokvError> {
    check_placed(view, keyspace, key, version, digest, Serves::Read)
}

/// What a request planned on an older view asks of this replica.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Serves {
    /// A read's answer: counted toward the level, so only a read owner of
    /// the key in this view may give it. A pending replica (a joiner before
    /// the switch, an old owner losing the key after it) is written to but
    /// not read from; answering a read planned before this view would let a
    /// coordinator that missed the switch count a node that may lack a write
    /// acknowledged on the next version (review of the switch, M1).
    Read,
    /// A repair's merge: any replica the key's writes reach may take it.
    Merge,
}

/// The shared rule of [`check_read`] and a repair's merge: `None` unless
/// this node's view supersedes the plan and does not place the key here
/// for `serves`.
fn check_placed(
    view: &ClusterView,
    keyspace: &str,
    key: &[u8],
    version: u64,
    digest: &[u8],
    serves: Serves,
) -> Option<GeokvError> {
    if version == 0 || !supersedes(view, version, digest) {
        return None;
    }
    let me = view.me_idx();
    let token = crate::ring::token_of(key);
    let Ok(owners) = view.ring.replicas_for_token(keyspace, token) else {
        return None;
    };
    let pending = || {
        let p = view.pending.for_token(keyspace, token);
        p.iter().any(|d| d.nodes.contains(&me))
    };
    let placed = owners.contains(me) || (serves == Serves::Merge && pending());
    if placed {
        None
    } else {
        Some(GeokvError::StaleView {
            planned_on: version,
            replica_version: view.version(),
        })
    }
}

/// Whether `view` wins the merge over the layout `version`/`digest` a
/// write was planned on: a higher version, or the same one with a higher
/// digest ([`crate::layout::Layout::merge`]). Without a digest (a peer
/// from before the field), versions alone decide.
pub fn supersedes(view: &ClusterView, version: u64, digest: &[u8]) -> bool {
    match version.cmp(&view.version()) {
        std::cmp::Ordering::Less => true,
        std::cmp::Ordering::Greater => false,
        std::cmp::Ordering::Equal => {
            <[u8; 16]>::try_from(digest).is_ok_and(|d| u128::from_be_bytes(d) < view.digest())
        }
    }
}

#[cfg(test)]
#[path = "stale_view/tests.rs"]
mod tests;

#[cfg(test)]
#[path = "stale_view/switch_tests.rs"]
mod switch_tests;

#[cfg(test)]
#[path = "stale_view/unmarked_tests.rs"]
mod unmarked_tests;

#[cfg(test)]
#[path = "stale_view/digest_tests.rs"]
mod digest_tests;
