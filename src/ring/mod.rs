//! The token ring: virtual nodes, token lookup and per-keyspace placement.
//!
//! Owns [`Ring`], derived from one [`Layout`] version ([`Ring::from_layout`];
//! [`Ring::new`] goes through a topology file's seed layout): the tokens of
//! the Normal and Leaving nodes cut the ring into ranges `(previous token,
//! token]`, and for every keyspace the replicas of every range are computed
//! up front ([`placement`], Cassandra's NetworkTopologyStrategy). A lookup
//! is then one binary search and a slice index, with no allocation. Also
//! derived from layouts: the [`PendingRanges`] of a movement in progress and
//! the tokens of a joining node ([`allocate_tokens`]). Pure: no I/O, no
//! liveness, no quorum policy — the coordinator decides whom to ask and how
//! many answers it needs.
//!
//! Layout: [`crate::token`] (hashes, ranges) · `placement.rs` (NTS walk,
//! [`ReplicaSet`]) · `pending.rs` (pending replicas during a movement) ·
//! `allocate.rs` (balanced tokens for a join) · `balance.rs` (when no tokens can
//! balance a join) · `report.rs` (`geokv topology check`).
//!
//! Must not: do I/O, or know liveness or quorums.

mod allocate;
mod balance;
mod pending;
mod placement;
mod report;

#[cfg(test)]
mod tests_abort;
#[cfg(test)]
mod tests_allocate;
#[cfg(test)]
mod tests_balance;
#[cfg(test)]
mod tests_dist;
#[cfg(test)]
mod tests_layout;
#[cfg(test)]
pub(crate) mod tests_pending;
#[cfg(test)]
pub(crate) mod tests_prop;
#[cfg(test)]
mod tests_switch;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::layout::Layout;
use crate::topology::{NodeIdx, NodeInfo, Topology};

pub use crate::token::{token_of, vnode_token, Token, TokenRange};
pub use allocate::{allocate_tokens, allocation_rf, AllocateError};
pub use balance::balance_warning;
pub use pending::{DcPending, NotAMember, PendingRanges};
pub use placement::{DcReplicas, ReplicaSet};
pub use report::{check, check_report, CheckReport, KeyspaceReport, NodeShare, RackShortfall};

/// A ring lookup that cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RingError {
    /// The keyspace is not in the topology. Fatal for the request; not retriable.
    #[error("unknown keyspace '{0}'")]
    UnknownKeyspace(String),
    /// The topology has no node with vnodes (only possible for a topology
    /// built in code without [`Topology::validate`]).
    #[error("the ring has no nodes")]
    Empty,
}

/// The placement of every key of every keyspace. Immutable; share it in an `Arc`.
#[derive(Debug)]
pub struct Ring {
    topology: Topology,
    /// The layout version this ring was derived from (1 for a topology file).
    layout_version: u64,
    nodes: Vec<NodeInfo>,
    by_id: HashMap<String, NodeIdx>,
    /// Distinct vnode tokens, ascending. Range `i` is `(tokens[i-1], tokens[i]]`,
    /// range 0 wrapping from the last token.
    tokens: Vec<Token>,
    /// `owners[i]` owns `tokens[i]`.
    owners: Vec<NodeIdx>,
    /// Per keyspace, `replicas[i]` replicates range `i`.
    keyspaces: BTreeMap<String, Vec<ReplicaSet>>,
}

impl Ring {
    /// Builds the ring for `topology`, which should have passed
    /// [`Topology::validate`]; an invalid one does not panic, but a keyspace
    /// naming an unknown datacenter simply gets no replicas there.
    ///
    /// Should two vnodes hash to the same token (odds ~n²/2⁶⁵), the one of
    /// the lower [`NodeIdx`] keeps it, so every node still agrees.
    pub fn new(topology: &Topology) -> Ring {
        let seed = Layout::seed(topology);
        let tokens = seed.nodes().map(|(_, _, n)| n.tokens.clone()).collect();
        Ring::build(topology.clone(), seed.version, tokens)
    }

