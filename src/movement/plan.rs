//! The plan of a range movement: which token ranges each node gains (and
//! from whom it can copy them) or loses (and to whom), and which ranges a
//! node may drop once a movement is over.
//!
//! Owns [`Gain`], [`Loss`], [`gains`], [`losses`] and [`unreplicated`].
//! Computed from two rings — the current layout's and the settled one's
//! ([`crate::layout::Layout::settled`]) — cut at the tokens of both, so
//! every piece has one set of current owners and one of future owners.
//! Sources are the current owners of a piece, the ones of the gainer's
//! datacenter *losing* it first (copying the owner a range moves away from
//! keeps every write's replica count in that datacenter: Cassandra's
//! strict range movement), then nearest first (same rack, same
//! datacenter, other datacenters); a loser's new owners are those of its
//! own datacenter. Pure: must not check
//! liveness, choose among sources or do I/O — the streaming driver does.

use std::collections::BTreeSet;

use crate::layout::Layout;
use crate::ring::{NotAMember, Ring, RingError, Token, TokenRange};

/// A range `node` will replicate and does not yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gain {
    pub keyspace: String,
    pub range: TokenRange,
    /// Current owners of the range (node ids), those losing it first, then
    /// nearest first. Never empty.
    pub sources: Vec<String>,
    /// The current owners that lose the range in this movement.
    pub losing: Vec<String>,
}

/// A range `node` replicates now and will not after the movement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loss {
    pub keyspace: String,
    pub range: TokenRange,
    /// The owners after the movement that are not owners now (they copy it).
    pub new_owners: Vec<String>,
}

/// A movement cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("node '{0}' is not a member of the layout")]
    NotAMember(String),
    #[error(transparent)]
    Ring(#[from] RingError),
}

impl From<NotAMember> for PlanError {
    fn from(e: NotAMember) -> Self {
        PlanError::NotAMember(e.0)
    }
}

/// One piece of the ring with its owners (node ids) before and after.
struct Piece {
    range: TokenRange,
    now: Vec<String>,
    then: Vec<String>,
}

/// Every piece of `keyspace`, cut at the tokens of both rings.
fn pieces(now: &Ring, then: &Ring, keyspace: &str) -> Result<Vec<Piece>, PlanError> {
    let mut bounds: Vec<Token> = now
        .ranges_with_replicas(keyspace)?
        .map(|(r, _)| r.end)
        .chain(then.ranges_with_replicas(keyspace)?.map(|(r, _)| r.end))
        .collect();
    bounds.sort_unstable();
    bounds.dedup();
    let ids = |ring: &Ring, end: Token| -> Result<Vec<String>, RingError> {
        let set = ring.replicas_for_token(keyspace, end)?;
        Ok(set.all().map(|n| ring.node(n).id.clone()).collect())
    };
    let n = bounds.len();
    (0..n)
        .map(|i| {
            let end = bounds[i];
            Ok(Piece {
                range: TokenRange::new(bounds[(i + n - 1) % n], end),
                now: ids(now, end)?,
                then: ids(then, end)?,
            })
        })
        .collect()
}

/// The two rings of `layout`: now, and once its movements have finished;
/// "now" is the owners before the switch of reads in either step (a plan
/// made after the switch is the one made before it).
fn rings(layout: &Layout) -> (Ring, Ring) {
    (
        Ring::from_layout(&layout.reading_old()),
        Ring::from_layout(&layout.settled()),
    )
}

/// Extends `last` by `next` when they are adjacent (and together are not
/// the whole ring, whose form `start == end` would change meaning).
fn extend(last: &mut TokenRange, next: TokenRange) -> bool {
    if last.end == next.start && next.end != last.start {
        last.end = next.end;
        true
    } else {
        false
    }
}

/// Pushes `item` onto `out`, or extends the last entry when `same` holds
/// and their ranges are adjacent.
fn push_merged<T>(
    out: &mut Vec<T>,
    item: T,
    range: impl Fn(&mut T) -> &mut TokenRange,
    same: impl Fn(&T, &T) -> bool,
) {
    let mut item = item;
    if let Some(last) = out.last_mut() {
        if same(last, &item) && extend(range(last), *range(&mut item)) {
            return;
        }
    }
    out.push(item);
}

