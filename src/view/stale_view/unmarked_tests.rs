//! Writes without the repair mark (review-fix-types F2): a peer from
//! before the mark sends its repairs unmarked, with a version and no
//! targets, so the replica cannot tell them from client writes. Such a
//! write is refused when either rule refuses it: the client-write rule
//! (its targets miss an owner or pending replica of the newer view in this
//! datacenter) or the repair rule ([`super::check_read`]: this node no
//! longer replicates the key).

use super::tests::{assert_stale, check, join_views, keys, targets};
use crate::error::GeokvError;
use crate::layout::Layout;
use crate::topology::Topology;
use crate::view::ClusterView;

/// v2 drops dc1 from the keyspace's replication: dc1-n1 replicates no key
/// of it any more, and the client-write rule finds nobody in dc1 to miss.
#[test]
fn an_unmarked_write_where_this_node_no_longer_replicates_the_key_is_refused() {
    let seed = Layout::seed(&Topology::dev());
    let mut dropped = seed.clone();
    dropped.version = seed.version + 1;
    for spec in dropped.keyspaces.values_mut() {
        spec.replication.remove("dc1");
    }
    let me = "dc1-n1";
    let v1 = ClusterView::derive(seed.clone(), me).expect("v1");
    let v2 = ClusterView::derive(dropped, me).expect("v2");
    let key = b"k".as_slice();
    let refused = check(&v2, "default", key, v1.version(), &[]).expect("refused");
    assert_stale(&refused, 1, 2);
    assert!(refused.nothing_applied());
    // Planned on its own view, or unchecked: taken as before.
    assert!(check(&v2, "default", key, 2, &[]).is_none());
    assert!(check(&v2, "default", key, 0, &[]).is_none());
}

/// A client write planned while dc1-new joined (targets: the owners and
/// the pending joiner) reaches dc1-n1 once the join finished and dc1-n1
/// lost the key: its targets cover the newer view's owners, yet dc1-n1's
/// copy would be dropped by its cleanup, so its acknowledgement must not
/// count. Refused (the coordinator re-sends to the newer view's targets).
#[test]
fn a_client_write_to_a_node_that_lost_the_key_is_refused_even_if_its_targets_cover() {
    let me = "dc1-n1";
    let views = join_views(me);
    let dc1 = targets;
    let key = keys()
        .find(|k| {
            dc1(&views[1], k).iter().any(|n| n == me) && !dc1(&views[2], k).iter().any(|n| n == me)
        })
        .expect("a key dc1-n1 loses");
    let targets = dc1(&views[1], &key);
    assert!(
        dc1(&views[2], &key).iter().all(|n| targets.contains(n)),
        "the joining view's targets cover the joined view's"
    );
    let refused = check(&views[2], "default", &key, 2, &targets).expect("refused");
    assert!(matches!(refused, GeokvError::StaleView { .. }), "{refused}");
    // While joining, dc1-n1 still replicates it: taken.
    assert!(check(&views[1], "default", &key, 2, &targets).is_none());
}
