//! Hints during a range movement. A write acknowledged while an owner C was
//! down waits on other nodes as a hint for C; a gainer copies a moving
//! range from the owner losing it (strict source), so if that hint reaches
//! C only after the stream passed the key, the gainer never gets it from
//! C. So a hint delivered while its key's range is moving also goes to the
//! range's gainers in C's datacenter ([`also_to`]: its pending replicas
//! while the movement reads from the old owners; from the switch of reads
//! on, when the pending replicas are the losing owners, the pending
//! replicas of the same layout reading old, review of the switch L1): durably
//! queued for them (or applied here, when this node is one) before the
//! hint for C can leave its queue. [`also_to`] is pure; [`copy`] stores
//! one copy (also for `orphans`' redirections).
//!
//! A copy merged here is a replica write like any other: it goes through
//! this node's replica (`replica::handle::Local::merge_placed`), on the
//! path a coordinator's replica write takes on arrival
//! (`view::stale_view::apply_checked`: the check, `note_planned`
//! and the apply under one view, `Cluster::with_current`; `Replica::apply`,
//! refused once the replica closes), planned on the
//! view the copy was decided in, and only while this node replicates the
//! key in the view in force (the rule a node hint's receiver applies,
//! `receive::for_node`). So a cleanup, which drops only ranges this node
//! does not replicate in the view in force and commits under the same
//! lock, can never have dropped the range the merge lands in; a copy the
//! view no longer allows fails, and the hint stays queued, to be placed
//! again in the newer view. Must not send anything.

use super::Hints;
use crate::error::GeokvError;
use crate::proto::v1::internode::StreamEntry;
use crate::ring::{token_of, PendingRanges};
use crate::version::SiblingSet;
pub(crate) use crate::view::stale_view::Decided;
use crate::view::ClusterView;

/// The nodes other than `target` that must also get a hint for `key`
/// bound for `target`: the gainers in `target`'s datacenter of the key's
/// range, whatever the movement's step (none when nothing moves there, or
/// `target` is not a member).
pub fn also_to(view: &ClusterView, target: &str, keyspace: &str, key: &[u8]) -> Vec<String> {
    let Some(t) = view.node(target) else {
        return Vec::new();
    };
    let switched;
    let gainers = if view.layout.reads_new(&t.dc) {
        // The pending replicas are the losers now; the gainers are those of
        // the movement still reading old (same members, same indices). Only
        // computed for a hint delivered during a switch.
        match PendingRanges::of_layout(&view.layout.reading_old()) {
            Ok(p) => {
                switched = p;
                &switched
            }
            Err(_) => return Vec::new(),
        }
    } else {
        &*view.pending
    };
    gainers
        .for_token(keyspace, token_of(key))
        .iter()
        .filter(|d| d.dc == t.dc)
        .flat_map(|d| d.nodes.iter())
        .map(|&i| view.ring.node(i).id.clone())
        .filter(|id| id != target)
        .collect()
}

