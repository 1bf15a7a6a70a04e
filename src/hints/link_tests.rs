//! [`Net`]'s choice of a stream receiver and of adopters leaves out a node
//! that gossiped it refuses writes while another is there (review-write35
//! L2, review-tidy35 L1).

use super::*;
use crate::hints::testing::layouts;
use crate::layout::Layout;

/// Every node up; those named refuse writes.
struct NotReady(&'static [&'static str]);

impl Liveness for NotReady {
    fn is_up(&self, _: &str) -> bool {
        true
    }
    fn is_ready(&self, id: &str) -> bool {
        !self.0.contains(&id)
    }
}

fn net(layout: Layout, me: &str, not_ready: &'static [&'static str]) -> Net {
    Net {
        peers: crate::transport::testing::peers(),
        cluster: Cluster::new(layout, me, None).expect("a view"),
        liveness: Arc::new(NotReady(not_ready)),
    }
}

#[test]
fn prefer_ready_keeps_the_order_and_every_node_when_none_is_ready() {
    let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let b_not = |id: &str| id != "b";
    assert_eq!(prefer_ready(ids(&["c", "b", "a"]), b_not), ["c", "a"]);
    assert_eq!(prefer_ready(ids(&["b"]), b_not), ["b"], "none else: kept");
    assert!(prefer_ready(Vec::new(), b_not).is_empty());
}

/// Fails before (by reading): `live` filtered on `is_up` only, so the
/// round-robin could open dc1's stream on `b`.
#[tokio::test]
async fn a_not_ready_node_receives_no_stream_while_another_is_live() {
    let (seed, left) = layouts();
    let dc1 = Dest::Dc("dc1".into());
    let from_x = net(seed.clone(), "x", &["b"]);
    assert_eq!(from_x.live(&dc1), ["a", "c", "d"]);
    let b = Dest::Node("b".into());
    assert_eq!(from_x.live(&b), ["b"], "its own hints wait for it");
    let none_ready = net(seed, "x", &["a", "b", "c", "d"]);
    assert_eq!(none_ready.live(&dc1), ["a", "b", "c", "d"], "all kept");
    // A leaver (d) hands its queues and records to ready members.
    let leaver = net(left, "d", &["b"]);
    assert_eq!(leaver.adopters(&Dest::Dc("dc2".into())), ["a", "c"]);
    assert_eq!(leaver.record_adopters(), ["a", "c", "x"]);
}
