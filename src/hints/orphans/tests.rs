//! Tests of the redirection of node hints: fates, a member's sifted page,
//! a leaver's queue emptied, and a redirection interrupted by a failure.

use std::collections::BTreeMap;

use super::*;
use crate::engine::testing::Hooked;
use crate::engine::{Engine, Limits, MemoryEngine};
use crate::hints::testing::{layouts, Threads};
use crate::version::{ActorId, CausalContext};
use crate::view::Cluster;

fn dc1_replicas(view: &ClusterView, key: &[u8]) -> Vec<String> {
    let set = view.ring.replicas("ks", key).unwrap();
    let nodes = set.all().map(|n| view.ring.node(n));
    nodes
        .filter(|n| n.dc == "dc1")
        .map(|n| n.id.clone())
        .collect()
}

/// This node's (`a`'s) hints over `engine`, on `cluster`'s current view,
/// with its replica (where a copy to `a` is merged).
fn open(engine: &Arc<dyn Engine>, cluster: &Cluster) -> Arc<Hints> {
    let me = cluster.current().me().unwrap().clone();
    let replica = Arc::new(crate::replica::Replica::new(engine.clone(), &me.id, 8));
    let hints = Hints::open(engine.clone(), cluster.clone(), me, Default::default()).unwrap();
    Arc::new(hints.with_replica(replica))
}

/// Keys `k0..k{n}` hinted to node `dest` in `ks`, each with the one
/// sibling set returned.
async fn hinted(hints: &Hints, dest: &str, n: usize) -> (SiblingSet, Vec<Vec<u8>>) {
    let mut set = SiblingSet::new();
    set.update(ActorId(1), &CausalContext::new(), Some("v".into()), 1, 8)
        .unwrap();
    let keys: Vec<Vec<u8>> = (0..n).map(|i| format!("k{i}").into_bytes()).collect();
    for k in &keys {
        hints.hint_node(dest, "ks", k, &set).await.unwrap();
    }
    (set, keys)
}

/// How many of `keys` each dc1 replica other than `a` should have a
/// hint for (`a` merges its copies instead).
fn hints_per_other_replica(view: &ClusterView, keys: &[Vec<u8>]) -> BTreeMap<String, u64> {
    let mut expect = BTreeMap::new();
    for k in keys {
        for o in dc1_replicas(view, k).into_iter().filter(|o| o != "a") {
            *expect.entry(o).or_default() += 1;
        }
    }
    expect
}

#[test]
fn hints_for_a_node_that_left_go_to_the_keys_replicas_and_members_keep_theirs() {
    let (seed, left) = layouts();
    let before = ClusterView::derive(seed, "a").unwrap();
    let d_has = (0..).map(|i| format!("k{i}").into_bytes());
    let d_key = d_has
        .clone()
        .find(|k| dc1_replicas(&before, k).contains(&"d".to_string()))
        .unwrap();
    assert_eq!(
        fate(&before, "d", "ks", &d_key),
        Fate::Deliver,
        "still a member"
    );
    let view = ClusterView::derive(left, "a").unwrap();
    assert!(gone(&view, "d") && !gone(&view, "b") && !gone(&view, "zz"));
    let b_key = d_has
        .clone()
        .find(|k| dc1_replicas(&view, k).contains(&"b".to_string()))
        .unwrap();
    assert_eq!(fate(&view, "b", "ks", &b_key), Fate::Deliver);
    assert_eq!(
        fate(&view, "zz", "ks", b"k1"),
        Fate::Deliver,
        "unknown: maybe newer"
    );
    for i in 0..50 {
        let key = format!("k{i}").into_bytes();
        let Fate::Redirect(to) = fate(&view, "d", "ks", &key) else {
            panic!("a key with replicas is redirected")
        };
        assert_eq!(to, dc1_replicas(&view, &key), "its dc1 replicas now");
        assert!(!to.contains(&"d".to_string()));
    }
    assert_eq!(fate(&view, "d", "gone_ks", b"k1"), Fate::Drop);
}

