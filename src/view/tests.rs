//! Tests of the view derivation, the install/propose rules and the
//! persisted-or-seed choice.

use super::store::{self, Origin};
use super::*;
use crate::engine::memory::MemoryEngine;
use crate::engine::{Engine, Limits};
use crate::layout::NewNode;
use crate::topology::Topology;

fn engine() -> Arc<dyn Engine> {
    Arc::new(MemoryEngine::new(Limits::default()))
}

fn with_keyspace(l: &Layout, name: &str) -> Layout {
    let mut next = l.clone();
    next.version += 1;
    let spec = next.keyspaces.values().next().expect("dev has one").clone();
    next.keyspaces.insert(name.to_string(), spec);
    next
}

#[test]
fn the_seed_view_places_keys_as_the_topology_ring() {
    let topo = Topology::dev();
    let view = ClusterView::derive(Layout::seed(&topo), "dc1-n2").expect("derive");
    let old = Ring::new(&topo);
    assert_eq!(view.version(), 1);
    assert_eq!(view.me().expect("member").id, "dc1-n2");
    assert_eq!(view.members().len(), old.nodes().len());
    for k in 0..200u32 {
        let key = k.to_be_bytes();
        assert_eq!(
            view.ring.replicas("default", &key).expect("ks"),
            old.replicas("default", &key).expect("ks"),
        );
    }
    assert!(view.pending.is_empty());
}

#[test]
fn a_node_outside_the_view_matches_no_replica() {
    let view = ClusterView::derive(Layout::seed(&Topology::dev()), "nobody").expect("derive");
    assert!(view.me().is_none());
    assert_eq!(view.me_idx(), NOT_A_MEMBER);
    let set = view.ring.replicas("default", b"k").expect("ks");
    assert!(!set.contains(view.me_idx()));
}

#[test]
fn a_joining_node_makes_pending_replicas_in_the_view() {
    let seed = Layout::seed(&Topology::dev());
    let (dc, rack) = {
        let (dc, rack, _) = seed.nodes().next().expect("a node");
        (dc.to_string(), rack.to_string())
    };
    let tokens = crate::ring::allocate_tokens(&seed, &dc, &rack, 16, 3).expect("tokens");
    let node = NewNode {
        id: "dc1-new".into(),
        client_address: "127.0.0.1:19000".parse().expect("addr"),
        peer_address: "127.0.0.1:19001".parse().expect("addr"),
        admin_address: "127.0.0.1:19002".parse().expect("addr"),
    };
    let next = seed.begin_join(node, &dc, &rack, &tokens).expect("join");
    let view = ClusterView::derive(next, "dc1-new").expect("derive");
    assert!(view.me().is_some(), "a joining node is a member");
    assert!(!view.pending.is_empty());
    let me = view.me_idx();
    let any_pending = view
        .pending
        .ranges("default")
        .any(|(_, p)| p.iter().any(|d| d.nodes.contains(&me)));
    assert!(any_pending, "the joiner is pending for some range");
}

#[tokio::test]
async fn install_takes_only_newer_layouts_persists_then_notifies() {
    let e = engine();
    let seed = Layout::seed(&Topology::dev());
    let (l, origin) = store::open(&*e, seed.clone()).expect("open");
    assert_eq!(origin, Origin::Seed);
    let cluster = Cluster::new(l, "dc1-n1", Some(e.clone())).expect("cluster");
    let mut rx = cluster.subscribe();
    // Older or equal: nothing happens.
    assert!(matches!(
        cluster.install(seed.clone()).expect("install"),
        Installed::Unchanged { version: 1 }
    ));
    let v2 = with_keyspace(&seed, "extra");
    assert!(matches!(
        cluster.install(v2.clone()).expect("install"),
        Installed::Swapped { from: 1, to: 2, .. }
    ));
    assert_eq!(cluster.current().version(), 2);
    assert!(cluster.current().ring.replicas("extra", b"k").is_ok());
    rx.changed().await.expect("notified");
    assert_eq!(rx.borrow().version(), 2);
    assert_eq!(store::load(&*e).expect("load"), Some(v2));
}

