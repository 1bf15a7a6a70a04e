//! Which coordinator to try first: local-datacenter nodes round-robin, then
//! the other datacenters, with nodes known down or recently unreachable last.
//!
//! Pure: the caller supplies the cursor and each node's health, so ordering is
//! tested without sockets. Must not open channels or sleep (that is `core.rs`).
use crate::proto::v1 as pb;

/// One node the client may send requests to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NodeAddr {
    /// `http://host:port` of the node's client API.
    pub url: String,
    /// Its datacenter, when discovery told us.
    pub datacenter: Option<String>,
    /// Whether the answering node's failure detector believed it up.
    pub up: bool,
}

/// A node's standing for one ordering decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Candidate<'a> {
    pub datacenter: Option<&'a str>,
    /// Up according to discovery and not recently failed to connect.
    pub healthy: bool,
}

/// The indices of `nodes` in the order to try them for one call.
///
/// Four tiers, each rotated by `cursor` so consecutive calls spread over the
/// tier (round-robin):
/// 1. healthy nodes of `local_dc` (every node, when `local_dc` is `None`);
/// 2. healthy nodes of other (or unknown) datacenters: the fallback;
/// 3. unhealthy local nodes, 4. unhealthy remote nodes: still tried last,
///    since health information can be stale.
///
/// Remote datacenters are not ordered by latency: the client has no
/// measurements, so they share one rotated tier.
pub(crate) fn preference_order(
    nodes: &[Candidate<'_>],
    local_dc: Option<&str>,
    cursor: usize,
) -> Vec<usize> {
    let mut tiers: [Vec<usize>; 4] = Default::default();
    for (i, node) in nodes.iter().enumerate() {
        let local = match local_dc {
            None => true,
            Some(dc) => node.datacenter == Some(dc),
        };
        let tier = match (node.healthy, local) {
            (true, true) => 0,
            (true, false) => 1,
            (false, true) => 2,
            (false, false) => 3,
        };
        tiers[tier].push(i);
    }
    let mut order = Vec::with_capacity(nodes.len());
    for mut tier in tiers {
        if !tier.is_empty() {
            let len = tier.len();
            tier.rotate_left(cursor % len);
            order.extend(tier);
        }
    }
    order
}

/// Adds `http://` to an address given without a scheme (`127.0.0.11:7070`).
pub(crate) fn normalize_url(address: &str) -> String {
    let address = address.trim();
    if address.contains("://") {
        address.trim_end_matches('/').to_string()
    } else {
        format!("http://{}", address.trim_end_matches('/'))
    }
}

/// The node list a Status answer describes: every node with a client
/// address, deduplicated, in the answer's order.
pub(crate) fn nodes_from_status(status: &pb::StatusResponse) -> Vec<NodeAddr> {
    let mut nodes: Vec<NodeAddr> = Vec::with_capacity(status.nodes.len());
    for node in &status.nodes {
        if node.client_address.trim().is_empty() {
            continue;
        }
        let url = normalize_url(&node.client_address);
        if nodes.iter().any(|n| n.url == url) {
            continue;
        }
        nodes.push(NodeAddr {
            url,
            datacenter: (!node.datacenter.is_empty()).then(|| node.datacenter.clone()),
            up: node.up,
        });
    }
    nodes
}

/// Seeds used as they are, when discovery is off or found nothing.
pub(crate) fn nodes_from_seeds(seeds: &[String]) -> Vec<NodeAddr> {
    let mut nodes: Vec<NodeAddr> = Vec::with_capacity(seeds.len());
    for seed in seeds {
        let url = normalize_url(seed);
        if !nodes.iter().any(|n| n.url == url) {
            nodes.push(NodeAddr {
                url,
                datacenter: None,
                up: true,
            });
        }
    }
    nodes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(dc: &str, healthy: bool) -> Candidate<'_> {
        Candidate {
            datacenter: Some(dc),
            healthy,
        }
    }

    #[test]
    fn local_nodes_round_robin_before_remote() {
        let nodes = [
            c("dc2", true),
            c("dc1", true),
            c("dc2", true),
            c("dc1", true),
        ];
        assert_eq!(preference_order(&nodes, Some("dc1"), 0), vec![1, 3, 0, 2]);
        assert_eq!(preference_order(&nodes, Some("dc1"), 1), vec![3, 1, 2, 0]);
        assert_eq!(preference_order(&nodes, Some("dc1"), 2), vec![1, 3, 0, 2]);
    }

    #[test]
    fn unhealthy_nodes_go_last_local_first() {
        let nodes = [
            c("dc1", false),
            c("dc2", false),
            c("dc2", true),
            c("dc1", true),
        ];
        assert_eq!(preference_order(&nodes, Some("dc1"), 0), vec![3, 2, 0, 1]);
    }

    #[test]
    fn without_local_dc_all_nodes_share_the_first_tier() {
        let nodes = [c("dc1", true), c("dc2", true), c("dc3", true)];
        assert_eq!(preference_order(&nodes, None, 0), vec![0, 1, 2]);
        assert_eq!(preference_order(&nodes, None, 4), vec![1, 2, 0]);
    }

    #[test]
    fn unknown_datacenter_counts_as_remote() {
        let nodes = [
            Candidate {
                datacenter: None,
                healthy: true,
            },
            c("dc1", true),
        ];
        assert_eq!(preference_order(&nodes, Some("dc1"), 0), vec![1, 0]);
        assert!(preference_order(&[], Some("dc1"), 3).is_empty());
    }

    #[test]
    fn status_nodes_are_normalized_and_deduplicated() {
        let node = |id: &str, dc: &str, addr: &str, up| pb::NodeStatus {
            id: id.into(),
            datacenter: dc.into(),
            client_address: addr.into(),
            up,
            ..Default::default()
        };
        let status = pb::StatusResponse {
            nodes: vec![
                node("a", "dc1", "127.0.0.11:7070", true),
                node("b", "dc2", "http://127.0.0.21:7070/", false),
                node("c", "dc1", "", true),
                node("a2", "dc1", "http://127.0.0.11:7070", true),
            ],
            ..Default::default()
        };
        let nodes = nodes_from_status(&status);
        assert_eq!(nodes.len(), 2);
        assert_eq!(nodes[0].url, "http://127.0.0.11:7070");
        assert_eq!(nodes[0].datacenter.as_deref(), Some("dc1"));
        assert_eq!(nodes[1].url, "http://127.0.0.21:7070");
        assert!(!nodes[1].up);
    }

    #[test]
    fn seeds_keep_their_order() {
        let seeds = [
            "127.0.0.12:7070".to_string(),
            "http://127.0.0.11:7070".into(),
        ];
        let urls: Vec<_> = nodes_from_seeds(&seeds)
            .into_iter()
            .map(|n| n.url)
            .collect();
        assert_eq!(urls, ["http://127.0.0.12:7070", "http://127.0.0.11:7070"]);
    }
}