/// The ranges `node` gains in `layout`'s movements in progress, per
/// keyspace in token order (adjacent pieces with the same sources merged).
pub fn gains(layout: &Layout, node: &str) -> Result<Vec<Gain>, PlanError> {
    let (now, then) = rings(layout);
    let me = now
        .node_by_id(node)
        .ok_or_else(|| PlanError::NotAMember(node.into()))?
        .clone();
    let mut out: Vec<Gain> = Vec::new();
    for keyspace in layout.keyspaces.keys() {
        for p in pieces(&now, &then, keyspace)? {
            if !p.then.iter().any(|n| n == node) || p.now.iter().any(|n| n == node) {
                continue;
            }
            // Strict sources are the gainer's own datacenter's losers: each
            // datacenter's replicas are counted apart (review-elastic29 L2).
            let in_my_dc = |id: &String| now.node_by_id(id).is_some_and(|i| i.dc == me.dc);
            let losing: Vec<String> = (p.now.iter())
                .filter(|n| !p.then.contains(n) && in_my_dc(n))
                .cloned()
                .collect();
            let mut sources = p.now.clone();
            sources.sort_by_key(|id| {
                let info = now.node_by_id(id).expect("an owner is a member");
                (
                    !losing.contains(id),
                    info.dc != me.dc,
                    info.dc != me.dc || info.rack != me.rack,
                    id.clone(),
                )
            });
            let losing = sources
                .iter()
                .filter(|s| losing.contains(s))
                .cloned()
                .collect();
            let gain = Gain {
                keyspace: keyspace.clone(),
                range: p.range,
                sources,
                losing,
            };
            push_merged(
                &mut out,
                gain,
                |g| &mut g.range,
                |a, b| a.keyspace == b.keyspace && a.sources == b.sources && a.losing == b.losing,
            );
        }
    }
    Ok(out)
}

/// The ranges `node` loses in `layout`'s movements in progress, with the
/// nodes of its datacenter that gain them (those of another copy from
/// their own datacenter's owners, [`gains`]).
pub fn losses(layout: &Layout, node: &str) -> Result<Vec<Loss>, PlanError> {
    let (now, then) = rings(layout);
    let Some(me) = now.node_by_id(node) else {
        return Err(PlanError::NotAMember(node.into()));
    };
    // Another datacenter's gainers copy from their own (review-elastic29 L2).
    let in_my_dc = |id: &String| layout.node(id).is_some_and(|(dc, _, _)| dc == me.dc);
    let mut out: Vec<Loss> = Vec::new();
    for keyspace in layout.keyspaces.keys() {
        for p in pieces(&now, &then, keyspace)? {
            if !p.now.iter().any(|n| n == node) || p.then.iter().any(|n| n == node) {
                continue;
            }
            let new_owners = (p.then.iter())
                .filter(|n| !p.now.contains(n) && in_my_dc(n))
                .cloned()
                .collect();
            let loss = Loss {
                keyspace: keyspace.clone(),
                range: p.range,
                new_owners,
            };
            push_merged(
                &mut out,
                loss,
                |l| &mut l.range,
                |a, b| a.keyspace == b.keyspace && a.new_owners == b.new_owners,
            );
        }
    }
    Ok(out)
}

/// The ranges of each keyspace of `ring` that `node` does not replicate
/// (what cleanup may drop from its engine once no movement involves it).
/// Empty for a node that replicates everything; a non-member replicates
/// nothing, so it gets the whole ring of every keyspace.
pub fn unreplicated(ring: &Ring, node: &str) -> Result<Vec<(String, TokenRange)>, PlanError> {
    let idx = ring.node_by_id(node).map(|n| n.idx);
    let keyspaces: BTreeSet<&String> = ring.topology().keyspaces.keys().collect();
    let mut out: Vec<(String, TokenRange)> = Vec::new();
    for ks in keyspaces {
        for (range, set) in ring.ranges_with_replicas(ks)? {
            if idx.is_some_and(|i| set.contains(i)) {
                continue;
            }
            push_merged(
                &mut out,
                (ks.clone(), range),
                |x| &mut x.1,
                |a, b| a.0 == b.0,
            );
        }
    }
    Ok(out)
}
