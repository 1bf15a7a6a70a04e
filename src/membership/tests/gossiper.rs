//! The [`Gossiper`] handle: topology wiring, merged replies, restarts, and
//! the `run` loop's shutdown and deadline behaviour.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::node_infos;
use crate::membership::{Gossiper, ManualClock, MembershipConfig, MembershipError, MonotonicClock};
use crate::proto::v1::internode::GossipDigest;
use crate::topology::Topology;

#[test]
fn built_from_the_topology_and_indexed_by_node_idx() {
    let topo = Topology::dev();
    let me = topo.nodes()[0].id.clone();
    let clock = Arc::new(ManualClock::new(0));
    let g =
        Gossiper::from_topology(MembershipConfig::default(), &topo, &me, 1, clock.clone()).unwrap();
    assert_eq!(g.snapshot().len(), topo.nodes().len());
    let other = topo.nodes()[1].id.clone();
    assert!(g.is_up(&me) && g.is_up(&other));
    assert!(!g.is_up("nobody"));
    clock.advance(60_000); // never heard from anyone
    assert!(g.is_up(&me), "we are always up");
    assert!(!g.is_up(&other));

    // A new layout: one node goes, its state is forgotten; the rest stay.
    let mut members = topo.nodes();
    let gone = members.remove(2).id;
    g.set_members(&members);
    let ids: Vec<String> = g.snapshot().into_iter().map(|s| s.id).collect();
    let want: Vec<String> = members.iter().map(|n| n.id.clone()).collect();
    assert_eq!(ids, want, "the table follows the layout, in its order");
    assert!(!g.is_up(&gone));
    assert!(
        g.is_up(&me) && !g.is_up(&other),
        "kept state of staying nodes"
    );

    let mut shuffled = topo.nodes();
    shuffled.swap(0, 1);
    let err = Gossiper::new(MembershipConfig::default(), shuffled, &me, 1, clock).unwrap_err();
    assert!(
        matches!(err, MembershipError::IndexMismatch { position: 0, .. }),
        "{err}"
    );
}

#[test]
fn handle_digest_replies_with_the_merged_view() {
    let nodes = node_infos(4, 2);
    let clock = Arc::new(ManualClock::new(0));
    let g = |id: &str| {
        Gossiper::new(
            MembershipConfig::default(),
            nodes.clone(),
            id,
            5,
            clock.clone(),
        )
        .unwrap()
    };
    let (a, b) = (g("n00"), g("n01"));
    let mut rng = StdRng::seed_from_u64(1);
    a.begin_round(&mut rng);
    let reply = b.handle_digest(a.digest());
    assert_eq!(reply.from, "n01");
    let ids: Vec<_> = reply
        .entries
        .iter()
        .map(|e| (e.node_id.as_str(), e.heartbeat))
        .collect();
    assert_eq!(
        ids,
        [("n00", 1), ("n01", 0)],
        "b learnt a's heartbeat and replied with it"
    );
}

#[test]
fn a_restarted_node_is_seen_up_again() {
    let nodes = node_infos(3, 1);
    let clock = Arc::new(ManualClock::new(0));
    let cfg = MembershipConfig::default();
    let g = |id: &str, generation| {
        Gossiper::new(cfg.clone(), nodes.clone(), id, generation, clock.clone()).unwrap()
    };
    let (a, b) = (g("n00", 10), g("n01", 10));
    let mut rng = StdRng::seed_from_u64(5);
    for _ in 0..10 {
        clock.advance(1000);
        a.begin_round(&mut rng);
        b.begin_round(&mut rng);
        a.apply_reply(&b.handle_digest(a.digest()));
    }
    assert!(a.is_up("n01"));
    clock.advance(60_000); // b is dead for a minute
    assert!(!a.is_up("n01"));
    let b2 = g("n01", 70_000); // and restarts with a newer generation
    b2.begin_round(&mut rng);
    a.apply_reply(&b2.handle_digest(a.digest()));
    assert!(a.is_up("n01"));
    let s = &a.snapshot()[1];
    assert_eq!((s.generation, s.heartbeat, s.up), (70_000, 1, true));
    assert!(!a.is_up("nope"), "unknown ids are never up");
}

