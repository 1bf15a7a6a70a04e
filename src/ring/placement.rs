//! NetworkTopologyStrategy placement: which nodes replicate a token range.
//!
//! Owns [`ReplicaSet`] and the walk that fills it, a faithful port of
//! Cassandra's `NetworkTopologyStrategy.calculateNaturalEndpoints` (the
//! 2.x/3.0 rack-skipping form). Pure; knows nothing of quorums, liveness or
//! proximity — the coordinator orders and counts the replicas it is given.
//!
//! For each datacenter with rf > 0, walk clockwise from the range's end
//! token over the vnodes, taking distinct physical nodes of that DC. A node
//! whose rack already holds a replica is put on a per-DC "skipped" list
//! until every rack of the DC has one; from then on skipped nodes are taken
//! first, in the order they were skipped, then the walk continues taking
//! any node. Each DC stops at `min(rf, nodes in the DC)`. So the first
//! `min(rf, racks)` replicas of a DC are on distinct racks.
//!
//! Must not: order or count the replicas for a request (the coordinator does).

use crate::topology::NodeIdx;

/// The replicas of one token range, per datacenter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaSet {
    /// The inclusive end of the range (the vnode token the walk started at).
    pub token_range_end: super::Token,
    /// Topology datacenter order; only datacenters with rf > 0.
    pub per_dc: Vec<DcReplicas>,
}

/// The replicas of a range within one datacenter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DcReplicas {
    pub dc: String,
    /// The keyspace's replication factor in this datacenter.
    pub rf: u32,
    /// `min(rf, nodes in the DC)` distinct nodes, in walk order: the first is
    /// the range's primary owner in this DC.
    pub nodes: Vec<NodeIdx>,
}

impl ReplicaSet {
    /// Every replica, datacenter by datacenter, in walk order.
    pub fn all(&self) -> impl Iterator<Item = NodeIdx> + '_ {
        self.per_dc.iter().flat_map(|d| d.nodes.iter().copied())
    }

    /// The replicas in datacenter `dc` (empty if it has none).
    pub fn in_dc(&self, dc: &str) -> &[NodeIdx] {
        self.per_dc
            .iter()
            .find(|d| d.dc == dc)
            .map_or(&[], |d| &d.nodes)
    }

    pub fn contains(&self, n: NodeIdx) -> bool {
        self.per_dc.iter().any(|d| d.nodes.contains(&n))
    }

    /// The total number of replicas across datacenters.
    pub fn len(&self) -> usize {
        self.per_dc.iter().map(|d| d.nodes.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What the walk needs to know about one datacenter of a keyspace.
#[derive(Clone, Debug)]
pub(super) struct DcPlan {
    pub name: String,
    pub rf: u32,
    /// `min(rf, nodes of the DC on the ring)`.
    pub target: usize,
    /// Racks of the DC with at least one node on the ring.
    pub racks: usize,
}

/// The ring as the walk sees it.
pub(super) struct Walk<'a> {
    /// Owner of each vnode, in token order.
    pub owners: &'a [NodeIdx],
    /// Per node: index into the keyspace's `plans`, or `None` if its DC has rf 0.
    pub plan_of_node: &'a [Option<usize>],
    /// Per node: a rack number unique across the topology.
    pub rack_of_node: &'a [usize],
}

struct DcState {
    chosen: Vec<NodeIdx>,
    seen_racks: Vec<usize>,
    skipped: Vec<NodeIdx>,
}

impl Walk<'_> {
    /// The replicas of the range ending at vnode position `start`.
    pub fn place(&self, start: usize, plans: &[DcPlan]) -> Vec<DcReplicas> {
        self.place_counted(start, plans).0
    }

    /// [`Walk::place`], and how many vnodes the walk visited before every
    /// datacenter had its replicas (at most the ring's length).
    pub fn place_counted(&self, start: usize, plans: &[DcPlan]) -> (Vec<DcReplicas>, usize) {
        let mut state: Vec<DcState> = plans
            .iter()
            .map(|p| DcState {
                chosen: Vec::with_capacity(p.target),
                seen_racks: Vec::with_capacity(p.racks),
                skipped: Vec::new(),
            })
            .collect();
        let mut left = plans.iter().filter(|p| p.target > 0).count();
        let n = self.owners.len();
        let mut visited = 0;
        for step in 0..n {
            if left == 0 {
                break;
            }
            visited = step + 1;
            let node = self.owners[(start + step) % n];
            let Some(d) = self.plan_of_node[node.0 as usize] else {
                continue;
            };
            let (plan, st) = (&plans[d], &mut state[d]);
            // A node already chosen is ignored (Cassandra adds it to a set: a no-op).
            if st.chosen.len() >= plan.target || st.chosen.contains(&node) {
                continue;
            }
            let rack = self.rack_of_node[node.0 as usize];
            if st.seen_racks.len() >= plan.racks {
                st.chosen.push(node);
            } else if st.seen_racks.contains(&rack) {
                if !st.skipped.contains(&node) {
                    st.skipped.push(node);
                }
            } else {
                st.chosen.push(node);
                st.seen_racks.push(rack);
                if st.seen_racks.len() >= plan.racks {
                    // Every rack has a replica: take the skipped nodes, oldest first.
                    for &s in &st.skipped {
                        if st.chosen.len() >= plan.target {
                            break;
                        }
                        st.chosen.push(s);
                    }
                    st.skipped.clear();
                }
            }
            if st.chosen.len() >= plan.target {
                left -= 1;
            }
        }
        let sets = plans
            .iter()
            .zip(state)
            .map(|(p, s)| DcReplicas {
                dc: p.name.clone(),
                rf: p.rf,
                nodes: s.chosen,
            })
            .collect();
        (sets, visited)
    }
}