#[tokio::test]
async fn propose_must_be_the_next_version() {
    let seed = Layout::seed(&Topology::dev());
    let group = super::cas_testing::Group::new(&seed, || Some(engine()));
    let cluster = group.node("dc1-n1");
    let mut skip = with_keyspace(&seed, "x");
    skip.version = 3;
    match cluster.propose(skip).await {
        Err(ProposeError::NotNext { current, proposed }) => {
            assert_eq!((current, proposed), (1, 3))
        }
        other => panic!("expected NotNext, got {other:?}"),
    }
    let pushed = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let alone = Cluster::new(seed.clone(), "dc1-n1", Some(engine())).expect("cluster");
    let p = pushed.clone();
    alone.set_push(Arc::new(move |l: Arc<Layout>| p.lock().push(l.version)));
    // Alone, one member of six cannot decide: nothing installed or pushed.
    let undecided = alone.propose(with_keyspace(&seed, "x")).await;
    assert!(
        matches!(undecided, Err(ProposeError::Cas(_))),
        "{undecided:?}"
    );
    assert_eq!((alone.current().version(), pushed.lock().len()), (1, 0));
    let view = cluster
        .propose(with_keyspace(&seed, "x"))
        .await
        .expect("next");
    assert_eq!(view.version(), 2);
    assert_eq!(group.node("dc2-n3").current().version(), 2, "pushed");
    // The same version again is refused, naming v2.
    let again = cluster.propose(with_keyspace(&seed, "y")).await;
    assert!(matches!(
        again,
        Err(ProposeError::NotNext { current: 2, .. })
    ));
}

#[test]
fn a_restart_keeps_a_newer_persisted_layout_over_the_file() {
    let seed = Layout::seed(&Topology::dev());
    let v3 = with_keyspace(&with_keyspace(&seed, "a"), "b");
    let (l, o) = store::choose(seed.clone(), Some(v3.clone()));
    assert_eq!((l.version, o), (3, Origin::Persisted));
    let (l, o) = store::choose(seed.clone(), None);
    assert_eq!((l.version, o), (1, Origin::Seed));
    let (l, o) = store::choose(seed.clone(), Some(seed.clone()));
    assert_eq!((l.version, o), (1, Origin::SeedOverPersisted));
    // Through the engine: persisted v3 survives a start with the v1 file.
    let e = engine();
    store::save(&*e, &v3).expect("save");
    let (l, o) = store::open(&*e, seed).expect("open");
    assert_eq!((l, o), (v3, Origin::Persisted));
}

#[tokio::test]
async fn a_keyspace_is_the_next_layout_and_is_validated() {
    use super::http::{create_keyspace, parse_replication, with_keyspace, KeyspaceError};
    let seed = Layout::seed(&Topology::dev());
    let rf = parse_replication("dc1:3,dc2=2").expect("parse");
    let next = with_keyspace(&seed, "orders", rf.clone()).expect("next");
    assert_eq!(next.version, 2);
    assert_eq!(next.keyspaces["orders"].replication, rf);
    assert!(matches!(
        with_keyspace(&next, "orders", rf.clone()),
        Err(KeyspaceError::Exists(_))
    ));
    assert!(matches!(
        with_keyspace(&seed, "bad name", rf.clone()),
        Err(KeyspaceError::BadName(_))
    ));
    let too_many = parse_replication("dc1:4").expect("parse");
    assert!(matches!(
        with_keyspace(&seed, "x", too_many),
        Err(KeyspaceError::TooFewNodes { rf: 4, .. })
    ));
    let nowhere = parse_replication("dc9:1").expect("parse");
    assert!(matches!(
        with_keyspace(&seed, "x", nowhere),
        Err(KeyspaceError::UnknownDc(_))
    ));
    assert!(parse_replication("dc1").is_err() && parse_replication("dc1:0").is_err());
    // Through a cluster: proposed as v2, placed at once.
    let group = super::cas_testing::Group::new(&seed, || Some(engine()));
    let cluster = group.node("dc1-n1");
    let created = create_keyspace(&cluster, "orders", "dc1:3,dc2:2").await;
    assert_eq!(created.expect("create"), 2);
    assert!(cluster.current().ring.replicas("orders", b"k").is_ok());
}

