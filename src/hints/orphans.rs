//! Node hints whose destination has left the cluster (Left after a
//! decommission, Removed after a removenode or a replacement). Nobody would
//! deliver them: the node is gone, and after a restart no delivery task is
//! started for a non-member. Left alone they would also keep a leaver
//! "draining" forever. So they are **redirected**: each entry carries the
//! full record (a sibling set with its clocks), and merging it is
//! idempotent, so it is handed to the key's current replicas (and pending
//! replicas) in the destination's datacenter — a durable hint each, or a
//! merge here when this node is one — and then deleted. An entry that
//! cannot be redirected (its keyspace is gone, it has no replica there, or
//! it cannot be decoded) is dropped, counted and recorded for anti-entropy.
//!
//! This runs on every node, in place of the destination's delivery task
//! (the task turns into [`drain`] once its node has left), so nothing else
//! deletes from the queue meanwhile.
//!
//! Owns [`fate`] (pure: the view in, the decision out) and [`drain`].
//! Must not send anything itself: redirected hints go through the queues.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::queue::{Dest, Lane};
use super::Hints;
use crate::layout::NodeState;
use crate::ring::token_of;
use crate::version::SiblingSet;
use crate::view::ClusterView;

/// Entries redirected per page.
const PAGE: usize = 256;

/// What becomes of a node hint for `dest` in a view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fate {
    /// `dest` is a member, or not known yet (a newer view may add it):
    /// deliver as usual.
    Deliver,
    /// `dest` has left: hand the record to these nodes (the key's replicas
    /// and pending replicas in `dest`'s datacenter), then delete it.
    Redirect(Vec<String>),
    /// `dest` has left and the key has no replica in its datacenter (or
    /// its keyspace is gone): drop it, recorded for anti-entropy.
    Drop,
}

/// Whether `dest` has left the cluster in `view` (Left or Removed).
pub fn gone(view: &ClusterView, dest: &str) -> bool {
    view.layout
        .node(dest)
        .is_some_and(|(_, _, n)| matches!(n.state, NodeState::Left | NodeState::Removed))
}

/// The fate of a hint for `dest` about `key` of `keyspace` in `view`.
pub fn fate(view: &ClusterView, dest: &str, keyspace: &str, key: &[u8]) -> Fate {
    if !gone(view, dest) {
        return Fate::Deliver;
    }
    let Some((dc, _, _)) = view.layout.node(dest) else {
        return Fate::Deliver;
    };
    let Ok(set) = view.ring.replicas(keyspace, key) else {
        return Fate::Drop;
    };
    let mut owners: Vec<String> = set
        .all()
        .map(|n| view.ring.node(n))
        .filter(|n| n.dc == dc)
        .map(|n| n.id.clone())
        .collect();
    let pending = view.pending.for_token(keyspace, token_of(key));
    for p in pending.iter().filter(|p| p.dc == dc) {
        for &i in &p.nodes {
            let id = &view.ring.node(i).id;
            if !owners.contains(id) {
                owners.push(id.clone());
            }
        }
    }
    if owners.is_empty() {
        Fate::Drop
    } else {
        Fate::Redirect(owners)
    }
}