    /// Builds the ring of a layout version: its members (Joining, Normal,
    /// Leaving) are the ring's nodes, in layout order, and the tokens of the
    /// Normal and Leaving ones cut the ring. Joining nodes own nothing yet
    /// (they are pending replicas, see [`PendingRanges`]); once a movement
    /// reads from its new owners ([`Layout::reads_from`]) its moved nodes
    /// swap. A [`NodeIdx`] is only
    /// meaningful within one ring: compare nodes across layouts by id.
    pub fn from_layout(layout: &Layout) -> Ring {
        let topology = layout.member_topology();
        let tokens = layout
            .nodes()
            .filter(|(_, _, n)| n.state.is_member())
            .map(|(dc, _, n)| {
                if layout.reads_from(dc, n) {
                    n.tokens.clone()
                } else {
                    Vec::new()
                }
            })
            .collect();
        Ring::build(topology, layout.version, tokens)
    }

    /// `tokens[i]` are the tokens of `topology.nodes()[i]`.
    fn build(topology: Topology, layout_version: u64, tokens: Vec<Vec<Token>>) -> Ring {
        let nodes = topology.nodes();
        debug_assert_eq!(nodes.len(), tokens.len());
        let by_id = nodes.iter().map(|n| (n.id.clone(), n.idx)).collect();
        let mut vnodes: Vec<(Token, NodeIdx)> = nodes
            .iter()
            .zip(&tokens)
            .flat_map(|(n, ts)| ts.iter().map(move |&t| (t, n.idx)))
            .collect();
        vnodes.sort_unstable();
        vnodes.dedup_by_key(|v| v.0);
        let (tokens, owners): (Vec<Token>, Vec<NodeIdx>) = vnodes.into_iter().unzip();

        // Racks numbered across the topology; DCs by topology position.
        let on_ring: BTreeSet<NodeIdx> = owners.iter().copied().collect();
        let mut rack_ids: BTreeMap<(&str, &str), usize> = BTreeMap::new();
        let rack_of_node: Vec<usize> = nodes
            .iter()
            .map(|n| {
                let next = rack_ids.len();
                *rack_ids
                    .entry((n.dc.as_str(), n.rack.as_str()))
                    .or_insert(next)
            })
            .collect();

        let mut keyspaces = BTreeMap::new();
        for (name, spec) in &topology.keyspaces {
            let mut plans = Vec::new();
            let mut plan_of_node = vec![None; nodes.len()];
            for dc in &topology.datacenters {
                let rf = spec.replication.get(&dc.name).copied().unwrap_or(0);
                if rf == 0 {
                    continue;
                }
                let members: Vec<&NodeInfo> = nodes
                    .iter()
                    .filter(|n| n.dc == dc.name && on_ring.contains(&n.idx))
                    .collect();
                let racks: BTreeSet<usize> = members
                    .iter()
                    .map(|n| rack_of_node[n.idx.0 as usize])
                    .collect();
                for n in &members {
                    plan_of_node[n.idx.0 as usize] = Some(plans.len());
                }
                plans.push(placement::DcPlan {
                    name: dc.name.clone(),
                    rf,
                    target: (rf as usize).min(members.len()),
                    racks: racks.len(),
                });
            }
            let walk = placement::Walk {
                owners: &owners,
                plan_of_node: &plan_of_node,
                rack_of_node: &rack_of_node,
            };
            let sets = (0..tokens.len())
                .map(|i| ReplicaSet {
                    token_range_end: tokens[i],
                    per_dc: walk.place(i, &plans),
                })
                .collect();
            keyspaces.insert(name.clone(), sets);
        }
        Ring {
            topology,
            layout_version,
            nodes,
            by_id,
            tokens,
            owners,
            keyspaces,
        }
    }

