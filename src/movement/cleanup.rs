//! Cleanup: dropping the data of ranges this node no longer replicates.
//!
//! Owns [`cleanup`] ([`plan`], then [`apply`]; [`cleanup_current`] under
//! the node's view, atomically with respect to view installs): for every range of the layout's ring that `node` does
//! not replicate ([`super::plan::unreplicated`]), one range delete of its
//! data keys. Refuses while any movement is in progress — the new owners
//! must be Normal (the movement finished) before an old owner drops a
//! range, never before. Must not decide when to run (the node runs it after
//! a movement finishes, and `geokv cleanup` by hand).
//!
//! Which applies the deletes must exclude: only those that can carry a plan
//! newer than the view in force V. The deletes commit under V (checked
//! under the install lock, `Cluster::write_exclusive`) and only ranges this
//! node does not replicate in V. An apply decided on this node's own view
//! (the coordinator's own replica write, a stream entry's local apply, read
//! repair's and anti-entropy's local applies) was planned on V, where its
//! key is not in a dropped range, or on an older view, under which losing
//! the key is what the movement planned (levels counted its pending
//! replicas): before or after the deletes, the outcome is the same. What
//! other nodes send can carry a newer plan: a replica write notes its
//! layout version (`Cluster::note_planned`) and is excluded (review M4);
//! the replica writes a stream receiver, read repair and anti-entropy send
//! carry none: those are not excluded yet (open; a stream receiver's
//! apply is counted toward the level). A node hint is applied only by a
//! replica of its key in the receiver's view, under the view lock
//! (`hints::receive`), so it cannot land in a range dropped under that view.

use crate::engine::{keys, Cf, Engine, EngineError, WriteBatch};
use crate::layout::{Layout, Movement};
use crate::ring::{Ring, TokenRange};
use crate::view::{Cluster, ClusterView};
use std::sync::Arc;

use super::plan::{unreplicated, PlanError};

/// Cleanup cannot run.
#[derive(Debug, thiserror::Error)]
pub enum CleanupError {
    #[error("a range movement is in progress ({0}); cleanup waits for it to finish")]
    MovementInProgress(Movement),
    #[error("the layout changed while the cleanup was planned (v{planned} is no longer in force, or a write planned on a newer layout arrived); nothing was dropped")]
    ViewChanged { planned: u64 },
    /// Not every live member is on the view in force yet (`POST /cleanup`
    /// waits for that, like the automatic cleanup).
    #[error("{0}; nothing was dropped")]
    NotAnnounced(String),
    #[error("the cleanup task failed: {0}")]
    Task(String),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// What a cleanup dropped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cleaned {
    /// The ranges dropped (every range the node does not replicate).
    pub ranges: Vec<(String, TokenRange)>,
    /// Keys found in them and deleted, and their bytes (key + record).
    pub keys: u64,
    pub bytes: u64,
}

/// Keys scanned per page while counting what a cleanup drops.
const COUNT_PAGE: usize = 1024;

/// What a cleanup will drop: the ranges and what they hold.
#[derive(Clone, Debug)]
pub struct CleanupPlan {
    cleaned: Cleaned,
    batch: WriteBatch,
}

impl CleanupPlan {
    /// What the cleanup will drop.
    pub fn cleaned(&self) -> &Cleaned {
        &self.cleaned
    }
}