#[test]
fn a_replaced_node_s_hints_go_to_its_replacement() {
    let (seed, _) = layouts();
    let new = crate::layout::NewNode {
        id: "n".into(),
        client_address: "127.0.0.9:1".parse().unwrap(),
        peer_address: "127.0.0.9:2".parse().unwrap(),
        admin_address: "127.0.0.9:3".parse().unwrap(),
    };
    let replacing = seed.begin_replace("b", new).unwrap();
    let done = replacing.finish_replace("n").unwrap();
    let view = ClusterView::derive(done, "a").unwrap();
    let key = (0..)
        .map(|i| format!("k{i}").into_bytes())
        .find(|k| dc1_replicas(&view, k).contains(&"n".to_string()))
        .unwrap();
    let Fate::Redirect(to) = fate(&view, "b", "ks", &key) else {
        panic!("b is Removed")
    };
    assert!(to.contains(&"n".to_string()), "{to:?}");
}

/// A hint planned on an older view for a member that no longer
/// replicates the key (it lost the range and refuses the hint, see
/// `receive::for_node`) goes to the key's replicas in its datacenter
/// now, never back to it; one it still replicates is delivered.
#[test]
fn a_hint_for_a_member_that_lost_the_key_goes_to_the_keys_replicas() {
    let (seed, _) = layouts();
    let view = ClusterView::derive(seed, "a").unwrap();
    let (mut lost, mut kept) = (0, 0);
    for i in 0..100 {
        let key = format!("k{i}").into_bytes();
        let owners = dc1_replicas(&view, &key);
        match fate(&view, "b", "ks", &key) {
            Fate::Deliver => {
                kept += 1;
                assert!(owners.contains(&"b".to_string()));
            }
            Fate::Redirect(to) => {
                lost += 1;
                assert_eq!(to, owners);
                assert!(!to.contains(&"b".to_string()));
            }
            Fate::Drop => panic!("every key has dc1 replicas"),
        }
    }
    assert!(lost > 0 && kept > 0, "{lost} lost, {kept} kept");
    assert_eq!(
        fate(&view, "b", "gone_ks", b"k1"),
        Fate::Deliver,
        "maybe newer"
    );
}

/// A loaded page of a member's queue: the entries whose key it no
/// longer replicates are redirected (durable copies first) and deleted,
/// the rest are sent; the redirected copies are never lost.
#[tokio::test]
async fn a_member_s_page_is_sifted_of_keys_it_does_not_replicate() {
    let (seed, _) = layouts();
    let engine: Arc<dyn Engine> = Arc::new(MemoryEngine::new(Limits::default()));
    let cluster = Cluster::new(seed, "a", None).unwrap();
    let hints = open(&engine, &cluster);
    let (set, keys) = hinted(&hints, "b", 40).await;
    let b = Dest::Node("b".into());
    let from = b.prefix(Lane::Backlog);
    let page = hints
        .store
        .load_page(&b, Lane::Backlog, from, Vec::new(), 100)
        .unwrap();
    assert_eq!(page.entries.len(), 40);
    let sifted = sift(&hints, "a", &b, Lane::Backlog, page).await;
    let view = cluster.current();
    let has = |k: &[u8]| dc1_replicas(&view, k).contains(&"b".to_string());
    let sent: Vec<Vec<u8>> = sifted.entries.iter().map(|l| l.entry.key.clone()).collect();
    let expect: Vec<Vec<u8>> = {
        let mut v: Vec<Vec<u8>> = keys.iter().filter(|k| has(k)).cloned().collect();
        v.sort_by_key(|k| sent.iter().position(|s| s == k));
        v
    };
    assert_eq!(sent, expect, "only keys b replicates are sent to b");
    assert!(!sent.is_empty() && sent.len() < keys.len());
    assert_eq!(
        hints.backlog_entries(&b),
        sent.len() as u64,
        "the rest left b's queue"
    );
    for k in keys.iter().filter(|k| !has(k)) {
        for o in dc1_replicas(&view, k) {
            if o == "a" {
                assert_eq!(engine.get_versions("ks", k).unwrap().as_ref(), Some(&set));
            }
        }
    }
    let elsewhere: u64 = ["c", "d"]
        .iter()
        .map(|n| hints.backlog_entries(&Dest::Node(n.to_string())))
        .sum();
    let want: usize = keys
        .iter()
        .filter(|k| !has(k))
        .map(|k| dc1_replicas(&view, k).iter().filter(|o| *o != "a").count())
        .sum();
    assert_eq!(elsewhere, want as u64, "a durable hint per other replica");
}

