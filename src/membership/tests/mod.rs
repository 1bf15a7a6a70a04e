//! Membership tests: deterministic, no sleeping, no sockets. Time is a
//! number, randomness is seeded, and the network is an event queue.
//!
//! | file | checks |
//! |---|---|
//! | `table.rs` | merge keeps the max, restarts, never-heard grace, verdicts, pauses |
//! | `sim.rs` | an event-driven cluster of `Membership` tables with WAN delays |
//! | `detection.rs` | no false convictions under jitter; a dead node is found in bounded time |
//! | `gossiper.rs` | the `Gossiper` handle: topology wiring, restarts, the `run` loop |
//! | `convergence.rs` | N `Gossiper`s learn every heartbeat within O(log N) rounds |

mod convergence;
mod detection;
mod gossiper;
mod sim;
mod table;

use std::net::SocketAddr;

use super::PeerInfo;
use crate::topology::{NodeIdx, NodeInfo};

/// `n` nodes named `n00..`, spread round-robin over `dcs` datacenters.
pub(super) fn peers(n: usize, dcs: usize) -> Vec<PeerInfo> {
    (0..n)
        .map(|i| PeerInfo {
            id: format!("n{i:02}"),
            dc: format!("dc{}", i % dcs),
            rack: format!("r{}", i % 3),
        })
        .collect()
}

/// The same nodes as [`peers`], as the topology would list them.
pub(super) fn node_infos(n: usize, dcs: usize) -> Vec<NodeInfo> {
    peers(n, dcs)
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let addr = |port: u16| SocketAddr::from(([127, 0, 1, i as u8], port));
            NodeInfo {
                idx: NodeIdx(i as u32),
                id: p.id,
                dc: p.dc,
                rack: p.rack,
                client_address: addr(7070),
                peer_address: addr(7071),
                admin_address: addr(7072),
                vnodes: 16,
            }
        })
        .collect()
}
