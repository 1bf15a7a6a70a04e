//! The replica-side check of writes planned on an older view, over the
//! three views of a join: before (v1), joining (v2), joined (v3). Its
//! helpers (`pub(super)`) serve the other stale_view test files too.

use super::Planned;
use crate::error::GeokvError;
use crate::layout::Layout;
use crate::topology::Topology;
use crate::view::ClusterView;

/// [`super::check`] of a write planned on `version` (no digest) and sent
/// to `targets`.
pub(super) fn check(
    view: &ClusterView,
    ks: &str,
    key: &[u8],
    version: u64,
    targets: &[String],
) -> Option<GeokvError> {
    let w = Planned {
        keyspace: ks,
        key,
        version,
        digest: &[],
        targets,
        repair: false,
    };
    super::check(view, &w)
}

/// [`super::check`] of a repair's merge of `key` decided on `version` (no
/// digest, no targets).
pub(super) fn repair_merge(view: &ClusterView, key: &[u8], version: u64) -> Option<GeokvError> {
    let w = Planned {
        keyspace: "default",
        key,
        version,
        digest: &[],
        targets: &[],
        repair: true,
    };
    super::check(view, &w)
}

/// Views of `dc1-new` joining dc1 as seen by `me`: seed, joining, joined.
pub(super) fn join_views(me: &str) -> [ClusterView; 3] {
    let seed = Layout::seed(&Topology::dev());
    let joining = crate::layout::testing::dev_join(&seed, "dc1-new", "127.0.0.14");
    let joined = joining.finish_join("dc1-new").expect("finish");
    [seed, joining, joined].map(|l| ClusterView::derive(l, me).expect("view"))
}

/// Asserts `e` is the stale-view refusal of a write or read planned on
/// `planned_on` by a replica on `replica_version`.
#[track_caller]
pub(super) fn assert_stale(e: &GeokvError, planned_on: u64, replica_version: u64) {
    assert!(
        matches!(e, GeokvError::StaleView { planned_on: p, replica_version: r }
            if *p == planned_on && *r == replica_version),
        "{e}"
    );
}

/// The keys the tests search: 10,000 of them, big-endian u32s.
pub(super) fn keys() -> impl Iterator<Item = Vec<u8>> {
    (0..10_000u32).map(|k| k.to_be_bytes().to_vec())
}

/// The owners of `key` in dc1 on `view` (reads go to them).
pub(super) fn owners(view: &ClusterView, key: &[u8]) -> Vec<String> {
    let token = crate::ring::token_of(key);
    let set = view.ring.replicas_for_token("default", token).expect("ks");
    (set.in_dc("dc1").iter())
        .map(|&n| view.ring.node(n).id.clone())
        .collect()
}

/// What a coordinator on `view` sends a write of `key` to in dc1: the
/// owners, then the pending replicas.
pub(super) fn targets(view: &ClusterView, key: &[u8]) -> Vec<String> {
    let token = crate::ring::token_of(key);
    let pending = view.pending.for_token("default", token);
    let pending = (pending.iter().filter(|d| d.dc == "dc1"))
        .flat_map(|d| d.nodes.iter())
        .map(|&n| view.ring.node(n).id.clone());
    owners(view, key).into_iter().chain(pending).collect()
}

/// A key of the moving ranges whose replicas include `me` in all views
/// (the joiner shares dc1-n1's rack, so dc1-n1 is the one that loses).
fn moving_key(views: &[ClusterView; 3], me: &str) -> Vec<u8> {
    keys()
        .find(|k| {
            let t = targets(&views[1], k);
            t.iter().any(|n| n == "dc1-new") && targets(&views[2], k).iter().any(|n| n == me)
        })
        .expect("a moving key")
}

#[test]
fn a_write_planned_before_the_join_is_refused_by_a_replica_that_knows_of_it() {
    let me = "dc1-n2";
    let views = join_views(me);
    let key = moving_key(&views, me);
    let old = targets(&views[0], &key);
    assert!(!old.iter().any(|n| n == "dc1-new"));
    let refused = check(&views[1], "default", &key, 1, &old).expect("refused");
    assert_stale(&refused, 1, 2);
    assert!(
        refused.nothing_applied(),
        "the coordinator may send it again"
    );
    // Also when the replica has the joined view already.
    assert!(check(&views[2], "default", &key, 1, &old).is_some());
}