#[tokio::test]
async fn a_queue_for_a_node_that_left_is_redirected_and_emptied() {
    let (seed, left) = layouts();
    let engine: Arc<dyn Engine> = Arc::new(MemoryEngine::new(Limits::default()));
    let cluster = Cluster::new(seed, "a", None).unwrap();
    let hints = open(&engine, &cluster);
    let (set, keys) = hinted(&hints, "d", 20).await;
    cluster.install(left).unwrap();
    // After a restart the queue for "d" still gets a task.
    let reopened = open(&engine, &cluster);
    assert!(reopened.destinations().contains(&Dest::Node("d".into())));
    let d = Dest::Node("d".into());
    assert_eq!(reopened.backlog_entries(&d), 20);
    let n = redirect_page(&reopened, "a", &d).await.unwrap();
    assert_eq!(n, 20);
    assert_eq!(
        reopened.backlog_entries(&d),
        0,
        "nothing keeps a leaver draining"
    );
    let view = cluster.current();
    for k in keys
        .iter()
        .filter(|k| dc1_replicas(&view, k).contains(&"a".into()))
    {
        let got = engine.get_versions("ks", k).unwrap();
        assert_eq!(got.as_ref(), Some(&set), "merged here");
    }
    for (o, count) in hints_per_other_replica(&view, &keys) {
        assert_eq!(
            reopened.backlog_entries(&Dest::Node(o.clone())),
            count,
            "{o}"
        );
    }
    assert_eq!(redirect_page(&reopened, "a", &d).await.unwrap(), 0);
}

/// Review Medium of stop 20: a redirection that fails part-way (the
/// seventh copy, after two entries were copied to their three replicas
/// each) takes the entries it did copy out of the queue before it
/// reports the failure, so the retry copies only the rest: every other
/// replica ends up with exactly one hint per key, no duplicates.
#[tokio::test]
async fn a_redirection_that_fails_part_way_takes_out_what_it_copied() {
    let (seed, left) = layouts();
    let threads = Arc::new(Hooked::new(Threads::new()));
    let engine: Arc<dyn Engine> = threads.clone();
    let cluster = Cluster::new(seed, "a", None).unwrap();
    let hints = open(&engine, &cluster);
    let (_, keys) = hinted(&hints, "d", 10).await;
    cluster.install(left).unwrap();
    let d = Dest::Node("d".into());
    // Each entry is one write per dc1 replica (3): the seventh write, the
    // third entry's first copy, fails.
    threads.fail_after(6);
    let failed = redirect_page(&hints, "a", &d).await;
    assert!(failed.is_err(), "{failed:?}");
    assert_eq!(
        hints.backlog_entries(&d),
        8,
        "the two entries copied are out of the queue"
    );
    assert_eq!(redirect_page(&hints, "a", &d).await.unwrap(), 8);
    assert_eq!(hints.backlog_entries(&d), 0);
    let view = cluster.current();
    for (o, count) in hints_per_other_replica(&view, &keys) {
        let queued = hints.backlog_entries(&Dest::Node(o.clone()));
        assert_eq!(queued, count, "{o}: one hint per key, none copied twice");
    }
}