/// Gives `to` a copy of the hint `entry` (whose record is `set`): a durable
/// hint, or a merge into this node's engine when `to` is this node (`me`),
/// checked against `decided` (see the module docs).
pub(crate) async fn copy(
    hints: &Hints,
    me: &str,
    to: &str,
    entry: &StreamEntry,
    set: &SiblingSet,
    decided: &Decided,
) -> Result<(), GeokvError> {
    if to != me {
        return hints.hint_node(to, &entry.keyspace, &entry.key, set).await;
    }
    let Some(here) = hints.here() else {
        return Err(GeokvError::Internal(
            "no replica on this node to merge a hint's copy into".into(),
        ));
    };
    let record = (&entry.keyspace[..], &entry.key[..], set);
    let placed = super::receive::replicates;
    here.merge_placed(record, decided.clone(), placed).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Engine, Limits, MemoryEngine};
    use crate::layout::{Layout, NewNode};
    use crate::replica::Replica;
    use crate::topology::Topology;
    use crate::version::{ActorId, CausalContext};
    use crate::view::Cluster;
    use std::sync::Arc;

    fn joiner() -> NewNode {
        NewNode {
            id: "dc1-new".into(),
            client_address: "127.0.0.14:7070".parse().unwrap(),
            peer_address: "127.0.0.14:7071".parse().unwrap(),
            admin_address: "127.0.0.14:7072".parse().unwrap(),
        }
    }

    fn dc1_owners(view: &ClusterView, key: &[u8]) -> Vec<String> {
        let owners = view.ring.replicas("default", key).unwrap();
        let dc1 = owners.in_dc("dc1").iter();
        dc1.map(|&n| view.ring.node(n).id.clone()).collect()
    }

    /// Review Low of stop 20: a redirected hint's copy to this node
    /// (dc1-n1, in the joiner's rack), decided while it replicated the
    /// key, is merged here only if the view in force still allows it:
    /// not once a newer view moved
    /// the key to a joiner (this node's cleanup in that view drops the
    /// range: the record would be back where nothing deletes it, and the
    /// joiner would not have it), nor once the joiner shares a key this
    /// node keeps (it is not among the copy's targets). The copy fails,
    /// so the hint stays queued and is placed again in the newer view. A
    /// key whose replicas did not change is merged.
    #[tokio::test]
    async fn a_copy_here_decided_on_an_older_view_is_merged_only_if_the_newer_view_allows_it() {
        let seed = Layout::seed(&Topology::dev());
        let tokens = crate::ring::allocate_tokens(&seed, "dc1", "r1", 64, 3).unwrap();
        let joining = seed.begin_join(joiner(), "dc1", "r1", &tokens).unwrap();
        let joined = joining.finish_join("dc1-new").unwrap();
        let engine: Arc<dyn Engine> = Arc::new(MemoryEngine::new(Limits::default()));
        let cluster = Cluster::new(seed, "dc1-n1", None).unwrap();
        let before = cluster.current();
        let me = before.me().unwrap().clone();
        let replica = Arc::new(Replica::new(engine.clone(), &me.id, 8));
        let hints = Hints::open(engine.clone(), cluster.clone(), me, Default::default()).unwrap();
        let hints = hints.with_replica(replica);
        cluster.install(joined).unwrap();
        let after = cluster.current();
        let mut set = SiblingSet::new();
        set.update(ActorId(1), &CausalContext::new(), Some("v".into()), 1, 8)
            .unwrap();
        let mut record = Vec::new();
        set.encode(&mut record);
        let (mut moved_away, mut shared, mut same) = (0, 0, 0);
        for k in 0..300u32 {
            let key = k.to_be_bytes();
            let (was, now) = (dc1_owners(&before, &key), dc1_owners(&after, &key));
            if !was.contains(&"dc1-n1".to_string()) {
                continue;
            }
            let entry = crate::hints::new_entry("default", &key, record.clone(), "x".into(), 0);
            let decided = Decided::in_view(&before, was.clone());
            let copied = copy(&hints, "dc1-n1", "dc1-n1", &entry, &set, &decided).await;
            let merged = engine.get_versions("default", &key).unwrap().is_some();
            assert_eq!(copied.is_ok(), merged, "{copied:?}");
            if !now.contains(&"dc1-n1".to_string()) {
                moved_away += 1;
                assert!(!merged, "merged where the key moved away");
            } else if now != was {
                shared += 1;
                assert!(!merged, "merged without the joiner among the targets");
            } else {
                same += 1;
                assert!(merged, "a copy the newer view allows is merged");
            }
        }
        assert!(
            moved_away > 0 && same > 0,
            "{moved_away} moved, {shared} shared, {same} same"
        );
    }

    /// Issue 10 (transport and repair stop reaching into the engine): a
    /// copy here goes through this node's replica, not straight into its
    /// engine. In the view it was decided in, it is merged; once the
    /// replica has closed (a stop's final sync is next) it is refused like
    /// any replica write, and nothing is merged. Before: merged into the
    /// engine after the close. No replica at all (a node that has left):
    /// refused.
    #[tokio::test]
    async fn a_copy_here_goes_through_the_replica_and_is_refused_once_it_closed() {
        let engine: Arc<dyn Engine> = Arc::new(MemoryEngine::new(Limits::default()));
        let cluster = Cluster::new(Layout::seed(&Topology::dev()), "dc1-n1", None).unwrap();
        let view = cluster.current();
        let me = view.me().unwrap().clone();
        let replica = Arc::new(Replica::new(engine.clone(), &me.id, 8));
        let open = || {
            Hints::open(
                engine.clone(),
                cluster.clone(),
                me.clone(),
                Default::default(),
            )
        };
        let hints = open().unwrap().with_replica(replica.clone());
        let mut set = SiblingSet::new();
        set.update(ActorId(1), &CausalContext::new(), Some("v".into()), 1, 8)
            .unwrap();
        let mut mine = (0..300u32)
            .map(|k| k.to_be_bytes())
            .filter(|k| dc1_owners(&view, k).contains(&"dc1-n1".to_string()));
        let mut key = || mine.next().expect("keys this node replicates");
        let (copied, merged) = copy_here(&hints, &view, &key(), &set).await;
        assert!(copied.is_ok() && merged, "{copied:?}");
        replica.close(std::time::Duration::from_secs(1)).unwrap();
        let (copied, merged) = copy_here(&hints, &view, &key(), &set).await;
        assert!(
            matches!(copied, Err(GeokvError::ShuttingDown)),
            "{copied:?}"
        );
        assert!(!merged, "merged into a closed replica's engine");
        let (copied, merged) = copy_here(&open().unwrap(), &view, &key(), &set).await;
        assert!(copied.is_err() && !merged, "{copied:?}");
    }

    /// A hint of `set` for `key`, copied to this node (`dc1-n1`) as decided
    /// in `view`; and whether the engine then holds the key.
    async fn copy_here(
        hints: &Hints,
        view: &ClusterView,
        key: &[u8],
        set: &SiblingSet,
    ) -> (Result<(), GeokvError>, bool) {
        let mut record = Vec::new();
        set.encode(&mut record);
        let entry = crate::hints::new_entry("default", key, record, "x".into(), 0);
        let decided = Decided::in_view(view, dc1_owners(view, key));
        let copied = copy(hints, "dc1-n1", "dc1-n1", &entry, set, &decided).await;
        let engine = hints.store.engine();
        (
            copied,
            engine.get_versions("default", key).unwrap().is_some(),
        )
    }

    #[test]
    fn a_hint_for_a_key_whose_range_moves_also_goes_to_its_pending_replica() {
        let seed = Layout::seed(&Topology::dev());
        let tokens = crate::ring::allocate_tokens(&seed, "dc1", "r1", 64, 3).unwrap();
        let node = NewNode {
            id: "dc1-new".into(),
            client_address: "127.0.0.14:7070".parse().unwrap(),
            peer_address: "127.0.0.14:7071".parse().unwrap(),
            admin_address: "127.0.0.14:7072".parse().unwrap(),
        };
        let joining = seed.begin_join(node, "dc1", "r1", &tokens).unwrap();
        let view = ClusterView::derive(joining, "dc1-n2").unwrap();
        let settled = ClusterView::derive(seed, "dc1-n2").unwrap();
        let joiner = view.node("dc1-new").unwrap().idx;
        let (mut moving, mut still) = (0, 0);
        for k in 0..300u32 {
            let key = k.to_be_bytes();
            let owners = view.ring.replicas("default", &key).unwrap();
            let target = &view.ring.node(owners.in_dc("dc1")[0]).id;
            let pending = view.pending.for_token("default", token_of(&key));
            let gains = pending.iter().any(|d| d.nodes.contains(&joiner));
            let also = also_to(&view, target, "default", &key);
            if gains {
                moving += 1;
                assert_eq!(also, vec!["dc1-new".to_string()]);
            } else {
                still += 1;
                assert!(also.is_empty());
            }
            // Nothing moves in dc2, nor anywhere once the movement is over.
            let remote = &view.ring.node(owners.in_dc("dc2")[0]).id;
            assert!(also_to(&view, remote, "default", &key).is_empty());
            assert!(also_to(&settled, target, "default", &key).is_empty());
        }
        assert!(moving > 0 && still > 0, "{moving} moving, {still} not");
    }

    /// Review of the switch, L1: at the switch of reads the pending
    /// replicas are the losing owners, yet a hint delivered then must still
    /// reach the gainer (it copied from the loser before the hint arrived).
    /// Before: the copy went to the loser, never to the joiner.
    #[test]
    fn at_the_switch_of_reads_a_hint_still_goes_to_the_gainer() {
        let seed = Layout::seed(&Topology::dev());
        let tokens = crate::ring::allocate_tokens(&seed, "dc1", "r1", 64, 3).unwrap();
        let joining = seed.begin_join(joiner(), "dc1", "r1", &tokens).unwrap();
        let switched = joining
            .next_finish_step("dc1-new")
            .unwrap()
            .layout()
            .clone();
        let begun = ClusterView::derive(joining, "dc1-n2").unwrap();
        let view = ClusterView::derive(switched, "dc1-n2").unwrap();
        let mut moving = 0;
        for k in 0..300u32 {
            let key = k.to_be_bytes();
            // An owner in both versions (the hint's target).
            let (old, new) = (dc1_owners(&begun, &key), dc1_owners(&view, &key));
            let Some(target) = old.iter().find(|o| new.contains(o)) else {
                continue;
            };
            let at_begin = also_to(&begun, target, "default", &key);
            let at_switch = also_to(&view, target, "default", &key);
            assert_eq!(
                at_switch, at_begin,
                "key {k}: the gainers, whatever the step"
            );
            moving += usize::from(at_begin.contains(&"dc1-new".to_string()));
        }
        assert!(moving > 0, "some keys move to the joiner");
    }
}