#[test]
fn ownership_sums_to_rf_per_datacenter() {
    let seed = Layout::seed(&Topology::dev());
    let rows = super::http::ownership(&seed, "default");
    assert_eq!(rows.len(), 6);
    for dc in ["dc1", "dc2"] {
        let rf = seed.keyspaces["default"].replication[dc] as f64;
        let total: f64 = (rows.iter().filter(|r| r.dc == dc))
            .map(|r| r.ownership_pct)
            .sum();
        assert!((total - rf * 100.0).abs() < 1e-6, "{dc}: {total}");
    }
}

#[test]
fn a_digest_with_a_newer_or_conflicting_layout_means_fetch() {
    use crate::proto::v1::internode::GossipDigest;
    use crate::transport::{faults::Faults, Peers};
    let seed = Layout::seed(&Topology::dev());
    let mine = Cluster::new(seed.clone(), "dc1-n1", None).expect("cluster");
    let me = mine.current().me().expect("member").clone();
    let sync = super::sync::LayoutSync::new(
        mine.clone(),
        Arc::new(Peers::new(
            me,
            Arc::new(Faults::new(false)),
            &crate::transport::tls::Tls::insecure(),
        )),
        crate::tasks::Spawner::detached(),
    );
    let theirs = Cluster::new(seed.clone(), "dc1-n2", None).expect("cluster");
    let theirs_sync = super::sync::LayoutSync::new(
        theirs.clone(),
        Arc::new(Peers::new(
            theirs.current().me().expect("member").clone(),
            Arc::new(Faults::new(false)),
            &crate::transport::tls::Tls::insecure(),
        )),
        crate::tasks::Spawner::detached(),
    );
    let stamped = |s: &super::sync::LayoutSync| {
        let mut d = GossipDigest::default();
        s.stamp(&mut d);
        d
    };
    assert!(!sync.is_behind(&stamped(&theirs_sync)), "same layout");
    let mut edited = stamped(&theirs_sync);
    edited.layout_digest = (!mine.current().layout.digest()).to_be_bytes().to_vec();
    assert!(
        !sync.is_behind(&edited),
        "a peer seeded from another file is not fetched: each keeps its own seed"
    );
    theirs.install(with_keyspace(&seed, "a")).expect("v2");
    assert!(sync.is_behind(&stamped(&theirs_sync)), "newer version");
    assert!(!theirs_sync.is_behind(&stamped(&sync)), "older version");
    mine.install(with_keyspace(&seed, "b")).expect("v2 too");
    assert!(
        sync.is_behind(&stamped(&theirs_sync)) && theirs_sync.is_behind(&stamped(&sync)),
        "same version, other content: both fetch, the merge settles it"
    );
}

#[test]
fn a_peer_seeded_from_another_topology_file_makes_the_node_not_ready_until_a_change() {
    use crate::proto::v1::internode::GossipDigest;
    use crate::transport::{faults::Faults, Peers};
    let seed = Layout::seed(&Topology::dev());
    let mine = Cluster::new(seed.clone(), "dc1-n1", None).expect("cluster");
    let me = mine.current().me().expect("member").clone();
    let peers = Peers::new(
        me,
        Arc::new(Faults::new(false)),
        &crate::transport::tls::Tls::insecure(),
    );
    let sync = super::sync::LayoutSync::new(
        mine.clone(),
        Arc::new(peers),
        crate::tasks::Spawner::detached(),
    );
    assert_eq!(mine.serving(), Ok(()));
    let mut other = GossipDigest {
        from: "dc2-n3".into(),
        layout_version: 1,
        ..GossipDigest::default()
    };
    other.layout_digest = (!seed.digest()).to_be_bytes().to_vec();
    assert!(!sync.is_behind(&other));
    let err = mine.serving().unwrap_err();
    assert!(
        matches!(&err, super::NotServing::SeedMismatch { peer } if peer == "dc2-n3"),
        "{err:?}"
    );
    let err = err.to_string();
    assert!(
        err.contains("dc2-n3") && err.contains("topology file"),
        "{err}"
    );
    // A layout change (v2) supersedes both seeds: ready again.
    mine.install(with_keyspace(&seed, "a")).expect("v2");
    assert_eq!(mine.serving(), Ok(()));
}
