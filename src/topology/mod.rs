//! The cluster topology file: datacenters, racks, nodes, keyspaces.
//!
//! Owns the YAML format, its parsing ([`Topology::load`], [`Topology::parse`])
//! and its validation ([`Topology::validate`]), and the flattened
//! [`NodeInfo`] view everything else indexes by [`NodeIdx`]. It must not do
//! placement (that is [`crate::ring`]) and performs no I/O beyond reading the
//! one file it is given.
//!
//! # The file
//!
//! ```yaml
//! cluster_name: geokv-dev
//! defaults:                 # optional
//!   vnodes: 256             # ring tokens per node at weight 1.0 (default 256)
//!   admin_port: 7072        # admin port when a node omits admin_address (default 7072)
//! datacenters:
//!   - name: dc1
//!     racks:
//!       - name: r1
//!         nodes:
//!           - id: dc1-n1
//!             client_address: 127.0.0.11:7070   # IP:port, no host names
//!             peer_address: 127.0.0.11:7071
//!             admin_address: 127.0.0.11:7072   # optional
//!             weight: 1.0                       # optional; or `vnodes: N`, not both
//! keyspaces:
//!   default:
//!     replication: {dc1: 3}                     # NetworkTopologyStrategy rf per DC
//! ```
//!
//! A node's vnode count is `vnodes` if given, else `round(defaults.vnodes * weight)`
//! (weight defaults to 1.0). Its admin address defaults to its client IP on
//! `defaults.admin_port`.
//!
//! # What validation rejects
//!
//! Every error is a [`TopologyError`] naming the file, the field path in
//! `datacenters[1].racks[0].nodes[2].peer_address` / `keyspaces.default.replication.dc9`
//! form, and the reason: unknown fields; unparsable values (addresses are
//! `IP:port`); no datacenters, a datacenter without racks, a rack without
//! nodes; duplicate datacenter, rack (within its datacenter) or node names;
//! names outside `[A-Za-z0-9._-]`; any address (client, peer or effective
//! admin) used twice, within a node or across nodes; `weight` ≤ 0 or not
//! finite, `weight` together with `vnodes`, zero vnodes (explicit, by
//! default or after rounding) or more than [`MAX_VNODES`]; no keyspaces; a
//! keyspace naming an unknown datacenter, replicating nowhere, or asking for
//! more replicas in a datacenter than it has nodes.

mod load;
#[cfg(test)]
pub(crate) mod testing;
mod validate;

#[cfg(test)]
mod tests;

pub mod generate;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// The embedded development topology (two DCs × three racks × one node).
pub const DEV_TOPOLOGY_YAML: &str = include_str!("../../topology/dev.yaml");

/// Upper bound on a node's vnode count; beyond it the ring only costs memory.
pub const MAX_VNODES: u32 = 16_384;

/// A parsed, validated topology file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    pub cluster_name: String,
    #[serde(default)]
    pub defaults: NodeDefaults,
    pub datacenters: Vec<Datacenter>,
    pub keyspaces: BTreeMap<String, KeyspaceSpec>,
    /// Where this topology came from: a file name or `"<embedded dev>"`.
    #[serde(skip)]
    pub source: String,
}

/// Node-level defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeDefaults {
    /// Virtual nodes per node at weight 1.0.
    #[serde(default = "default_vnodes")]
    pub vnodes: u32,
    /// Admin port for nodes without an explicit `admin_address`.
    #[serde(default = "default_admin_port")]
    pub admin_port: u16,
}

fn default_vnodes() -> u32 {
    256
}

fn default_admin_port() -> u16 {
    7072
}

