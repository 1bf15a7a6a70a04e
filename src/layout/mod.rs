//! The cluster layout: versioned, replicated membership state.
//!
//! Owns [`Layout`] — datacenters, racks, nodes with their [`NodeState`] and
//! explicit tokens, the keyspaces, and the range movement in progress per
//! datacenter — its serde form (persisted in node metadata, spread by
//! gossip), the convergence rule ([`Layout::merge`]) and the pure
//! transitions (`movement.rs`: the [`Movement`] recorded per datacenter;
//! `transition.rs`: join, leave, remove, replace; `switch.rs`:
//! the three steps that end a movement). The topology
//! file only seeds version 1 ([`Layout::seed`]); every change is a new
//! version. [`crate::ring::Ring::from_layout`] derives placement from it.
//! `consensus.rs` is the pure compare-and-set (Paxos per version) that
//! decides which layout a version is, `acceptors.rs` who decides it, and
//! `abort.rs` the way out of a movement whose node died, `cancel.rs` of a
//! decommission a dead gainer holds up, `remove.rs` the removal of several
//! dead nodes (a dead gainer removed with the node being removed),
//! `withdraw.rs` the withdraw of a removal before its switch and a forced
//! replacement.
//!
//! Must not do I/O, know about liveness, or hold a ring: everything derived
//! (ring, pending ranges, peers) is computed from a layout by its owner.

mod abort;
pub mod acceptors;
mod cancel;
pub mod consensus;
mod movement;
mod node_info;
mod proposer;
mod remove;
mod switch;
#[cfg(test)]
pub(crate) mod testing;
mod transition;
mod withdraw;

#[cfg(test)]
mod consensus_base_tests;
#[cfg(test)]
mod consensus_decided_tests;
#[cfg(test)]
mod consensus_example_tests;
#[cfg(test)]
mod consensus_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_withdraw;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::token::{vnode_token, Token};
use crate::topology::{Datacenter, KeyspaceSpec, NodeDefaults, NodeSpec, Rack, Topology};

pub use movement::Movement;
pub use switch::FinishStep;
pub use transition::{LayoutError, NewNode};

/// Where a node is in its life. Only `Normal` and `Leaving` nodes own tokens
/// on the ring; `Joining` ones receive writes for their pending ranges.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    /// Streaming its future ranges; a pending replica, not yet an owner.
    Joining,
    /// Owns its tokens.
    Normal,
    /// Still owns its tokens while they are streamed to their new owners
    /// (decommission, or removal of a dead node).
    Leaving,
    /// Decommissioned; holds no tokens. Kept so the id is never reused.
    Left,
    /// Removed while dead (or replaced); holds no tokens.
    Removed,
}

impl NodeState {
    /// Its tokens are on the ring (it is a current owner).
    pub fn owns_tokens(self) -> bool {
        matches!(self, NodeState::Normal | NodeState::Leaving)
    }

    /// Still a member: it takes part in requests (Joining, Normal, Leaving).
    pub fn is_member(self) -> bool {
        !matches!(self, NodeState::Left | NodeState::Removed)
    }
}

