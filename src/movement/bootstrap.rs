//! Before a joining node starts: fetch the layout from a seed peer, allocate
//! balanced tokens, propose `begin_join` to the members of the seed's layout
//! (the layout CAS, `view::cas`), persist the chosen layout in this node's
//! meta and hand it to the seed, so the node then starts as a member (Joining)
//! and [`super::ops::join`] streams its ranges and finishes the join.
//!
//! Owns [`prepare_join`]. A node whose meta already holds a layout naming it
//! (a restart, joined or not) skips all this: the persisted layout wins.
//! Must not stream or serve.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::ops::JoinRequest;
use crate::engine::Engine;
use crate::layout::{Layout, LayoutError, Movement, NewNode, NodeState};
use crate::ring::{allocate_tokens, allocation_rf, AllocateError};
use crate::topology::NodeInfo;
use crate::transport::faults::Faults;
use crate::transport::{Peers, TransportError};
use crate::view::lineage::{self, Lineage};
use crate::view::store;
use crate::view::sync::{from_message, to_message_with};

const CALL: Duration = Duration::from_secs(5);

/// A join could not be proposed.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// The source names the seed (`seed@ADDR`, `tls::seed_id`).
    #[error("{source}")]
    Seed {
        seed: SocketAddr,
        source: TransportError,
    },
    #[error("the seed's layout: {0}")]
    Decode(String),
    /// Among others a movement already in progress in the datacenter.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error(transparent)]
    Allocate(#[from] AllocateError),
    #[error("layout in meta: {0}")]
    Store(#[from] store::StoreError),
    /// Refused (another change won the version) or undecided.
    #[error("{}{}", .0, resume_hint(.0))]
    Propose(#[from] crate::view::ProposeError),
}

/// The layout this node should start with: the persisted one if it names
/// `req.node.id`, else the seed's with this node's join begun (proposed to
/// the seed and persisted here), with `weight` × the layout's vnodes per
/// weight tokens (`req.tokens` is ignored).
pub async fn prepare_join(
    engine: &Arc<dyn Engine>,
    seed: SocketAddr,
    req: &JoinRequest,
    weight: f64,
    tls: &crate::transport::tls::Tls,
) -> Result<Layout, BootstrapError> {
    if let Some(l) = store::load(&**engine)? {
        if l.node(&req.node.id).is_some() {
            return Ok(l);
        }
    }
    let me = NodeInfo::from_new(&req.dc, &req.rack, &req.node);
    // The seed is known by address only: with TLS any node certificate of
    // the cluster CA is accepted for it (`tls::seed_id`), and the seed
    // checks ours.
    let seed_node = NodeInfo {
        id: crate::transport::tls::seed_id(seed),
        peer_address: seed,
        ..me.clone()
    };
    let peers = Peers::new(me, Arc::new(Faults::new(false)), tls);
    let err = |source| BootstrapError::Seed { seed, source };
    let msg = peers.get_layout(&seed_node, CALL).await.map_err(err)?;
    let now =
        from_message(&seed_node.id, &msg).map_err(|e| BootstrapError::Decode(e.to_string()))?;
    let own = Movement::Join {
        node: req.node.id.clone(),
    };
    let mine = |l: &Layout| own_entry(l, &req.node, Some(&req.dc), Some(&req.rack), &own);
    if mine(&now) {
        // An earlier run's join was chosen, but this node never kept it
        // (a crash, a timeout after the decision): resume it.
        // With the seed's lineage of it (its proof, if the seed holds one).
        lineage::save_synced(&**engine, &now, &Lineage::from_message(&msg))?;
        tracing::info!(node = %req.node.id, version = now.version, "join resumed");
        return Ok(now);
    }
    let rf = allocation_rf(&now, &req.dc);
    let count = (f64::from(now.vnodes_per_weight) * weight).round().max(1.0) as usize;
    let tokens = allocate_tokens(&now, &req.dc, &req.rack, count, rf)?;
    let next = now.begin_join(req.node.clone(), &req.dc, &req.rack, &tokens)?;
    let peers = Arc::new(peers);
    let (chosen, lineage) =
        crate::view::cas::propose_outside(&peers, &req.node.id, &now, next, &mine).await?;
    // Chosen: kept here first, so a restart resumes it whatever happens next.
    lineage::save_synced(&**engine, &chosen, &lineage)?;
    push_chosen(&peers, &seed_node, &chosen, &lineage).await;
    tracing::info!(node = %req.node.id, version = chosen.version, tokens = tokens.len(), "join begun");
    Ok(chosen)
}

/// Hands the seed a layout chosen here with its `lineage` (the proof of
/// choice this node alone saw: without it, an acceptor that accepted
/// another value refuses the layout on the seed's word, review-layout31
/// H1), best-effort: the node gossips it once it runs.
pub(super) async fn push_chosen(
    peers: &Peers,
    seed: &NodeInfo,
    chosen: &Layout,
    lineage: &Lineage,
) {
    let msg = to_message_with(chosen, lineage);
    if let Err(e) = peers.push_layout(seed, msg, CALL).await {
        tracing::warn!(error = %e, "the seed did not take the new layout; gossip will carry it");
    }
}

/// What an undecided bootstrap says after the CAS error.
pub(super) fn resume_hint(e: &crate::view::ProposeError) -> &'static str {
    match e {
        crate::view::ProposeError::Cas(c) if c.maybe_applied() => {
            "; re-run the same command (same id, addresses and data directory) to resume it"
        }
        _ => "",
    }
}

/// `layout` already holds this node's own entry in progress: `new`
/// Joining with the same addresses, in `dc` and `rack` when given, its
/// datacenter's movement `expected` (its join, or its replacement of the
/// dead node), still reading from the old owners. A re-run of the same
/// command adopts it; after the switch of reads an empty node would serve
/// reads of its ranges with nothing streamed, so it is refused.
pub(crate) fn own_entry(
    layout: &Layout,
    new: &NewNode,
    dc: Option<&str>,
    rack: Option<&str>,
    expected: &Movement,
) -> bool {
    let Some((d, r, n)) = layout.node(&new.id) else {
        return false;
    };
    let addresses = (n.client_address, n.peer_address, n.admin_address);
    n.state == NodeState::Joining
        && !layout.reads_new(d)
        && !layout.aborting.contains(d)
        && addresses == (new.client_address, new.peer_address, new.admin_address)
        && dc.is_none_or(|dc| dc == d)
        && rack.is_none_or(|rack| rack == r)
        && layout.movements.get(d) == Some(expected)
}