impl Default for NodeDefaults {
    fn default() -> Self {
        NodeDefaults {
            vnodes: default_vnodes(),
            admin_port: default_admin_port(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Datacenter {
    pub name: String,
    pub racks: Vec<Rack>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rack {
    pub name: String,
    pub nodes: Vec<NodeSpec>,
}

/// One node as written in the file; see [`NodeInfo`] for the resolved view.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    pub id: String,
    pub client_address: SocketAddr,
    pub peer_address: SocketAddr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_address: Option<SocketAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vnodes: Option<u32>,
}

impl NodeSpec {
    /// The admin address, defaulted to the client IP on `defaults.admin_port`.
    pub fn effective_admin_address(&self, defaults: &NodeDefaults) -> SocketAddr {
        self.admin_address
            .unwrap_or_else(|| SocketAddr::new(self.client_address.ip(), defaults.admin_port))
    }

    /// `vnodes`, else `round(defaults.vnodes * weight)` (weight 1.0 if absent).
    /// Validation guarantees the result is in `1..=MAX_VNODES`.
    pub fn effective_vnodes(&self, defaults: &NodeDefaults) -> u32 {
        match (self.vnodes, self.weight) {
            (Some(v), _) => v,
            (None, Some(w)) => (f64::from(defaults.vnodes) * w)
                .round()
                .min(f64::from(u32::MAX)) as u32,
            (None, None) => defaults.vnodes,
        }
    }
}

/// Replication of one keyspace: replicas per datacenter name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyspaceSpec {
    pub replication: BTreeMap<String, u32>,
}

/// A node's position in [`Topology::nodes`]: datacenters, racks and nodes in
/// file order. Stable for a given file; not meaningful across files.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeIdx(pub u32);

impl NodeIdx {
    /// An index no ring has: a node known outside any ring (one out of the
    /// cluster, a joiner or a dead node before it is placed), which then
    /// matches no replica.
    pub const NONE: NodeIdx = NodeIdx(u32::MAX);
}

impl std::fmt::Display for NodeIdx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Flattened, resolved view of one node; `idx` is its position in [`Topology::nodes`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodeInfo {
    pub idx: NodeIdx,
    pub id: String,
    pub dc: String,
    pub rack: String,
    pub client_address: SocketAddr,
    pub peer_address: SocketAddr,
    pub admin_address: SocketAddr,
    pub vnodes: u32,
}

/// A topology file that failed to load, parse or validate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {path}: {reason}")]
pub struct TopologyError {
    /// The file name (or `"<embedded dev>"`).
    pub file: String,
    /// The offending field, e.g. `datacenters[1].racks[0].nodes[2].peer_address`.
    pub path: String,
    pub reason: String,
}

impl Topology {
    /// All nodes, in file order (datacenters, then racks, then nodes).
    /// Computed on each call; [`crate::ring::Ring::nodes`] keeps a copy.
    pub fn nodes(&self) -> Vec<NodeInfo> {
        let mut out = Vec::new();
        for dc in &self.datacenters {
            for rack in &dc.racks {
                for n in &rack.nodes {
                    out.push(NodeInfo {
                        idx: NodeIdx(out.len() as u32),
                        id: n.id.clone(),
                        dc: dc.name.clone(),
                        rack: rack.name.clone(),
                        client_address: n.client_address,
                        peer_address: n.peer_address,
                        admin_address: n.effective_admin_address(&self.defaults),
                        vnodes: n.effective_vnodes(&self.defaults),
                    });
                }
            }
        }
        out
    }

    pub fn node_by_id(&self, id: &str) -> Option<NodeInfo> {
        self.nodes().into_iter().find(|n| n.id == id)
    }

    pub fn keyspace(&self, name: &str) -> Option<&KeyspaceSpec> {
        self.keyspaces.get(name)
    }

    /// Datacenter names in file order.
    pub fn datacenter_names(&self) -> Vec<String> {
        self.datacenters.iter().map(|d| d.name.clone()).collect()
    }

    /// The datacenter called `name`.
    pub fn datacenter(&self, name: &str) -> Option<&Datacenter> {
        self.datacenters.iter().find(|d| d.name == name)
    }
}

impl Datacenter {
    /// Number of nodes across all racks.
    pub fn node_count(&self) -> usize {
        self.racks.iter().map(|r| r.nodes.len()).sum()
    }
}
