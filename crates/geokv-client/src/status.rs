//! What the Status RPC tells a client: the cluster's nodes (datacenter, rack,
//! address, up/down, φ) and keyspaces, as plain Rust types.
//!
//! Owns the conversion from the wire message only.
//! Must not: render it (the CLI's job) or call the cluster.
use std::collections::BTreeMap;

use crate::proto::v1 as pb;

/// The cluster as seen by the node that answered.
///
/// # Example
///
/// ```no_run
/// # async fn demo(client: geokv_client::Client) -> Result<(), geokv_client::ClientError> {
/// let status = client.status().await?;
/// for (dc, nodes) in status.by_datacenter() {
///     let up = nodes.iter().filter(|n| n.up).count();
///     println!("{dc}: {up}/{} up", nodes.len());
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterStatus {
    /// The cluster's name.
    pub cluster: String,
    /// Id of the node that answered.
    pub answered_by: String,
    /// Datacenter of the node that answered.
    pub local_datacenter: String,
    /// Every node of the topology, with the answering node's view of it.
    pub nodes: Vec<NodeInfo>,
    /// The keyspaces and their per-datacenter replication factors.
    pub keyspaces: Vec<KeyspaceInfo>,
}

/// One node, as the answering node sees it.
///
/// # Example
///
/// ```no_run
/// # fn show(node: &geokv_client::NodeInfo) {
/// println!("{} {}/{} {} phi={:.2}", node.id, node.datacenter, node.rack,
///          if node.up { "UP" } else { "DOWN" }, node.phi);
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct NodeInfo {
    /// The node's id in the topology.
    pub id: String,
    /// Its datacenter.
    pub datacenter: String,
    /// Its rack.
    pub rack: String,
    /// Where its client API listens.
    pub client_address: String,
    /// Where its admin HTTP port listens.
    pub admin_address: String,
    /// Whether the answering node's failure detector considers it up.
    pub up: bool,
    /// The answering node's suspicion level φ for it.
    pub phi: f64,
    /// The last heartbeat counter seen from it.
    pub heartbeat: u64,
}

/// A keyspace and its replication factor per datacenter.
///
/// # Example
///
/// ```no_run
/// # fn show(ks: &geokv_client::KeyspaceInfo) {
/// let total: u32 = ks.replication.values().sum();
/// println!("{}: {total} replicas", ks.name);
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyspaceInfo {
    /// The keyspace's name.
    pub name: String,
    /// Replicas per datacenter, ordered by datacenter name.
    pub replication: BTreeMap<String, u32>,
}

impl ClusterStatus {
    /// Nodes grouped by datacenter (sorted by name), each group sorted by
    /// rack, then id.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo(client: geokv_client::Client) -> Result<(), geokv_client::ClientError> {
    /// let status = client.status().await?;
    /// let dcs: Vec<&str> = status.by_datacenter().keys().copied().collect();
    /// # Ok(()) }
    /// ```
    pub fn by_datacenter(&self) -> BTreeMap<&str, Vec<&NodeInfo>> {
        let mut groups: BTreeMap<&str, Vec<&NodeInfo>> = BTreeMap::new();
        for node in &self.nodes {
            groups.entry(&node.datacenter).or_default().push(node);
        }
        for nodes in groups.values_mut() {
            nodes.sort_by(|a, b| (&a.rack, &a.id).cmp(&(&b.rack, &b.id)));
        }
        groups
    }
}

impl From<pb::StatusResponse> for ClusterStatus {
    fn from(r: pb::StatusResponse) -> Self {
        ClusterStatus {
            cluster: r.cluster,
            answered_by: r.answered_by,
            local_datacenter: r.local_datacenter,
            nodes: r.nodes.into_iter().map(NodeInfo::from).collect(),
            keyspaces: r
                .keyspaces
                .into_iter()
                .map(|k| KeyspaceInfo {
                    name: k.name,
                    replication: k.replication.into_iter().collect(),
                })
                .collect(),
        }
    }
}

impl From<pb::NodeStatus> for NodeInfo {
    fn from(n: pb::NodeStatus) -> Self {
        NodeInfo {
            id: n.id,
            datacenter: n.datacenter,
            rack: n.rack,
            client_address: n.client_address,
            admin_address: n.admin_address,
            up: n.up,
            phi: n.phi,
            heartbeat: n.heartbeat,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_by_datacenter_then_rack() {
        let node = |id: &str, dc: &str, rack: &str| pb::NodeStatus {
            id: id.into(),
            datacenter: dc.into(),
            rack: rack.into(),
            ..Default::default()
        };
        let status = ClusterStatus::from(pb::StatusResponse {
            nodes: vec![
                node("n4", "dc2", "r1"),
                node("n2", "dc1", "r2"),
                node("n1", "dc1", "r1"),
                node("n3", "dc1", "r1"),
            ],
            ..Default::default()
        });
        let groups = status.by_datacenter();
        let ids = |dc| groups[dc].iter().map(|n| n.id.as_str()).collect::<Vec<_>>();
        assert_eq!(groups.keys().copied().collect::<Vec<_>>(), ["dc1", "dc2"]);
        assert_eq!(ids("dc1"), ["n1", "n3", "n2"]);
        assert_eq!(ids("dc2"), ["n4"]);
    }
}
