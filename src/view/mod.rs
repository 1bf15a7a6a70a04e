//! The current view of the cluster: one layout version and everything
//! derived from it.
//!
//! Owns [`ClusterView`] (a [`Layout`] with its [`Ring`], [`PendingRanges`]
//! and this node's place in them, derived once, immutable) and [`Cluster`],
//! the node's handle on the view in force: an `ArcSwap` readers load without
//! locking, a `watch` for subscribers, and the only two ways a new layout
//! gets in ([`Cluster::install`], [`Cluster::propose`]), which persist it in
//! `meta` before swapping (`store.rs`). A request loads one view
//! ([`Cluster::current`]) and uses it from start to end; a [`NodeIdx`] is
//! only meaningful within the view it came from, so long-lived state keys
//! nodes by id.
//!
//! `sync.rs` is the network side (layout versions on gossip, `GetLayout`,
//! `PushLayout`, peers and gossip members following the view); `http.rs` the
//! admin side (`/layout`, `/keyspaces`, `geokv ring`'s ownership).
//! A proposal is a compare-and-set on the cluster (Paxos per version,
//! `crate::layout::consensus`): `cas.rs` drives it, `acceptor.rs` is this
//! node's durable acceptor state and the CAS wire form.
//!
//! Must not: decide movements or hold request logic; `Cluster` itself must
//! not talk to peers (the CAS goes through the net the node sets, a
//! chosen layout is pushed through the hook `sync` sets).

pub mod acceptor;
pub mod cas;
mod cas_net;
pub mod catch_up;
mod cluster;
mod errors;
pub mod guard;
pub mod http;
mod install;
pub mod instances;
mod learn;
pub mod lineage;
pub mod staging;
pub mod stale_view;
pub mod store;
pub mod sync;

#[cfg(test)]
mod cas_acceptor_set_tests;
#[cfg(test)]
mod cas_applied_tests;
#[cfg(test)]
mod cas_behind_tests;
#[cfg(test)]
mod cas_fork_tests;
#[cfg(test)]
mod cas_guard_prop_tests;
#[cfg(test)]
mod cas_guard_tests;
#[cfg(test)]
mod cas_holder_proof_tests;
#[cfg(test)]
mod cas_loopback_tests;
#[cfg(test)]
mod cas_proof_tests;
#[cfg(test)]
pub(crate) mod cas_testing;
#[cfg(test)]
mod cas_tests;
#[cfg(test)]
mod catch_up_tests;
#[cfg(test)]
mod fork_tests;
#[cfg(test)]
mod staging_tests;
#[cfg(test)]
mod sync_tests;
#[cfg(test)]
mod tests;

pub use cluster::{Cluster, Installed};
pub use errors::{NotServing, ProposeError, ViewError};
pub use guard::Source;

use std::sync::Arc;

use crate::layout::Layout;
use crate::ring::{NotAMember, PendingRanges, Ring};
use crate::topology::{NodeIdx, NodeInfo};

/// A [`NodeIdx`] no ring has: what [`ClusterView::me_idx`] answers for a
/// node that is not a member of the view (it then matches no replica).
pub const NOT_A_MEMBER: NodeIdx = NodeIdx::NONE;

/// One layout version and what is derived from it. Immutable; shared in an
/// `Arc` by every request that loaded it.
#[derive(Debug)]
pub struct ClusterView {
    pub layout: Arc<Layout>,
    /// Placement of the layout's members ([`Ring::from_layout`]).
    pub ring: Arc<Ring>,
    /// The pending replicas of the movements in progress.
    pub pending: Arc<PendingRanges>,
    /// This node in `ring`, if it is a member.
    me: Option<NodeIdx>,
    me_id: String,
    /// [`Layout::digest`], computed once.
    digest: u128,
}

impl ClusterView {
    /// Derives the view of `layout` as seen by node `me`.
    pub fn derive(layout: Layout, me: &str) -> Result<ClusterView, NotAMember> {
        let ring = Ring::from_layout(&layout);
        let pending = PendingRanges::of_layout(&layout)?;
        let me_idx = ring.node_by_id(me).map(|n| n.idx);
        let digest = layout.digest();
        Ok(ClusterView {
            digest,
            layout: Arc::new(layout),
            ring: Arc::new(ring),
            pending: Arc::new(pending),
            me: me_idx,
            me_id: me.to_string(),
        })
    }

    /// The layout version this view was derived from.
    pub fn version(&self) -> u64 {
        self.layout.version
    }

    /// The layout's content digest ([`Layout::digest`]).
    pub fn digest(&self) -> u128 {
        self.digest
    }

    /// [`ClusterView::digest`] big endian, as on the wire.
    pub fn digest_bytes(&self) -> [u8; 16] {
        self.digest.to_be_bytes()
    }

    /// Where this view stands in the convergence order (the higher
    /// version, then the higher digest, wins: [`Layout::merge`]).
    pub fn rank(&self) -> (u64, u128) {
        (self.version(), self.digest)
    }

    /// This node, if it is a member (Joining, Normal or Leaving) of the view.
    pub fn me(&self) -> Option<&NodeInfo> {
        self.me.map(|i| self.ring.node(i))
    }

    /// Whether this node has left the cluster in this view (Left or
    /// Removed): it serves nothing and takes no more writes.
    pub fn has_left(&self) -> bool {
        use crate::layout::NodeState::{Left, Removed};
        let state = self.layout.node(&self.me_id).map(|(_, _, n)| n.state);
        matches!(state, Some(Left | Removed))
    }

    /// This node's id.
    pub fn me_id(&self) -> &str {
        &self.me_id
    }

    /// This node's index in [`ClusterView::ring`], or [`NOT_A_MEMBER`].
    pub fn me_idx(&self) -> NodeIdx {
        self.me.unwrap_or(NOT_A_MEMBER)
    }

    /// The member called `id`.
    pub fn node(&self, id: &str) -> Option<&NodeInfo> {
        self.ring.node_by_id(id)
    }

    /// Every member (Joining, Normal, Leaving), in layout order.
    pub fn members(&self) -> &[NodeInfo] {
        self.ring.nodes()
    }
}