    /// The replicas of `key` in `keyspace`. O(log vnodes), no allocation.
    pub fn replicas(&self, keyspace: &str, key: &[u8]) -> Result<&ReplicaSet, RingError> {
        self.replicas_for_token(keyspace, token_of(key))
    }

    /// The replicas of the range containing `token`.
    pub fn replicas_for_token(
        &self,
        keyspace: &str,
        token: Token,
    ) -> Result<&ReplicaSet, RingError> {
        let sets = self.sets(keyspace)?;
        Ok(&sets[self.range_index(token)?])
    }

    /// The ranges `node` replicates in `keyspace`, ascending by end token,
    /// adjacent ranges merged (a range wrapping past `u64::MAX` comes first).
    /// One range with `start == end` means the whole ring.
    pub fn ranges_of(&self, keyspace: &str, node: NodeIdx) -> Result<Vec<TokenRange>, RingError> {
        let sets = self.sets(keyspace)?;
        let mut out: Vec<TokenRange> = Vec::new();
        for (range, set) in self.ranges().zip(sets) {
            if !set.contains(node) {
                continue;
            }
            match out.last_mut() {
                Some(last) if last.end == range.start => last.end = range.end,
                _ => out.push(range),
            }
        }
        // Join the range ending at the last token with the one wrapping into the first.
        if out.len() > 1 && out[out.len() - 1].end == out[0].start {
            let last = out.pop().expect("len > 1");
            out[0].start = last.start;
        }
        Ok(out)
    }

    /// Every range of the ring with its replicas in `keyspace`, in token order.
    pub fn ranges_with_replicas(
        &self,
        keyspace: &str,
    ) -> Result<impl Iterator<Item = (TokenRange, &ReplicaSet)> + '_, RingError> {
        Ok(self.ranges().zip(self.sets(keyspace)?))
    }

    /// All nodes; `nodes()[i].idx == NodeIdx(i)`.
    pub fn nodes(&self) -> &[NodeInfo] {
        &self.nodes
    }

    /// The node at `idx`. Panics if `idx` is not from this ring's topology.
    pub fn node(&self, idx: NodeIdx) -> &NodeInfo {
        &self.nodes[idx.0 as usize]
    }

    pub fn node_by_id(&self, id: &str) -> Option<&NodeInfo> {
        self.by_id.get(id).map(|&i| self.node(i))
    }

    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// The version of the layout this ring was derived from.
    pub fn layout_version(&self) -> u64 {
        self.layout_version
    }

    /// Its distinct vnode tokens, ascending: range `i` ends at `tokens()[i]`
    /// (range 0 wrapping from the last).
    pub fn tokens(&self) -> &[Token] {
        &self.tokens
    }

    /// Number of ranges (distinct vnode tokens) on the ring.
    pub fn range_count(&self) -> usize {
        self.tokens.len()
    }

    /// The node owning the vnode token that ends the range containing `token`.
    pub fn vnode_owner(&self, token: Token) -> Result<NodeIdx, RingError> {
        Ok(self.owners[self.range_index(token)?])
    }

    fn sets(&self, keyspace: &str) -> Result<&[ReplicaSet], RingError> {
        self.keyspaces
            .get(keyspace)
            .map(Vec::as_slice)
            .ok_or_else(|| RingError::UnknownKeyspace(keyspace.to_string()))
    }

    /// Index of the first token ≥ `token`, wrapping to 0.
    fn range_index(&self, token: Token) -> Result<usize, RingError> {
        if self.tokens.is_empty() {
            return Err(RingError::Empty);
        }
        let i = self.tokens.partition_point(|&t| t < token);
        Ok(if i == self.tokens.len() { 0 } else { i })
    }

    /// Range `i` is `(tokens[i-1], tokens[i]]`; range 0 starts at the last token.
    fn ranges(&self) -> impl Iterator<Item = TokenRange> + '_ {
        let n = self.tokens.len();
        (0..n).map(move |i| TokenRange::new(self.tokens[(i + n - 1) % n], self.tokens[i]))
    }
}
