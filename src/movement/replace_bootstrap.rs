//! Before a replacing node starts (`geokv node --replace DEAD --join SEED`):
//! fetch the seed's layout, refuse unless the dead node is a Normal member
//! that is really dead, propose `begin_replace` to the seed and persist the
//! result, so the node starts as a member (Joining, with the dead node's
//! tokens) and [`super::replace::run_replace`] copies its ranges.
//!
//! "Dead" is checked twice: the seed's failure detector (its client
//! `Status`: φ-accrual over gossip) must say down, and the dead node's
//! internode port must not answer a `GetLayout` itself. A restart (the
//! persisted layout names this node) skips all this. Owns
//! [`prepare_replace`]. Must not stream or serve.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::engine::Engine;
use crate::layout::{Layout, LayoutError, Movement, NewNode};
use crate::topology::NodeInfo;
use crate::transport::faults::Faults;
use crate::transport::{Peers, TransportError};
use crate::view::lineage::{self, Lineage};
use crate::view::store;
use crate::view::sync::from_message;

const CALL: Duration = Duration::from_secs(5);

/// A replacement could not be begun.
#[derive(Debug, thiserror::Error)]
pub enum ReplaceBootstrapError {
    /// The source names the seed (`seed@ADDR`, `tls::seed_id`).
    #[error("{source}")]
    Seed {
        seed: SocketAddr,
        source: TransportError,
    },
    #[error("the seed's layout: {0}")]
    Decode(String),
    #[error("node '{0}' is not in the cluster's layout; nothing to replace")]
    Unknown(String),
    #[error("node '{dead}' is alive ({why}); only a dead node can be replaced (decommission a live one)")]
    Alive { dead: String, why: String },
    #[error("cannot ask the seed whether '{dead}' is down: {detail}")]
    NoVerdict { dead: String, detail: String },
    /// Among others a movement already in progress in the datacenter.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error("layout in meta: {0}")]
    Store(#[from] store::StoreError),
    /// Refused (another change won the version) or undecided.
    #[error("{}{}", .0, super::bootstrap::resume_hint(.0))]
    Propose(#[from] crate::view::ProposeError),
}

/// The layout this node should start with: the persisted one if it names
/// `new.id`, else the seed's with `begin_replace(dead, new)` (proposed to
/// the seed and persisted here).
pub async fn prepare_replace(
    engine: &Arc<dyn Engine>,
    seed: SocketAddr,
    dead: &str,
    new: &NewNode,
    tls: &crate::transport::tls::Tls,
) -> Result<Layout, ReplaceBootstrapError> {
    if let Some(l) = store::load(&**engine)? {
        if l.node(&new.id).is_some() {
            return Ok(l);
        }
    }
    let me = NodeInfo::from_new("", "", new);
    // As a join's bootstrap (see `bootstrap.rs`).
    let seed_node = NodeInfo {
        id: crate::transport::tls::seed_id(seed),
        peer_address: seed,
        ..me.clone()
    };
    let peers = Peers::new(me, Arc::new(Faults::new(false)), tls);
    let err = |source| ReplaceBootstrapError::Seed { seed, source };
    let decode = |e: String| ReplaceBootstrapError::Decode(e);
    let msg = peers.get_layout(&seed_node, CALL).await.map_err(err)?;
    let now = from_message(&seed_node.id, &msg).map_err(|e| decode(e.to_string()))?;
    let Some((dc, rack, d)) = now.node(dead) else {
        return Err(ReplaceBootstrapError::Unknown(dead.into()));
    };
    let dead_info = NodeInfo::from_layout(dc, rack, d);
    // Forced since (`removenode DEAD --force`), it is still this node's.
    let own = Movement::Replace {
        dead: dead.into(),
        new: new.id.clone(),
        force: super::replace::forced(&now, &new.id),
    };
    let mine = |l: &Layout| super::bootstrap::own_entry(l, new, None, None, &own);
    if mine(&now) {
        // An earlier run's replacement was chosen but not kept here.
        // With the seed's lineage of it (its proof, if the seed holds one).
        lineage::save_synced(&**engine, &now, &Lineage::from_message(&msg))?;
        tracing::info!(node = %new.id, dead, version = now.version, "replacement resumed");
        return Ok(now);
    }
    check_dead(&peers, &now, seed, &dead_info).await?;
    let next = now.begin_replace(dead, new.clone())?;
    let peers = Arc::new(peers);
    let (chosen, lineage) =
        crate::view::cas::propose_outside(&peers, &new.id, &now, next, &mine).await?;
    lineage::save_synced(&**engine, &chosen, &lineage)?;
    super::bootstrap::push_chosen(&peers, &seed_node, &chosen, &lineage).await;
    tracing::info!(node = %new.id, dead, version = chosen.version, "replacement begun");
    Ok(chosen)
}

/// Refuses unless the seed believes `dead` down and `dead` does not answer.
async fn check_dead(
    peers: &Peers,
    layout: &Layout,
    seed: SocketAddr,
    dead: &NodeInfo,
) -> Result<(), ReplaceBootstrapError> {
    if peers.get_layout(dead, Duration::from_secs(2)).await.is_ok() {
        return Err(ReplaceBootstrapError::Alive {
            dead: dead.id.clone(),
            why: format!("it answers on {}", dead.peer_address),
        });
    }
    let no_verdict = |detail: String| ReplaceBootstrapError::NoVerdict {
        dead: dead.id.clone(),
        detail,
    };
    let Some((_, _, s)) = layout.nodes().find(|(_, _, n)| n.peer_address == seed) else {
        return Err(no_verdict(format!("{seed} is no member's peer address")));
    };
    // The seed's client port, over TLS as its owner node when TLS is on.
    let ch = peers.tls().endpoint(&s.id, s.client_address);
    let mut kv = crate::proto::v1::kv_client::KvClient::new(ch);
    let ask = kv.status(crate::proto::v1::StatusRequest {});
    let status = tokio::time::timeout(CALL, ask)
        .await
        .map_err(|_| {
            no_verdict(format!(
                "no answer from {} within {CALL:?}",
                s.client_address
            ))
        })?
        .map_err(|e| no_verdict(e.to_string()))?
        .into_inner();
    match status.nodes.iter().find(|n| n.id == dead.id) {
        Some(n) if n.up => Err(ReplaceBootstrapError::Alive {
            dead: dead.id.clone(),
            why: format!("{} believes it up (phi {:.1})", status.answered_by, n.phi),
        }),
        _ => Ok(()),
    }
}