#[test]
fn a_write_whose_targets_cover_the_newer_view_is_accepted() {
    let me = "dc1-n2";
    let views = join_views(me);
    let key = moving_key(&views, me);
    // Planned while joining (owners + the pending joiner), arriving after
    // the join finished: its targets are a superset of the joined owners.
    let joining = targets(&views[1], &key);
    assert_eq!(
        check(&views[2], "default", &key, 2, &joining).map(|e| e.to_string()),
        None
    );
    // The same version, a newer one, and the unchecked 0 are accepted.
    let old = targets(&views[0], &key);
    assert!(check(&views[0], "default", &key, 1, &old).is_none());
    assert!(check(&views[0], "default", &key, 2, &old).is_none());
    assert!(check(&views[2], "default", &key, 0, &old).is_none());
}

#[test]
fn a_key_outside_the_moving_ranges_is_not_refused() {
    let me = "dc1-n2";
    let views = join_views(me);
    let key = keys()
        .find(|k| !targets(&views[1], k).iter().any(|n| n == "dc1-new"))
        .expect("a key that does not move");
    let old = targets(&views[0], &key);
    assert!(check(&views[1], "default", &key, 1, &old).is_none());
}

/// Review finding 4: a view installed between the check and the apply must
/// not slip in. The write is checked on v1 (accepted: the replica is on the
/// coordinator's view); the hook then installs the joining v2 from another
/// thread, which would refuse the write. The install must wait until the
/// apply is done (the write is applied on v1, before v2 is in force): it
/// is never applied while v2, which refuses it, is in force.
#[test]
fn a_view_installed_between_the_check_and_the_apply_does_not_slip_in() {
    let me = "dc1-n2";
    let views = join_views(me);
    let key = moving_key(&views, me);
    let old = targets(&views[0], &key);
    let cluster = crate::view::Cluster::new((*views[0].layout).clone(), me, None).expect("view");
    let w = super::Planned {
        keyspace: "default",
        key: &key,
        version: 1,
        digest: &[],
        targets: &old,
        repair: false,
    };
    let joining = (*views[1].layout).clone();
    let (installer, installed) = std::sync::mpsc::channel();
    let c = cluster.clone();
    let between = move || {
        std::thread::spawn(move || {
            c.install(joining).expect("install");
            let _ = installer.send(());
        });
        // Long enough for an install that is not held back to finish.
        let _ = installed.recv_timeout(std::time::Duration::from_millis(300));
    };
    let applied_on =
        super::apply_checked_with(&cluster, &[w], between, || Ok(cluster.current().version()));
    assert_eq!(
        applied_on.ok(),
        Some(1),
        "applied only on the view it was checked on"
    );
    // The install went through once the apply was done.
    for _ in 0..100 {
        if cluster.current().version() == 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(cluster.current().version(), 2);
}

/// Review finding 3: an old owner that lost a key in the join (and may have
/// cleaned it up) refuses a read planned on the seed layout rather than
/// answer "not found"; while the key still moves (it is still an owner)
/// and for a read planned on its own view, it answers.
#[test]
fn an_old_owner_refuses_a_read_planned_before_it_lost_the_key() {
    let me = "dc1-n1";
    let views = join_views(me);
    let key = keys()
        .find(|k| {
            targets(&views[0], k).iter().any(|n| n == me)
                && !targets(&views[2], k).iter().any(|n| n == me)
        })
        .expect("a key dc1-n1 loses");
    let read = |v: &ClusterView, planned: u64| super::check_read(v, "default", &key, planned, &[]);
    let refused = read(&views[2], 1).expect("refused");
    assert_stale(&refused, 1, 3);
    assert!(read(&views[2], 2).is_some(), "planned while joining");
    assert!(read(&views[1], 1).is_none(), "still an owner while joining");
    assert!(read(&views[2], 3).is_none(), "planned on its own view");
    assert!(read(&views[2], 0).is_none(), "unchecked");
    // A key it keeps is answered.
    let kept = keys()
        .find(|k| targets(&views[2], k).iter().any(|n| n == me))
        .expect("a key dc1-n1 keeps");
    assert!(super::check_read(&views[2], "default", &kept, 1, &[]).is_none());
}

/// A node that has left (Left or Removed in its own view) refuses every
/// replica write, planned or not (review M3 of stop 20): a receiver or a
/// repair on an older view sends unplanned writes (version 0), and a
/// leaver that applied and acknowledged one, then exited, would take the
/// copy the level counted with it.
#[test]
fn a_node_that_has_left_refuses_every_write() {
    // dc1-new joins the dev cluster (three per datacenter at rf 3), then
    // leaves again.
    let me = "dc1-new".to_string();
    let joined = join_views(&me)[2].layout.clone();
    let leaving = joined.begin_leave(&me).expect("leave");
    let left = leaving.finish_leave(&me).expect("finish");
    let key = b"k".as_slice();
    let on = |l: &Layout| ClusterView::derive(l.clone(), &me).expect("view");
    assert!(
        check(&on(&leaving), "default", key, 0, &[]).is_none(),
        "a leaver still takes writes"
    );
    for planned in [0, leaving.version, left.version] {
        assert!(
            matches!(
                check(&on(&left), "default", key, planned, &[]),
                Some(GeokvError::StaleView { .. })
            ),
            "planned on v{planned}"
        );
    }
}

/// Issue 11: a repair's merge (read repair, anti-entropy) names the view
/// it was decided in and no targets. A replica on a newer view refuses it
/// for a key it no longer replicates (its cleanup drops that range: the
/// copy would stay where nothing deletes it) and takes it for a key it
/// keeps, whatever joined meanwhile.
#[test]
fn a_repair_merge_is_refused_only_where_the_newer_view_moved_the_key_away() {
    let me = "dc1-n1";
    let views = join_views(me);
    let owns = |v: &ClusterView, k: &[u8]| targets(v, k).iter().any(|n| n == me);
    let keys: Vec<Vec<u8>> = keys().collect();
    let lost = (keys.iter())
        .find(|k| owns(&views[0], k) && !owns(&views[2], k))
        .expect("a key dc1-n1 loses");
    let kept = (keys.iter())
        .find(|k| owns(&views[0], k) && owns(&views[2], k))
        .expect("a key dc1-n1 keeps");
    let repair = repair_merge;
    let refused = repair(&views[2], lost, 1).expect("refused where the key moved away");
    assert_stale(&refused, 1, 3);
    assert!(refused.nothing_applied());
    assert!(
        repair(&views[2], lost, 2).is_some(),
        "decided while joining"
    );
    assert!(
        repair(&views[1], lost, 1).is_none(),
        "still a replica while joining"
    );
    assert!(
        repair(&views[2], lost, 3).is_none(),
        "decided in its own view"
    );
    for planned in [1, 2] {
        assert_eq!(
            repair(&views[2], kept, planned).map(|e| e.to_string()),
            None,
            "a key it keeps, decided on v{planned}"
        );
    }
}

/// Refusals are counted by kind: a repair's merge as `repair`, a planned
/// write as `write` (read repair's were counted with client writes').
#[test]
fn refusals_are_counted_by_kind() {
    let me = "dc1-n1";
    let views = join_views(me);
    let owns = |v: &ClusterView, k: &[u8]| targets(v, k).iter().any(|n| n == me);
    let lost = keys()
        .find(|k| owns(&views[0], k) && !owns(&views[2], k))
        .expect("a key dc1-n1 loses");
    let cluster = crate::view::Cluster::new((*views[2].layout).clone(), me, None).expect("view");
    let old = targets(&views[0], &lost);
    let planned = |targets, repair| Planned {
        keyspace: "default",
        key: &lost,
        version: 1,
        digest: &[],
        targets,
        repair,
    };
    let rec = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    metrics::with_local_recorder(&rec, || {
        for w in [planned(&[], true), planned(&[], true), planned(&old, false)] {
            assert!(super::apply_checked(&cluster, &w, || Ok(())).is_err());
        }
    });
    let text = rec.handle().render();
    let count = |kind: &str| format!("geokv_stale_view_refusals_total{{kind=\"{kind}\"}} ");
    assert!(text.contains(&format!("{}2", count("repair"))), "{text}");
    assert!(text.contains(&format!("{}1", count("write"))), "{text}");
}

/// The repair mark, not an empty target list, makes a repair's merge: a
/// client write naming nobody is refused where dc1-n1 keeps the key.
#[test]
fn a_client_write_naming_nobody_is_no_repair_merge() {
    let me = "dc1-n1";
    let views = join_views(me);
    let kept = keys()
        .find(|k| {
            [0, 2]
                .iter()
                .all(|&v| targets(&views[v], k).iter().any(|n| n == me))
        })
        .expect("a key dc1-n1 keeps");
    let refused = check(&views[2], "default", &kept, 1, &[]).expect("a client write");
    assert_stale(&refused, 1, 3);
    assert!(refused.nothing_applied());
    assert!(repair_merge(&views[2], &kept, 1).is_none(), "a repair's");
}
