//! What to compare with whom. Pure: reads the ring, no I/O.
//!
//! - [`sweep_plan`]: the token ranges this node replicates in a keyspace,
//!   adjacent vnode ranges with the same replica set joined (so a session
//!   never compares a range with a node that does not replicate all of it).
//! - [`RangeTable`]: the vnode range holding a recorded token.
//! - [`Recorded`]: the meta-CF records `hints` writes for anti-entropy.
//! - [`pairs`]: the pairwise sessions for one range; [`within_dc`] keeps
//!   those of one datacenter (`geokv repair --dc`).
//!
//! Must not: talk to peers, read liveness or touch storage.

use crate::ring::{Ring, RingError, Token, TokenRange};
use crate::topology::NodeIdx;

/// A range and every node replicating it (placement order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangePlan {
    pub range: TokenRange,
    pub replicas: Vec<NodeIdx>,
}

/// Where a session reads and writes: this node's engine or a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Side {
    Local,
    Peer(NodeIdx),
}

/// Every vnode range of `keyspace` with its replicas, in token order.
pub struct RangeTable {
    ranges: Vec<RangePlan>,
}

impl RangeTable {
    pub fn new(ring: &Ring, keyspace: &str) -> Result<Self, RingError> {
        let ranges = ring
            .ranges_with_replicas(keyspace)?
            .map(|(range, set)| RangePlan {
                range,
                replicas: set.all().collect(),
            })
            .collect();
        Ok(RangeTable { ranges })
    }

    /// The index and plan of the vnode range holding `token`.
    pub fn find(&self, token: Token) -> Option<(usize, &RangePlan)> {
        if self.ranges.is_empty() {
            return None;
        }
        // Range i ends at the i-th token; range 0 wraps in from the last one.
        let i = self.ranges.partition_point(|r| r.range.end < token);
        let i = if i == self.ranges.len() { 0 } else { i };
        Some((i, &self.ranges[i]))
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &RangePlan> {
        self.ranges.iter()
    }
}

fn same_nodes(a: &[NodeIdx], b: &[NodeIdx]) -> bool {
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    a.sort_unstable();
    b.sort_unstable();
    a == b
}

/// The ranges `me` replicates in `keyspace`: vnode ranges with identical
/// replica sets joined, the one wrapping past the last token joined with the
/// first when they match. One range with `start == end` is the whole ring.
pub fn sweep_plan(ring: &Ring, keyspace: &str, me: NodeIdx) -> Result<Vec<RangePlan>, RingError> {
    let table = RangeTable::new(ring, keyspace)?;
    let mut out: Vec<RangePlan> = Vec::new();
    for p in table.iter().filter(|p| p.replicas.contains(&me)) {
        match out.last_mut() {
            Some(last)
                if last.range.end == p.range.start && same_nodes(&last.replicas, &p.replicas) =>
            {
                last.range.end = p.range.end
            }
            _ => out.push(p.clone()),
        }
    }
    if out.len() > 1 {
        let (first, last) = (&out[0], &out[out.len() - 1]);
        if last.range.end == first.range.start && same_nodes(&first.replicas, &last.replicas) {
            let last = out.pop().expect("len > 1");
            out[0].range.start = last.range.start;
        }
    }
    Ok(out)
}

/// Recorded vnode ranges that make up at least 1/`COALESCE_FRACTION` of a
/// range this node sweeps are repaired as that whole range: one tree over it
/// costs less than many narrow sessions (two tree builds and round trips each).
pub const COALESCE_FRACTION: usize = 8;

/// Joins recorded vnode ranges (`groups`, each with its records) into the
/// enclosing range of `sweep` (this node's [`sweep_plan`]) when they are
/// dense enough there; others stay as they are.
pub fn coalesce<T>(
    table: &RangeTable,
    sweep: &[RangePlan],
    groups: Vec<(RangePlan, Vec<T>)>,
) -> Vec<(RangePlan, Vec<T>)> {
    let mut out = Vec::new();
    let mut buckets: Vec<Vec<(RangePlan, Vec<T>)>> = sweep.iter().map(|_| Vec::new()).collect();
    for g in groups {
        let home = sweep.iter().position(|p| {
            p.range.contains(g.0.range.end) && same_nodes(&p.replicas, &g.0.replicas)
        });
        match home {
            Some(i) => buckets[i].push(g),
            None => out.push(g),
        }
    }
    for (plan, bucket) in sweep.iter().zip(buckets) {
        if bucket.len() < 2 {
            out.extend(bucket);
            continue;
        }
        let vnodes = table
            .iter()
            .filter(|v| plan.range.contains(v.range.end))
            .count();
        if bucket.len() * COALESCE_FRACTION >= vnodes {
            out.push((plan.clone(), bucket.into_iter().flat_map(|g| g.1).collect()));
        } else {
            out.extend(bucket);
        }
    }
    out
}

/// Meta-CF key prefix of token ranges that need anti-entropy.
pub const REPAIR_PREFIX: &[u8] = b"repair/";

/// The meta-CF key of one anti-entropy record:
/// `REPAIR_PREFIX [ks_len: u8][keyspace][token: u64 BE][unique: u64 BE]`.
/// `unique` makes every record its own key, so records for one token
/// accumulate (each names its own destination) and a record written while
/// a repair pass runs is not the key that pass deletes at its end.
/// A keyspace name over 255 bytes has no record key (topology validation
/// refuses such names, so only a bad peer's batch can carry one).
pub fn repair_key(keyspace: &str, token: u64, unique: u64) -> Result<Vec<u8>, KeyspaceTooLong> {
    let len = u8::try_from(keyspace.len()).map_err(|_| KeyspaceTooLong(keyspace.len()))?;
    let mut k = REPAIR_PREFIX.to_vec();
    k.push(len);
    k.extend_from_slice(keyspace.as_bytes());
    k.extend_from_slice(&token.to_be_bytes());
    k.extend_from_slice(&unique.to_be_bytes());
    Ok(k)
}

/// A keyspace name too long for an anti-entropy record's one-byte length.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a keyspace name of {0} bytes has no anti-entropy record (at most 255)")]
pub struct KeyspaceTooLong(pub usize);

/// A token range recorded as needing anti-entropy: meta-CF key
/// `REPAIR_PREFIX [ks_len u8][keyspace][token u64 BE][unique u64 BE]` (see
/// [`repair_key`]; older records lack `unique`), value the label of
/// the destination that missed data (`node:<id>` or `dc:<name>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The meta-CF key, to delete the record once repaired.
    pub key: Vec<u8>,
    pub keyspace: String,
    pub token: Token,
    pub dest: String,
}

