//! Hints addressed to one node (`target_node`) that reach it: applied only
//! where this node replicates the key in its own view, decided and applied
//! under one view; one for another node is refused, one for a key placed
//! elsewhere (or received after this node left) is left with the sender.
//!
//! Must not: apply datacenter-stream entries, or hint (a node hint is
//! applied here or kept by its sender).

use super::{not_applied, refused};
use crate::proto::v1::internode::{EntryAck, StreamEntry};
use crate::replica::Replica;
use crate::version::SiblingSet;
use crate::view::{Cluster, ClusterView};
use std::sync::Arc;

/// Applies node hint `e` (whose record is `set`) here if [`node_hint`]
/// allows it, deciding and applying under one view (installs wait:
/// [`Cluster::with_current`]), so a view that moves the key away cannot be
/// installed between the check and the apply.
pub(super) async fn node_hint_apply(
    cluster: &Cluster,
    replica: &Arc<Replica>,
    me: &str,
    e: StreamEntry,
    set: SiblingSet,
) -> EntryAck {
    let seq = e.seq;
    let (cluster, me) = (cluster.clone(), me.to_string());
    let decided = replica
        .blocking(move |r| {
            Ok(cluster.with_current(|view| {
                let mine = mine(view, &e.keyspace, &e.key);
                let d = node_hint(&e.target_node, &me, mine);
                let applied = d == NodeHint::Apply && r.apply(&e.keyspace, &e.key, &set).is_ok();
                (d, e.target_node, applied, view.version())
            }))
        })
        .await;
    match decided {
        Ok((NodeHint::Apply, _, ok, _)) => EntryAck {
            seq,
            replicas: ok as u32,
            durable: ok,
            ..not_applied(seq)
        },
        Ok((NodeHint::Refuse, target, _, _)) => {
            tracing::error!(%target, "hint for another node; refused");
            refused(seq)
        }
        Ok((NodeHint::Keep(why), _, _, version)) => {
            tracing::debug!(
                why = why.label(),
                version,
                "node hint not applied; left with the sender"
            );
            // The sender skips just this entry, and catches up with this
            // view when its own is older (`schedule::park`).
            EntryAck {
                elsewhere_layout: Some(version),
                ..not_applied(seq)
            }
        }
        Err(_) => not_applied(seq),
    }
}

/// What this node is to a key, in its own view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Mine {
    /// An owner or a pending replica of the key.
    Replica,
    /// A member, but neither: the key is placed elsewhere (or its keyspace
    /// is unknown here yet).
    Elsewhere,
    /// Not a member (left or removed).
    NotMember,
}

/// What this node (`view`'s) is to `keyspace`/`key` in `view`.
fn mine(view: &ClusterView, keyspace: &str, key: &[u8]) -> Mine {
    let Some(me) = view.me() else {
        return Mine::NotMember;
    };
    let token = crate::ring::token_of(key);
    let Ok(owners) = view.ring.replicas_for_token(keyspace, token) else {
        return Mine::Elsewhere;
    };
    let pending = view.pending.for_token(keyspace, token);
    if owners.contains(me.idx) || pending.iter().any(|d| d.nodes.contains(&me.idx)) {
        Mine::Replica
    } else {
        Mine::Elsewhere
    }
}

/// Whether this node (`view`'s) replicates `keyspace`/`key` in `view`
/// (an owner or a pending replica): where a node hint, or a copy of one
/// redirected here (`moving::copy`), may be applied.
pub(in crate::hints) fn replicates(view: &ClusterView, keyspace: &str, key: &[u8]) -> bool {
    mine(view, keyspace, key) == Mine::Replica
}

/// What a node does with a hint addressed to a node.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum NodeHint {
    Apply,
    /// Addressed to another node: the sender deletes it.
    Refuse,
    /// Addressed to this node, which does not replicate the key (in its
    /// own view): not applied, so the sender keeps it and, once its view
    /// agrees, redirects it to the key's replicas (`hints::orphans`).
    Keep(Mine),
}

impl Mine {
    fn label(self) -> &'static str {
        match self {
            Mine::Replica => "replica",
            Mine::Elsewhere => "the key is placed elsewhere in this node's view",
            Mine::NotMember => "this node is no longer a member",
        }
    }
}

/// The decision for a hint addressed to `target`, received by `me`, which
/// is `mine` to its key.
///
/// - a node that has left (`NotMember`): acking it would let a leaver
///   that is about to exit swallow the write (review of the leave drain,
///   M5);
/// - a member that no longer replicates the key (`Elsewhere`): the hint
///   was planned on an older view (a first fan-out's intent to a replica
///   that then refused the write as stale), and applying it would put the
///   record back on an old owner that may have cleaned the range up, where
///   nothing would ever delete it again (review of 762f9e4, Medium).
pub(super) fn node_hint(target: &str, me: &str, mine: Mine) -> NodeHint {
    if target != me {
        NodeHint::Refuse
    } else if mine == Mine::Replica {
        NodeHint::Apply
    } else {
        NodeHint::Keep(mine)
    }
}
