//! `records::record_pending_ranges` with a keyspace that the ring after
//! the movement cannot place (review-final31 L3): it no longer fails for
//! it (it once built a range table of every keyspace and returned that
//! error); the keyspace has no pending replicas there, so it is skipped and
//! every other keyspace is recorded as without it.
//!
//! Must not: test anything but which records that start writes.

use super::records::{load_records, record_pending_ranges};
use crate::engine::memory::MemoryEngine;
use crate::engine::Limits;
use crate::layout::{Layout, NewNode};
use crate::ring::{PendingRanges, Ring, Token};
use crate::topology::{KeyspaceSpec, Topology};

fn joiner() -> NewNode {
    NewNode {
        id: "dc1-new".into(),
        client_address: "127.0.0.14:7070".parse().unwrap(),
        peer_address: "127.0.0.14:7071".parse().unwrap(),
        admin_address: "127.0.0.14:7072".parse().unwrap(),
    }
}

/// What the joiner `dc1-new` records as a pending replica when `layout`
/// is the ring in force and `after` the ring once the join ends: the
/// count returned and each record (keyspace, token, destination).
fn recorded(layout: &Layout, after: &Ring) -> (usize, Vec<(String, Token, String)>) {
    let engine = MemoryEngine::new(Limits::default());
    let ring = Ring::from_layout(layout);
    let pending = PendingRanges::between(&ring, after).expect("every node of after is in ring");
    let me = ring
        .node_by_id("dc1-new")
        .expect("the joiner is a member")
        .idx;
    let n = record_pending_ranges(&engine, &ring, after, &pending, me).expect("records written");
    let recs = load_records(&engine).expect("load");
    (
        n,
        recs.into_iter()
            .map(|r| (r.keyspace, r.token, r.dest))
            .collect(),
    )
}

#[test]
fn a_keyspace_the_ring_after_cannot_place_is_skipped_and_the_others_recorded() {
    let seed = Layout::seed(&Topology::dev());
    let tokens = crate::ring::allocate_tokens(&seed, "dc1", "r1", 64, 3).unwrap();
    let joining = seed.begin_join(joiner(), "dc1", "r1", &tokens).unwrap();
    let after = Ring::from_layout(&joining.also_written());
    let (n, plain) = recorded(&joining, &after);
    assert!(n > 0 && n == plain.len(), "{n} {plain:?}");
    assert!(plain.iter().all(|(_, _, dest)| dest == "node:dc1-new"));
    let mut extra = joining.clone();
    let replication = [("dc1".to_string(), 2)].into_iter().collect();
    (extra.keyspaces).insert("extra".into(), KeyspaceSpec { replication });
    let ring = Ring::from_layout(&extra);
    assert!(
        ring.replicas_for_token("extra", 0).is_ok(),
        "the ring places it"
    );
    assert!(
        after.replicas_for_token("extra", 0).is_err(),
        "after does not"
    );
    let with_extra = recorded(&extra, &after);
    assert_eq!(with_extra, (n, plain), "the same records, none for extra");
}