/// The real loop, on a 5 ms interval: exchanges reach the peer, replies are
/// merged, and shutdown ends it. Completion, not timing, is asserted.
#[tokio::test]
async fn run_exchanges_until_shutdown() {
    let nodes = node_infos(2, 1);
    let cfg = MembershipConfig {
        gossip_interval_ms: 5,
        ..MembershipConfig::default()
    };
    let g = |id: &str| {
        Gossiper::new(
            cfg.clone(),
            nodes.clone(),
            id,
            1,
            Arc::new(MonotonicClock::new()),
        )
        .unwrap()
    };
    let (a, b) = (g("n00"), g("n01"));
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let stop = Arc::new(stop);
    let calls = Arc::new(AtomicUsize::new(0));
    let exchange = {
        let (b, calls, stop) = (b.clone(), calls.clone(), stop.clone());
        move |peer: crate::topology::NodeInfo, digest: GossipDigest| {
            assert_eq!(peer.id, "n01");
            if calls.fetch_add(1, Ordering::SeqCst) + 1 == 3 {
                stop.send_replace(true);
            }
            let reply = b.handle_digest(digest);
            async move { Ok::<_, String>(reply) }
        }
    };
    tokio::spawn(a.clone().run(exchange, shutdown))
        .await
        .unwrap();
    assert!(calls.load(Ordering::SeqCst) >= 3);
    let heard = b.snapshot()[0].heartbeat;
    assert!(heard >= 3, "b heard a's heartbeat {heard}");
    assert!(a.snapshot()[1].generation == 1, "a merged b's reply");
}

/// A peer that never answers costs one interval per round, not the loop.
#[tokio::test]
async fn a_hung_exchange_does_not_stall_the_loop() {
    let nodes = node_infos(2, 1);
    let cfg = MembershipConfig {
        gossip_interval_ms: 5,
        ..MembershipConfig::default()
    };
    let a = Gossiper::new(cfg, nodes, "n00", 1, Arc::new(MonotonicClock::new())).unwrap();
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let calls = Arc::new(AtomicUsize::new(0));
    let exchange = {
        let calls = calls.clone();
        move |_peer, _digest| {
            if calls.fetch_add(1, Ordering::SeqCst) + 1 == 4 {
                stop.send_replace(true);
            }
            std::future::pending::<Result<GossipDigest, String>>()
        }
    };
    a.clone().run(exchange, shutdown).await;
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    assert!(a.snapshot()[0].heartbeat >= 4);
}

/// review-tidy34 L4: each round asks the node whether it takes writes and
/// gossips the answer with its heartbeat; a peer that merges the digest
/// counts it not ready, and ready again once a round says so.
#[test]
fn each_round_gossips_whether_the_node_takes_writes() {
    let nodes = node_infos(2, 1);
    let clock = Arc::new(ManualClock::new(0));
    let g = |id: &str| {
        let cfg = MembershipConfig::default();
        Gossiper::new(cfg, nodes.clone(), id, 1, clock.clone()).unwrap()
    };
    let (a, b) = (g("n00"), g("n01"));
    let ready = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let probe = ready.clone();
    a.report_readiness(Arc::new(move || probe.load(Ordering::SeqCst)));
    let mut rng = StdRng::seed_from_u64(7);
    for want in [false, true] {
        ready.store(want, Ordering::SeqCst);
        let round = a.begin_round(&mut rng);
        let (_, digest) = round.first().expect("a peer to gossip with");
        b.handle_digest(digest.clone());
        assert_eq!(b.is_ready("n00"), want, "as n00's probe said");
        assert_eq!(a.is_ready("n00"), want, "its own entry");
        assert!(b.is_up("n00"), "up either way");
    }
}