/// One node of the layout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayoutNode {
    pub id: String,
    pub client_address: SocketAddr,
    pub peer_address: SocketAddr,
    pub admin_address: SocketAddr,
    pub state: NodeState,
    /// Its tokens, ascending; empty once Left or Removed.
    pub tokens: Vec<Token>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayoutRack {
    pub name: String,
    pub nodes: Vec<LayoutNode>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayoutDc {
    pub name: String,
    pub racks: Vec<LayoutRack>,
}

/// A version of the cluster layout. Immutable: transitions return a new one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layout {
    /// Format of this record, for future migrations.
    pub format: u32,
    /// Strictly increasing across changes; the seed is 1.
    pub version: u64,
    pub cluster_name: String,
    /// Tokens per node at weight 1.0 (the topology's `defaults.vnodes`).
    pub vnodes_per_weight: u32,
    pub datacenters: Vec<LayoutDc>,
    pub keyspaces: BTreeMap<String, KeyspaceSpec>,
    /// The range movement in progress, per datacenter (at most one each).
    pub movements: BTreeMap<String, Movement>,
    /// The datacenters whose movement reads from its new owners already
    /// (step 2 of the three-step finish, `switch.rs`); absent when empty,
    /// so a layout without it keeps its form and digest.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub reading_new: BTreeSet<String>,
    /// The datacenters whose movement is being abandoned (`abort.rs`): its
    /// joiner or replacement died for good after the switch of reads, or
    /// its decommission is cancelled past the switch (`cancel.rs`); the
    /// reads went back to the old owners and the next version drops it;
    /// such a movement does not finish. Absent when empty; on any other
    /// movement (a Remove, written by an older build) it holds nothing.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub aborting: BTreeSet<String>,
    /// Node → the version that withdrew a removal of it (`withdraw.rs`),
    /// until the node is Left or Removed (`set_state`, review-elastic35
    /// M2): a removal begun again without an attempt id (a member up on a
    /// build without `REMOVE_SETS`) would share the withdrawn attempt's
    /// name and could finish on its stale `done`, so it is refused
    /// (review-final34 M1). Absent when empty; written only once every
    /// member up advertises `WITHDRAW_RECORD` (the withdraw's gate, as is
    /// a removal begun again of a recorded node); a build without the
    /// field refuses such a layout, so it cannot act on that attempt.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub withdrawn: BTreeMap<String, u64>,
}

/// The current [`Layout::format`].
pub const LAYOUT_FORMAT: u32 = 1;

/// The version of a layout seeded from a topology file ([`Layout::seed`]).
pub const SEED_VERSION: u64 = 1;

/// The outcome of [`Layout::merge`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Merged {
    pub layout: Layout,
    /// Set when both sides had the same version but different contents
    /// (two changes made concurrently): the higher digest won, and the
    /// caller should report it.
    pub conflict: Option<VersionConflict>,
}

/// Two different layouts carry the same version.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("two different layouts have version {version} (digests {kept:032x} kept, {dropped:032x} dropped)")]
pub struct VersionConflict {
    pub version: u64,
    pub kept: u128,
    pub dropped: u128,
}

impl Layout {
    /// Version 1 from a topology file: every node Normal, with the tokens
    /// today's ring derives ([`vnode_token`]`(id, 0..vnodes)`).
    pub fn seed(topology: &Topology) -> Layout {
        let datacenters = topology
            .datacenters
            .iter()
            .map(|dc| LayoutDc {
                name: dc.name.clone(),
                racks: dc
                    .racks
                    .iter()
                    .map(|r| LayoutRack {
                        name: r.name.clone(),
                        nodes: r
                            .nodes
                            .iter()
                            .map(|n| seed_node(n, &topology.defaults))
                            .collect(),
                    })
                    .collect(),
            })
            .collect();
        Layout {
            format: LAYOUT_FORMAT,
            version: SEED_VERSION,
            cluster_name: topology.cluster_name.clone(),
            vnodes_per_weight: topology.defaults.vnodes,
            datacenters,
            keyspaces: topology.keyspaces.clone(),
            movements: BTreeMap::new(),
            reading_new: BTreeSet::new(),
            aborting: BTreeSet::new(),
            withdrawn: BTreeMap::new(),
        }
    }