/// Plans dropping every key of `layout`'s keyspaces in a range `node` does
/// not replicate under `layout` (read-only: counts what they hold).
pub fn plan(engine: &dyn Engine, layout: &Layout, node: &str) -> Result<CleanupPlan, CleanupError> {
    if let Some(m) = layout.movements.values().next() {
        return Err(CleanupError::MovementInProgress(m.clone()));
    }
    let ring = Ring::from_layout(layout);
    let drop = unreplicated(&ring, node)?;
    let (mut keys, mut bytes) = (0u64, 0u64);
    let mut batch = WriteBatch::new();
    for (ks, range) in &drop {
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = engine.scan_token_range(
                ks,
                range.start,
                range.end,
                after.as_deref(),
                COUNT_PAGE,
            )?;
            keys += page.len() as u64;
            bytes += page
                .iter()
                .map(|(k, s)| (k.len() + s.encoded_len()) as u64)
                .sum::<u64>();
            match page.last() {
                Some((k, _)) if page.len() == COUNT_PAGE => after = Some(k.clone()),
                _ => break,
            }
        }
        for kr in keys::token_range_plan(ks, range.start, range.end, None)? {
            batch.delete_range_raw(Cf::Data, &kr.lower, &kr.upper);
        }
    }
    let cleaned = Cleaned {
        ranges: drop,
        keys,
        bytes,
    };
    Ok(CleanupPlan { cleaned, batch })
}

/// Commits a [`plan`]'s deletes.
pub fn apply(engine: &dyn Engine, plan: CleanupPlan) -> Result<Cleaned, CleanupError> {
    let CleanupPlan { cleaned, batch } = plan;
    if !batch.is_empty() {
        engine.write(batch)?;
    }
    Ok(counted(cleaned))
}

/// `cleaned`, once committed, added to the cleanup metrics.
fn counted(cleaned: Cleaned) -> Cleaned {
    metrics::counter!("geokv_cleanup_ranges_total").increment(cleaned.ranges.len() as u64);
    metrics::counter!("geokv_cleanup_keys_total").increment(cleaned.keys);
    metrics::counter!("geokv_cleanup_bytes_total").increment(cleaned.bytes);
    cleaned
}

/// [`plan`] then [`apply`] under one layout (tests and tools with a fixed
/// layout; a node uses [`cleanup_current`]).
pub fn cleanup(engine: &dyn Engine, layout: &Layout, node: &str) -> Result<Cleaned, CleanupError> {
    apply(engine, plan(engine, layout, node)?)
}

/// Cleans up under the node's view in force, and only if that view is
/// still in force when the deletes commit (installs wait meanwhile) and no
/// write planned on a newer layout has reached the node: a view installed
/// in between may give this node ranges it was about to drop, and their
/// data may already be arriving (a leaver's push, pending-replica writes).
/// Blocking.
pub fn cleanup_current(engine: &dyn Engine, cluster: &Cluster) -> Result<Cleaned, CleanupError> {
    let view = cluster.current();
    let p = plan(engine, &view.layout, view.me_id())?;
    apply_if_current(engine, cluster, &view, p)
}

