//! The replica-side check of writes planned on an older view, over the
//! three views of a join: before (v1), joining (v2), joined (v3).

use super::check;
use crate::error::GeokvError;
use crate::layout::{Layout, NewNode};
use crate::topology::Topology;
use crate::view::ClusterView;

/// Views of `dc1-new` joining dc1 as seen by `me`: seed, joining, joined.
fn join_views(me: &str) -> [ClusterView; 3] {
    let seed = Layout::seed(&Topology::dev());
    let tokens = crate::ring::allocate_tokens(&seed, "dc1", "r1", 64, 3).expect("tokens");
    let node = NewNode {
        id: "dc1-new".into(),
        client_address: "127.0.0.14:7070".parse().expect("addr"),
        peer_address: "127.0.0.14:7071".parse().expect("addr"),
        admin_address: "127.0.0.14:7072".parse().expect("addr"),
    };
    let joining = seed.begin_join(node, "dc1", "r1", &tokens).expect("join");
    let joined = joining.finish_join("dc1-new").expect("finish");
    [seed, joining, joined].map(|l| ClusterView::derive(l, me).expect("view"))
}

/// What a coordinator on `view` sends a write of `key` to in dc1.
fn targets(view: &ClusterView, key: &[u8]) -> Vec<String> {
    let token = crate::ring::token_of(key);
    let owners = view.ring.replicas_for_token("default", token).expect("ks");
    let pending = view.pending.for_token("default", token);
    (owners.in_dc("dc1").iter())
        .chain(
            pending
                .iter()
                .filter(|d| d.dc == "dc1")
                .flat_map(|d| d.nodes.iter()),
        )
        .map(|&n| view.ring.node(n).id.clone())
        .collect()
}

/// A key of the moving ranges whose replicas include `me` in all views
/// (the joiner shares dc1-n1's rack, so dc1-n1 is the one that loses).
fn moving_key(views: &[ClusterView; 3], me: &str) -> Vec<u8> {
    (0..10_000u32)
        .map(|k| k.to_be_bytes().to_vec())
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
    assert!(
        matches!(
            refused,
            GeokvError::StaleView {
                planned_on: 1,
                replica_version: 2
            }
        ),
        "{refused}"
    );
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
    let key = (0..10_000u32)
        .map(|k| k.to_be_bytes().to_vec())
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
        targets: &old,
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
        super::apply_checked_with(&cluster, &w, between, || Ok(cluster.current().version()));
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
