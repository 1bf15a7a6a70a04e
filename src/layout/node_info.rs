//! A layout's node as the transport addresses it: the one conversion of a
//! [`LayoutNode`] (or a [`NewNode`] about to join or replace) into a
//! [`NodeInfo`] outside any ring (issue 10), for the acceptors of a
//! compare-and-set, a node out of the cluster starting to hand its hints
//! over, a bootstrap's own identity and the dead node it probes.
//!
//! Must not: give an index in a ring (a ring's members are
//! [`crate::ring::Ring::nodes`]) or do I/O.

use super::{LayoutNode, NewNode};
use crate::topology::{NodeIdx, NodeInfo};
use std::net::SocketAddr;

impl NodeInfo {
    /// Node `n` of datacenter `dc`, rack `rack`, as the layout describes
    /// it: no index in a ring ([`NodeIdx::NONE`]), as many vnodes as it has
    /// tokens (none once Left or Removed).
    pub fn from_layout(dc: &str, rack: &str, n: &LayoutNode) -> NodeInfo {
        let addresses = (n.client_address, n.peer_address, n.admin_address);
        outside((dc, rack, &n.id), addresses, n.tokens.len() as u32)
    }

    /// Node `n`, not in the layout yet, of datacenter `dc`, rack `rack`:
    /// no index in a ring ([`NodeIdx::NONE`]) and no tokens.
    pub fn from_new(dc: &str, rack: &str, n: &NewNode) -> NodeInfo {
        let addresses = (n.client_address, n.peer_address, n.admin_address);
        outside((dc, rack, &n.id), addresses, 0)
    }
}

/// Node `id` of `dc`, `rack` at its client, peer and admin `addresses`,
/// outside any ring, with `vnodes`.
fn outside(
    (dc, rack, id): (&str, &str, &str),
    (client_address, peer_address, admin_address): (SocketAddr, SocketAddr, SocketAddr),
    vnodes: u32,
) -> NodeInfo {
    NodeInfo {
        idx: NodeIdx::NONE,
        id: id.to_string(),
        dc: dc.to_string(),
        rack: rack.to_string(),
        client_address,
        peer_address,
        admin_address,
        vnodes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{Layout, NodeState};
    use crate::topology::Topology;

    /// Every layout node converts with its own addresses and place, no
    /// ring index, and its token count; a new node with none.
    #[test]
    fn a_layout_node_keeps_its_addresses_and_place_and_has_no_ring_index() {
        let layout = Layout::seed(&Topology::dev());
        let mut seen = 0;
        for (dc, rack, n) in layout.nodes() {
            let info = NodeInfo::from_layout(dc, rack, n);
            assert_eq!((info.id.as_str(), info.dc.as_str()), (n.id.as_str(), dc));
            assert_eq!(info.rack, rack);
            assert_eq!(info.idx, NodeIdx::NONE);
            let addresses = (info.client_address, info.peer_address, info.admin_address);
            assert_eq!(
                addresses,
                (n.client_address, n.peer_address, n.admin_address)
            );
            assert_eq!(info.vnodes as usize, n.tokens.len());
            assert!(info.vnodes > 0 && n.state == NodeState::Normal);
            seen += 1;
        }
        assert!(seen > 0);
        let new = NewNode {
            id: "dc1-new".into(),
            client_address: "127.0.0.14:7070".parse().unwrap(),
            peer_address: "127.0.0.14:7071".parse().unwrap(),
            admin_address: "127.0.0.14:7072".parse().unwrap(),
        };
        let info = NodeInfo::from_new("dc1", "r1", &new);
        assert_eq!((info.idx, info.vnodes), (NodeIdx::NONE, 0));
        assert_eq!((info.id, info.peer_address), (new.id, new.peer_address));
    }
}