/// [`apply`] only while `view` is in force and no write planned on a newer
/// layout has arrived (see [`cleanup_current`]).
pub fn apply_if_current(
    engine: &dyn Engine,
    cluster: &Cluster,
    view: &Arc<ClusterView>,
    p: CleanupPlan,
) -> Result<Cleaned, CleanupError> {
    let planned = view.version();
    let changed = || CleanupError::ViewChanged { planned };
    let CleanupPlan { cleaned, batch } = p;
    // Exclusive: a replica write checked on this view must not apply
    // between the check below and the deletes (review M4); and a write
    // stall is waited out with the lock let go, then checked again.
    let check = || {
        if cluster.newest_planned() > planned {
            return Err(changed());
        }
        Ok(())
    };
    match cluster.write_exclusive(view, engine, &batch, check) {
        Some(Ok(())) => Ok(counted(cleaned)),
        Some(Err(e)) => Err(e),
        None => Err(changed()),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::engine::MemoryEngine;
    use crate::layout::NewNode;
    use crate::ring::token_of;
    use crate::topology::Topology;
    use crate::version::{ActorId, CausalContext, SiblingSet};

    pub(crate) const TOPO: &str = "
cluster_name: t
defaults: { vnodes: 8 }
datacenters:
  - name: dc1
    racks:
      - name: r1
        nodes:
          - { id: a, client_address: 127.0.0.1:1, peer_address: 127.0.0.1:2, admin_address: 127.0.0.1:3 }
          - { id: b, client_address: 127.0.0.1:4, peer_address: 127.0.0.1:5, admin_address: 127.0.0.1:6 }
          - { id: c, client_address: 127.0.0.1:7, peer_address: 127.0.0.1:8, admin_address: 127.0.0.1:9 }
keyspaces:
  ks: { replication: { dc1: 2 } }
";

    #[test]
    fn drops_exactly_the_ranges_lost_and_only_after_the_movement() {
        let [v1, joining, done] = join_d();
        let engine = MemoryEngine::default();
        let keys = write_keys(&engine, 400);

        assert!(matches!(
            cleanup(&engine, &joining, "a"),
            Err(CleanupError::MovementInProgress(Movement::Join { .. }))
        ));
        let cleaned = cleanup(&engine, &done, "a").unwrap();
        let ring = Ring::from_layout(&done);
        let a = ring.node_by_id("a").unwrap().idx;
        let old = Ring::from_layout(&v1);
        let a_old = old.node_by_id("a").unwrap().idx;
        let (mut kept, mut dropped) = (0, 0);
        for k in &keys {
            let mine = ring.replicas("ks", k).unwrap().contains(a);
            let had = old.replicas("ks", k).unwrap().contains(a_old);
            let present = engine.get_versions("ks", k).unwrap().is_some();
            assert_eq!(present, mine, "key token {:#x}", token_of(k));
            if had && !mine {
                dropped += 1;
            } else if mine {
                kept += 1;
            }
        }
        assert!(dropped > 20 && kept > 100, "dropped {dropped}, kept {kept}");
        // Counted: every key a held and no longer replicates (none of the
        // others: a held no key outside its old ranges here).
        let outside = keys
            .iter()
            .filter(|k| !old.replicas("ks", k).unwrap().contains(a_old))
            .count() as u64;
        assert_eq!(cleaned.keys, dropped + outside);
        assert!(cleaned.bytes > cleaned.keys);
    }

    /// The layouts of `d` joining dc1: v1, joining, joined (`a` loses
    /// ranges to `d`).
    pub(crate) fn join_d() -> [Layout; 3] {
        let topo = Topology::parse("t.yaml", TOPO).unwrap();
        let v1 = Layout::seed(&topo);
        let new = NewNode {
            id: "d".into(),
            client_address: "127.0.0.1:10".parse().unwrap(),
            peer_address: "127.0.0.1:11".parse().unwrap(),
            admin_address: "127.0.0.1:12".parse().unwrap(),
        };
        let tokens = crate::ring::allocate_tokens(&v1, "dc1", "r1", 8, 2).unwrap();
        let joining = v1.begin_join(new, "dc1", "r1", &tokens).unwrap();
        let done = joining.finish_join("d").unwrap();
        [v1, joining, done]
    }

    /// Writes `n` keys of `ks` (one version each) to `engine`; the keys.
    pub(crate) fn write_keys(engine: &dyn Engine, n: usize) -> Vec<Vec<u8>> {
        let mut batch = WriteBatch::new();
        let keys: Vec<Vec<u8>> = (0..n).map(|i| format!("k{i}").into_bytes()).collect();
        for k in &keys {
            let mut set = SiblingSet::new();
            let v = Some(k.clone().into());
            set.update(ActorId::from(1), &CausalContext::new(), v, 1, 8)
                .unwrap();
            batch.merge_versions("ks", k, &set);
        }
        engine.write(batch).unwrap();
        keys
    }

    /// Data of `n` keys in `ks`, and the layout after the join.
    fn setup(n: usize) -> (MemoryEngine, Vec<Vec<u8>>, Layout) {
        let engine = MemoryEngine::default();
        let keys = write_keys(&engine, n);
        let [_, _, done] = join_d();
        (engine, keys, done)
    }

    /// How many of `keys` `engine` still holds.
    pub(crate) fn held(engine: &dyn Engine, keys: &[Vec<u8>]) -> usize {
        (keys.iter())
            .filter(|k| engine.get_versions("ks", k).unwrap().is_some())
            .count()
    }

    /// Review (High): a view installed between planning and deleting — here
    /// `d` leaves and `a` gains some of its ranges, whose data may already
    /// be arriving — must keep every key: nothing is dropped.
    #[test]
    fn a_view_installed_while_a_cleanup_is_planned_drops_nothing() {
        let (engine, keys, done) = setup(400);
        let cluster = Cluster::new(done.clone(), "a", None).expect("cluster");
        let view = cluster.current();
        let p = plan(&engine, &view.layout, "a").expect("plan");
        assert!(p.cleaned.keys > 0, "a has ranges to drop");
        cluster
            .install(done.begin_leave("d").expect("leave"))
            .expect("install");
        let r = apply_if_current(&engine, &cluster, &view, p);
        assert!(matches!(r, Err(CleanupError::ViewChanged { .. })), "{r:?}");
        assert_eq!(held(&engine, &keys), keys.len(), "nothing dropped");
    }

    /// A write planned on a newer layout reached the node before it
    /// installed that layout: cleanup keeps everything until it has.
    #[test]
    fn a_write_planned_on_a_newer_layout_holds_cleanup_back() {
        let (engine, keys, done) = setup(200);
        let cluster = Cluster::new(done.clone(), "a", None).expect("cluster");
        cluster.note_planned(done.version + 1);
        let r = cleanup_current(&engine, &cluster);
        assert!(matches!(r, Err(CleanupError::ViewChanged { .. })), "{r:?}");
        assert_eq!(held(&engine, &keys), keys.len(), "nothing dropped");
        // Once the node is on that layout (no movement in it), it runs.
        cluster
            .install(Layout {
                version: done.version + 1,
                ..done.clone()
            })
            .expect("install");
        let cleaned = cleanup_current(&engine, &cluster).expect("cleanup");
        assert_eq!(held(&engine, &keys), keys.len() - cleaned.keys as usize);
    }

    /// Review M4: a replica write checked on this view, whose apply is in
    /// progress (inside `Cluster::with_current`) when cleanup commits, and
    /// which was planned on a newer layout: cleanup waits for it, sees
    /// it, and drops nothing.
    #[test]
    fn a_replica_write_in_progress_holds_cleanup_back() {
        use std::sync::{mpsc, Arc};
        let (engine, keys, done) = setup(200);
        let engine = Arc::new(engine);
        let cluster = Cluster::new(done.clone(), "a", None).expect("cluster");
        let view = cluster.current();
        let p = plan(&*engine, &view.layout, "a").expect("plan");
        assert!(p.cleaned.keys > 0, "a has ranges to drop");
        let (checked, in_apply) = mpsc::channel();
        let (finish, finishing) = mpsc::channel::<()>();
        let writer = std::thread::spawn({
            let cluster = cluster.clone();
            move || {
                cluster.with_current(|_| {
                    checked.send(()).unwrap();
                    finishing.recv().unwrap();
                    // As `stale_view::apply_checked`, in the apply.
                    cluster.note_planned(done.version + 1);
                })
            }
        });
        in_apply.recv().unwrap();
        let cleaner = std::thread::spawn({
            let (engine, cluster) = (engine.clone(), cluster.clone());
            move || apply_if_current(&*engine, &cluster, &view, p)
        });
        std::thread::sleep(std::time::Duration::from_millis(100));
        finish.send(()).unwrap();
        writer.join().unwrap();
        let r = cleaner.join().unwrap();
        assert!(matches!(r, Err(CleanupError::ViewChanged { .. })), "{r:?}");
        assert_eq!(held(&*engine, &keys), keys.len(), "nothing dropped");
    }
}