/// Redirects the queue of `dest` (a node that has left) until `shutdown`;
/// `me` is this node's id.
pub(crate) async fn drain(
    hints: Arc<Hints>,
    me: String,
    dest: Dest,
    mut shutdown: watch::Receiver<bool>,
) {
    tracing::info!(dest = %dest.label(), "node has left the cluster: redirecting its hints to the key's replicas");
    while !*shutdown.borrow() {
        let pause = match redirect_page(&hints, &me, &dest).await {
            Ok(0) => Duration::from_secs(1),
            Ok(_) => continue,
            Err(e) => {
                tracing::warn!(dest = %dest.label(), error = %e, "redirecting hints; retrying");
                Duration::from_secs(2)
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = hints.notified(&dest, Lane::Backlog) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Redirects (or drops) one page of `dest`'s queue; how many entries it
/// took out.
async fn redirect_page(hints: &Arc<Hints>, me: &str, dest: &Dest) -> Result<usize, String> {
    let (d, from) = (dest.clone(), dest.prefix(Lane::Backlog));
    let page = (hints.store)
        .blocking(move |s| s.load_page(&d, Lane::Backlog, from, Vec::new(), PAGE))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let view = hints.cluster.current();
    let (mut moved, mut dropped) = (Vec::new(), Vec::new());
    for l in page.entries {
        let set = SiblingSet::decode(&l.entry.record);
        match (
            fate(&view, dest.name(), &l.entry.keyspace, &l.entry.key),
            set,
        ) {
            (Fate::Deliver, _) => break,
            (Fate::Redirect(owners), Ok(set)) => {
                for o in owners {
                    super::moving::copy(hints, me, &o, &l.entry, &set).await?;
                }
                moved.push(l);
            }
            _ => dropped.push(l),
        }
    }
    let n = moved.len() + dropped.len();
    if n == 0 {
        return Ok(0);
    }
    let label = dest.label();
    metrics::counter!("geokv_hints_redirected_total", "dest" => label.clone())
        .increment(moved.len() as u64);
    metrics::counter!("geokv_hints_orphaned_total", "dest" => label)
        .increment(dropped.len() as u64);
    let d = dest.clone();
    (hints.store)
        .blocking(move |s| s.remove(&d, Lane::Backlog, &moved, &dropped))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Engine, Limits, MemoryEngine};
    use crate::layout::Layout;
    use crate::topology::Topology;
    use crate::version::{ActorId, CausalContext};
    use crate::view::Cluster;

    const TOPO: &str = "
cluster_name: t
defaults: { vnodes: 16 }
datacenters:
  - name: dc1
    racks:
      - { name: r1, nodes: [ { id: a, client_address: 127.0.0.1:1, peer_address: 127.0.0.1:2, admin_address: 127.0.0.1:3 } ] }
      - { name: r2, nodes: [ { id: b, client_address: 127.0.0.1:4, peer_address: 127.0.0.1:5, admin_address: 127.0.0.1:6 } ] }
      - { name: r3, nodes: [ { id: c, client_address: 127.0.0.1:7, peer_address: 127.0.0.1:8, admin_address: 127.0.0.1:9 } ] }
      - { name: r4, nodes: [ { id: d, client_address: 127.0.0.1:10, peer_address: 127.0.0.1:11, admin_address: 127.0.0.1:12 } ] }
  - name: dc2
    racks:
      - { name: r1, nodes: [ { id: x, client_address: 127.0.0.2:1, peer_address: 127.0.0.2:2, admin_address: 127.0.0.2:3 } ] }
keyspaces:
  ks: { replication: { dc1: 3, dc2: 1 } }
";

    /// The seed, and the layout where `d` has decommissioned.
    fn layouts() -> (Layout, Layout) {
        let seed = Layout::seed(&Topology::parse("t.yaml", TOPO).unwrap());
        let left = seed.begin_leave("d").unwrap().finish_leave("d").unwrap();
        (seed, left)
    }

    fn dc1_replicas(view: &ClusterView, key: &[u8]) -> Vec<String> {
        let set = view.ring.replicas("ks", key).unwrap();
        let nodes = set.all().map(|n| view.ring.node(n));
        nodes
            .filter(|n| n.dc == "dc1")
            .map(|n| n.id.clone())
            .collect()
    }

    #[test]
    fn hints_for_a_node_that_left_go_to_the_keys_replicas_and_members_keep_theirs() {
        let (seed, left) = layouts();
        let before = ClusterView::derive(seed, "a").unwrap();
        assert_eq!(
            fate(&before, "d", "ks", b"k1"),
            Fate::Deliver,
            "still a member"
        );
        let view = ClusterView::derive(left, "a").unwrap();
        assert!(gone(&view, "d") && !gone(&view, "b") && !gone(&view, "zz"));
        assert_eq!(fate(&view, "b", "ks", b"k1"), Fate::Deliver);
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

    #[tokio::test]
    async fn a_queue_for_a_node_that_left_is_redirected_and_emptied() {
        let (seed, left) = layouts();
        let engine: Arc<dyn Engine> = Arc::new(MemoryEngine::new(Limits::default()));
        let cluster = Cluster::new(seed, "a", None).unwrap();
        let me = cluster.current().me().unwrap().clone();
        let open =
            |c: &Cluster| Hints::open(engine.clone(), c.clone(), me.clone(), Default::default());
        let hints = Arc::new(open(&cluster).unwrap());
        let mut set = SiblingSet::new();
        set.update(ActorId(1), &CausalContext::new(), Some("v".into()), 1, 8)
            .unwrap();
        let keys: Vec<Vec<u8>> = (0..20).map(|i| format!("k{i}").into_bytes()).collect();
        for k in &keys {
            hints.hint_node("d", "ks", k, &set).await.unwrap();
        }
        cluster.install(left).unwrap();
        // After a restart the queue for "d" still gets a task.
        let reopened = Arc::new(open(&cluster).unwrap());
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
        let mut expect: std::collections::BTreeMap<String, u64> = Default::default();
        for k in &keys {
            for o in dc1_replicas(&view, k) {
                if o == "a" {
                    let got = engine.get_versions("ks", k).unwrap();
                    assert_eq!(got.as_ref(), Some(&set), "merged here");
                } else {
                    *expect.entry(o).or_default() += 1;
                }
            }
        }
        for (o, count) in expect {
            assert_eq!(
                reopened.backlog_entries(&Dest::Node(o.clone())),
                count,
                "{o}"
            );
        }
        assert_eq!(redirect_page(&reopened, "a", &d).await.unwrap(), 0);
    }
}
