//! Node hints whose destination no longer takes them: it has left the
//! cluster (Left after a decommission, Removed after a removenode or a
//! replacement), or it is a member that no longer replicates the hint's
//! key (the hint was planned on an older view; the receiver refuses it in
//! its own view, see `receive::node_hint`, since applying it could put the
//! record back on an old owner that cleaned the range up). Nobody would
//! deliver them: a node that left is gone, and after a restart no delivery
//! task is started for a non-member. Left alone they would also keep a
//! leaver "draining" forever. So they are **redirected**: each entry
//! carries the full record (a sibling set with its clocks), and merging it
//! is idempotent, so it is handed to the key's current replicas (and
//! pending replicas) in the destination's datacenter — a durable hint
//! each, or a merge here when this node is one — and then deleted. An
//! entry that cannot be redirected (its keyspace is gone, it has no
//! replica there, or it cannot be decoded) is dropped, counted and
//! recorded for anti-entropy.
//!
//! This runs on every node, in place of the destination's delivery task
//! (the task turns into [`drain`] once its node has left), so nothing else
//! deletes from the queue meanwhile.
//!
//! Owns [`fate`] (pure: the view in, the decision out), [`drain`] (the
//! queue of a node that left) and [`sift`] (a member's page, before it is
//! sent).
//! Must not send anything itself: redirected hints go through the queues.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::page::Page;
use super::queue::{Dest, Lane};
use super::store::Loaded;
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
    /// `dest` replicates the key (an owner or a pending replica), or is
    /// not known yet (a newer view may add it): deliver as usual.
    Deliver,
    /// `dest` has left, or no longer replicates the key (the hint was
    /// planned on an older view): hand the record to these nodes (the
    /// key's replicas and pending replicas in `dest`'s datacenter), then
    /// delete it.
    Redirect(Vec<String>),
    /// As `Redirect`, but the key has no replica in `dest`'s datacenter
    /// (or its keyspace is gone): drop it, recorded for anti-entropy.
    Drop,
}

/// Whether `dest` has left the cluster in `view` (Left or Removed).
pub fn gone(view: &ClusterView, dest: &str) -> bool {
    view.layout
        .node(dest)
        .is_some_and(|(_, _, n)| matches!(n.state, NodeState::Left | NodeState::Removed))
}

/// The fate of a hint for `dest` about `key` of `keyspace` in `view`.
/// A member `dest` that replicates the key gets it; one that does not
/// (it lost the range, and its own view refuses the hint: see
/// `receive::node_hint`) has it redirected like a node that left, so a
/// hint planned on an older view reaches the key's replicas now.
pub fn fate(view: &ClusterView, dest: &str, keyspace: &str, key: &[u8]) -> Fate {
    let Some((dc, _, node)) = view.layout.node(dest) else {
        return Fate::Deliver;
    };
    let left = matches!(node.state, NodeState::Left | NodeState::Removed);
    let Ok(set) = view.ring.replicas(keyspace, key) else {
        // A member keeps hints for a keyspace this view lacks (a newer
        // view may have it); for a node that left nobody will take them.
        return if left { Fate::Drop } else { Fate::Deliver };
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
    if !left && owners.iter().any(|o| o == dest) {
        Fate::Deliver
    } else if owners.is_empty() {
        Fate::Drop
    } else {
        Fate::Redirect(owners)
    }
}

/// The entries of `page` (just loaded from the `lane` of `dest`, a
/// member's queue) that `dest` still replicates in the view in force; the
/// others are redirected to the key's replicas (or dropped, recorded)
/// and deleted first, so they are never sent to a node that would refuse
/// them. Should that fail, the page is returned whole (the receiver keeps
/// refusing them, and the next load tries again).
pub(crate) async fn sift(
    hints: &Arc<Hints>,
    me: &str,
    dest: &Dest,
    lane: Lane,
    page: Page,
) -> Page {
    let view = hints.cluster.current();
    let stray = |l: &Loaded| fate(&view, dest.name(), &l.entry.keyspace, &l.entry.key);
    if page.entries.iter().all(|l| stray(l) == Fate::Deliver) {
        return page;
    }
    let Page {
        range,
        entries,
        held,
    } = page;
    let (keep, out): (Vec<Loaded>, Vec<Loaded>) =
        entries.into_iter().partition(|l| stray(l) == Fate::Deliver);
    match place(hints, &view, me, dest, lane, out.clone()).await {
        Ok(_) => Page {
            range,
            entries: keep,
            held,
        },
        Err(e) => {
            tracing::warn!(dest = %dest.label(), error = %e, "redirecting stray hints; sending them as they are");
            let mut entries = keep;
            entries.extend(out);
            entries.sort_by(|a, b| a.key.cmp(&b.key));
            Page {
                range,
                entries,
                held,
            }
        }
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
    place(hints, &view, me, dest, Lane::Backlog, page.entries).await
}

/// Hands each of `entries` (from the `lane` of `dest`'s queue) over as
/// its [`fate`] in `view` says: redirected (a durable copy first) or
/// dropped and recorded, then deleted from the queue; an entry to deliver
/// ends the pass. How many entries it took out.
async fn place(
    hints: &Arc<Hints>,
    view: &ClusterView,
    me: &str,
    dest: &Dest,
    lane: Lane,
    entries: Vec<Loaded>,
) -> Result<usize, String> {
    let decide = |l: &Loaded| fate(view, dest.name(), &l.entry.keyspace, &l.entry.key);
    place_as(hints, me, dest, lane, entries, decide).await
}

/// [`place`] with each entry's fate decided by `decide`.
async fn place_as(
    hints: &Arc<Hints>,
    me: &str,
    dest: &Dest,
    lane: Lane,
    entries: Vec<Loaded>,
    decide: impl Fn(&Loaded) -> Fate,
) -> Result<usize, String> {
    let (mut moved, mut dropped) = (Vec::new(), Vec::new());
    for l in entries {
        let set = SiblingSet::decode(&l.entry.record);
        match (decide(&l), set) {
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
        .blocking(move |s| s.remove(&d, lane, &moved, &dropped))
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

    fn topo() -> String {
        crate::topology::testing::four_and_one()
    }

    /// The seed, and the layout where `d` has decommissioned.
    fn layouts() -> (Layout, Layout) {
        let seed = Layout::seed(&Topology::parse("t.yaml", &topo()).unwrap());
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
    /// `receive::node_hint`) goes to the key's replicas in its datacenter
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
        let me = cluster.current().me().unwrap().clone();
        let hints =
            Arc::new(Hints::open(engine.clone(), cluster.clone(), me, Default::default()).unwrap());
        let mut set = SiblingSet::new();
        set.update(ActorId(1), &CausalContext::new(), Some("v".into()), 1, 8)
            .unwrap();
        let keys: Vec<Vec<u8>> = (0..40).map(|i| format!("k{i}").into_bytes()).collect();
        for k in &keys {
            hints.hint_node("b", "ks", k, &set).await.unwrap();
        }
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
