//! Test layouts: a node joining the dev topology, written out once for the
//! unit tests of every module that needs a movement in progress. Test
//! code only; must not hold assertions about the layouts it builds.

use super::{Layout, NewNode};
use crate::topology::Topology;

/// A new node `id` with its client, peer and admin ports 7070–7072 on `ip`.
pub(crate) fn new_node(id: &str, ip: &str) -> NewNode {
    let at = |port: u16| format!("{ip}:{port}").parse().expect("addr");
    NewNode {
        id: id.into(),
        client_address: at(7070),
        peer_address: at(7071),
        admin_address: at(7072),
    }
}

/// `seed` (a dev layout) with node `id` on `ip` joining dc1, rack r1, with
/// 64 tokens allocated to balance the datacenter.
pub(crate) fn dev_join(seed: &Layout, id: &str, ip: &str) -> Layout {
    let tokens = crate::ring::allocate_tokens(seed, "dc1", "r1", 64, 3).expect("tokens");
    (seed.begin_join(new_node(id, ip), "dc1", "r1", &tokens)).expect("join")
}

/// The dev seed (v1) and two proposals of v2 made concurrently from it:
/// `dc1-new` (on 127.0.0.14) and `dc1-other` (127.0.0.15) joining dc1.
pub(crate) fn concurrent_joins() -> (Layout, Layout, Layout) {
    let seed = Layout::seed(&Topology::dev());
    let a = dev_join(&seed, "dc1-new", "127.0.0.14");
    let b = dev_join(&seed, "dc1-other", "127.0.0.15");
    (seed, a, b)
}