    /// Every node with its datacenter and rack names, in layout order.
    pub fn nodes(&self) -> impl Iterator<Item = (&str, &str, &LayoutNode)> + '_ {
        self.datacenters.iter().flat_map(|dc| {
            dc.racks.iter().flat_map(move |r| {
                r.nodes
                    .iter()
                    .map(move |n| (dc.name.as_str(), r.name.as_str(), n))
            })
        })
    }

    /// The node called `id`, with its datacenter and rack.
    pub fn node(&self, id: &str) -> Option<(&str, &str, &LayoutNode)> {
        self.nodes().find(|(_, _, n)| n.id == id)
    }

    /// The topology of the members (Joining, Normal, Leaving), each with
    /// `vnodes` = its token count; racks without members are left out. This
    /// is what a ring built from the layout reports as its topology.
    pub fn member_topology(&self) -> Topology {
        let datacenters = self
            .datacenters
            .iter()
            .map(|dc| Datacenter {
                name: dc.name.clone(),
                racks: dc
                    .racks
                    .iter()
                    .map(|r| Rack {
                        name: r.name.clone(),
                        nodes: r
                            .nodes
                            .iter()
                            .filter(|n| n.state.is_member())
                            .map(|n| NodeSpec {
                                id: n.id.clone(),
                                client_address: n.client_address,
                                peer_address: n.peer_address,
                                admin_address: Some(n.admin_address),
                                weight: None,
                                vnodes: Some(n.tokens.len() as u32),
                            })
                            .collect(),
                    })
                    .filter(|r| !r.nodes.is_empty())
                    .collect(),
            })
            .collect();
        Topology {
            cluster_name: self.cluster_name.clone(),
            defaults: NodeDefaults {
                vnodes: self.vnodes_per_weight,
                ..NodeDefaults::default()
            },
            datacenters,
            keyspaces: self.keyspaces.clone(),
            source: format!("<layout v{}>", self.version),
        }
    }

    /// A digest of the whole content (version included): equal layouts have
    /// equal digests on every node and platform.
    pub fn digest(&self) -> u128 {
        let bytes = serde_json::to_vec(self).expect("a layout always serialises");
        xxhash_rust::xxh3::xxh3_128(&bytes)
    }

    /// The convergence rule: the higher version wins. Two different layouts
    /// with the same version are resolved the same way on every node — the
    /// higher [`Layout::digest`] wins — and reported; the view refuses such
    /// a fork instead of taking it (`view::Cluster::install`).
    pub fn merge(self, other: Layout) -> Merged {
        use std::cmp::Ordering;
        match self.version.cmp(&other.version) {
            Ordering::Greater => Merged {
                layout: self,
                conflict: None,
            },
            Ordering::Less => Merged {
                layout: other,
                conflict: None,
            },
            Ordering::Equal => {
                let (a, b) = (self.digest(), other.digest());
                let conflict = (a != b).then(|| VersionConflict {
                    version: self.version,
                    kept: a.max(b),
                    dropped: a.min(b),
                });
                let layout = if a >= b { self } else { other };
                Merged { layout, conflict }
            }
        }
    }

    /// The layout once every movement in progress has finished: joining
    /// and replacing nodes Normal, leaving ones Left/Removed. Equal to
    /// `self` (version aside) when nothing moves.
    pub fn settled(&self) -> Layout {
        let mut out = self.clone();
        for m in self.movements.values() {
            out = out
                .finish_movement(m)
                .expect("a layout's own movement can always finish");
        }
        out
    }

    pub(crate) fn node_mut(&mut self, id: &str) -> Option<&mut LayoutNode> {
        self.datacenters
            .iter_mut()
            .flat_map(|dc| dc.racks.iter_mut())
            .flat_map(|r| r.nodes.iter_mut())
            .find(|n| n.id == id)
    }
}

fn seed_node(n: &NodeSpec, defaults: &NodeDefaults) -> LayoutNode {
    let vnodes = n.effective_vnodes(defaults);
    let mut tokens: Vec<Token> = (0..vnodes).map(|i| vnode_token(&n.id, i)).collect();
    tokens.sort_unstable();
    LayoutNode {
        id: n.id.clone(),
        client_address: n.client_address,
        peer_address: n.peer_address,
        admin_address: n.effective_admin_address(defaults),
        state: NodeState::Normal,
        tokens,
    }
}