impl Recorded {
    /// Parses one record; `None` for a key that is not one.
    pub fn parse(key: &[u8], value: &[u8]) -> Option<Recorded> {
        let rest = key.strip_prefix(REPAIR_PREFIX)?;
        let (&len, rest) = rest.split_first()?;
        let len = len as usize;
        // `len + 8`: a record from before records carried a unique suffix.
        if rest.len() != len + 16 && rest.len() != len + 8 {
            return None;
        }
        let keyspace = std::str::from_utf8(&rest[..len]).ok()?.to_string();
        let token = u64::from_be_bytes(rest[len..len + 8].try_into().ok()?);
        Some(Recorded {
            key: key.to_vec(),
            keyspace,
            token,
            dest: String::from_utf8_lossy(value).into_owned(),
        })
    }

    /// The replicas of `replicas` the destination label names.
    pub fn targets(&self, ring: &Ring, replicas: &[NodeIdx]) -> Vec<NodeIdx> {
        if let Some(id) = self.dest.strip_prefix("node:") {
            return ring
                .node_by_id(id)
                .map(|n| n.idx)
                .filter(|n| replicas.contains(n))
                .into_iter()
                .collect();
        }
        if let Some(dc) = self.dest.strip_prefix("dc:") {
            return replicas
                .iter()
                .copied()
                .filter(|n| ring.node(*n).dc == dc)
                .collect();
        }
        Vec::new()
    }
}

/// The pairwise sessions that repair one range.
///
/// When `me` replicates it: `me` against every other replica, our
/// datacenter first, then the others, and `targets` (nodes known to have
/// missed data) last, so they receive everything the earlier sessions
/// brought here. Otherwise (a recorded range on a node that only
/// coordinated the write): every other replica against each target, or
/// every pair of replicas when there are no targets.
pub fn pairs(
    ring: &Ring,
    me: NodeIdx,
    replicas: &[NodeIdx],
    targets: &[NodeIdx],
) -> Vec<(Side, Side)> {
    let my_dc = &ring.node(me).dc;
    if replicas.contains(&me) {
        let mut others: Vec<NodeIdx> = replicas.iter().copied().filter(|n| *n != me).collect();
        // Stable: placement order within each class.
        others.sort_by_key(|n| (targets.contains(n), &ring.node(*n).dc != my_dc));
        return others
            .into_iter()
            .map(|n| (Side::Local, Side::Peer(n)))
            .collect();
    }
    let sources: Vec<NodeIdx> = replicas
        .iter()
        .copied()
        .filter(|n| !targets.contains(n))
        .collect();
    let mut out = Vec::new();
    if !targets.is_empty() && !sources.is_empty() {
        for t in targets {
            for s in &sources {
                out.push((Side::Peer(*s), Side::Peer(*t)));
            }
        }
    } else {
        for (i, a) in replicas.iter().enumerate() {
            for b in &replicas[i + 1..] {
                out.push((Side::Peer(*a), Side::Peer(*b)));
            }
        }
    }
    out
}

/// The sessions of `pairs` with both sides in datacenter `dc` (`Local` is
/// `me`): what a `--dc` repair runs, as Cassandra's `nodetool repair -dc`
/// syncs only among that datacenter's replicas, so no Merkle tree or row
/// crosses the WAN.
pub fn within_dc(
    ring: &Ring,
    me: NodeIdx,
    pairs: Vec<(Side, Side)>,
    dc: &str,
) -> Vec<(Side, Side)> {
    let in_dc = |s: Side| {
        let n = match s {
            Side::Local => me,
            Side::Peer(n) => n,
        };
        ring.node(n).dc == dc
    };
    pairs
        .into_iter()
        .filter(|(a, b)| in_dc(*a) && in_dc(*b))
        .collect()
}

#[cfg(test)]
mod tests;
