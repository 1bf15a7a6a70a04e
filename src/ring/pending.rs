//! Pending ranges: during a range movement, the replicas a range will have
//! that it does not have yet.
//!
//! Owns [`PendingRanges`], computed from the ring of the current layout and
//! the ring of the layout after the movement ([`crate::layout::Layout::settled`]).
//! Cassandra's semantics: a write goes to the current owners *and* the
//! pending ones, and needs `blockFor + pending` acknowledgements (see
//! [`crate::consistency::with_pending`]); reads use the
//! current owners until the movement switches its reads to the new owners
//! (`layout/switch.rs`), and from then on the old owners that lose a range
//! are its pending replicas until the movement finishes. Pure; must not decide
//! whom to ask or how many answers to wait for.

use std::collections::BTreeMap;

use super::{Ring, Token, TokenRange};
use crate::layout::Layout;
use crate::topology::NodeIdx;

/// The pending replicas of one range in one datacenter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DcPending {
    pub dc: String,
    /// Nodes (of the *current* ring) that will replicate the range and do
    /// not yet: never empty.
    pub nodes: Vec<NodeIdx>,
}

/// A node the movement makes an owner is not a member of the current ring.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("node '{0}' owns ranges after the movement but is not a member of the current layout")]
pub struct NotAMember(pub String);

/// Per keyspace, the ring cut at the tokens of both rings, with the pending
/// replicas of each piece (adjacent pieces with equal pending sets merged;
/// keyspaces with nothing pending left out, so "nothing moves" is `default()`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PendingRanges {
    keyspaces: BTreeMap<String, Cuts>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Cuts {
    /// Ascending range ends; piece `i` is `(ends[i-1], ends[i]]`, wrapping.
    ends: Vec<Token>,
    pending: Vec<Vec<DcPending>>,
}

impl PendingRanges {
    /// The pending ranges of `layout`'s movements in progress (none if it
    /// has none), in the indexing of `Ring::from_layout(layout)`.
    pub fn of_layout(layout: &Layout) -> Result<PendingRanges, NotAMember> {
        if layout.movements.is_empty() {
            return Ok(PendingRanges::default());
        }
        PendingRanges::between(
            &Ring::from_layout(layout),
            &Ring::from_layout(&layout.also_written()),
        )
    }

    /// For every keyspace of `current`, the replicas each range has in
    /// `after` and not in `current`, as nodes of `current` (matched by id).
    pub fn between(current: &Ring, after: &Ring) -> Result<PendingRanges, NotAMember> {
        let mut bounds: Vec<Token> = current
            .tokens
            .iter()
            .chain(&after.tokens)
            .copied()
            .collect();
        bounds.sort_unstable();
        bounds.dedup();
        let mut keyspaces = BTreeMap::new();
        for ks in current.keyspaces.keys() {
            let mut cuts = Cuts::default();
            for &end in &bounds {
                let pending = pending_at(current, after, ks, end)?;
                if cuts.pending.last() == Some(&pending) {
                    *cuts.ends.last_mut().expect("same length") = end;
                } else {
                    cuts.ends.push(end);
                    cuts.pending.push(pending);
                }
            }
            if cuts.pending.iter().any(|p| !p.is_empty()) {
                keyspaces.insert(ks.clone(), cuts);
            }
        }
        Ok(PendingRanges { keyspaces })
    }

    /// The pending replicas of the range containing `token` (empty if none,
    /// or if the keyspace is unknown).
    pub fn for_token(&self, keyspace: &str, token: Token) -> &[DcPending] {
        let Some(cuts) = self.keyspaces.get(keyspace) else {
            return &[];
        };
        if cuts.ends.is_empty() {
            return &[];
        }
        let i = cuts.ends.partition_point(|&t| t < token);
        &cuts.pending[if i == cuts.ends.len() { 0 } else { i }]
    }

    /// Pending replicas of `token`'s range per datacenter: the counts
    /// [`crate::consistency::with_pending`] takes.
    pub fn counts_for_token(&self, keyspace: &str, token: Token) -> BTreeMap<String, u32> {
        self.for_token(keyspace, token)
            .iter()
            .map(|d| (d.dc.clone(), d.nodes.len() as u32))
            .collect()
    }

    /// Every range of `keyspace` that has pending replicas, in token order.
    pub fn ranges(&self, keyspace: &str) -> impl Iterator<Item = (TokenRange, &[DcPending])> + '_ {
        let cuts = self.keyspaces.get(keyspace);
        let n = cuts.map_or(0, |c| c.ends.len());
        (0..n).filter_map(move |i| {
            let c = cuts.expect("n > 0");
            let p = &c.pending[i];
            (!p.is_empty()).then(|| {
                (
                    TokenRange::new(c.ends[(i + n - 1) % n], c.ends[i]),
                    p.as_slice(),
                )
            })
        })
    }

    /// No range of any keyspace has a pending replica.
    pub fn is_empty(&self) -> bool {
        self.keyspaces
            .values()
            .all(|c| c.pending.iter().all(Vec::is_empty))
    }
}

/// The pending replicas of the piece ending at `end`.
fn pending_at(
    current: &Ring,
    after: &Ring,
    ks: &str,
    end: Token,
) -> Result<Vec<DcPending>, NotAMember> {
    let now = current.replicas_for_token(ks, end);
    let Ok(then) = after.replicas_for_token(ks, end) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for d in &then.per_dc {
        let have = now.as_ref().map_or(&[][..], |s| s.in_dc(&d.dc));
        let mut nodes = Vec::new();
        for &n in &d.nodes {
            let id = &after.node(n).id;
            let idx = current
                .node_by_id(id)
                .ok_or_else(|| NotAMember(id.clone()))?
                .idx;
            if !have.contains(&idx) {
                nodes.push(idx);
            }
        }
        if !nodes.is_empty() {
            out.push(DcPending {
                dc: d.dc.clone(),
                nodes,
            });
        }
    }
    Ok(out)
}
