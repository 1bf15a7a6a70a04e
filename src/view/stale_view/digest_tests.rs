//! The replica-side check of writes planned on the losing layout of a
//! version (two concurrent proposals of v2 before the CAS): the digest,
//! not the version alone, tells them apart.

use super::tests::{assert_stale, keys, targets};
use super::Planned;
use crate::layout::Layout;
use crate::view::ClusterView;

/// Two proposals of v2 made concurrently from the seed (`dc1-new` and
/// `dc1-other` joining), as seen by `me`: the one whose digest wins the
/// merge first, then the loser.
fn concurrent_v2(me: &str) -> (ClusterView, ClusterView) {
    let (_, a, b) = crate::layout::testing::concurrent_joins();
    assert_eq!(a.version, b.version);
    let (win, lose) = if a.digest() > b.digest() {
        (a, b)
    } else {
        (b, a)
    };
    assert_eq!(
        win.clone().merge(lose.clone()).layout,
        win,
        "the higher digest wins"
    );
    let view = |l: Layout| ClusterView::derive(l, me).expect("view");
    (view(win), view(lose))
}

/// Review finding 2: a write planned on the losing v2 reaches a replica on
/// the winning v2, whose pending replica of the key it misses. Comparing
/// versions alone accepted it; with the digest it is refused like a write
/// planned on an older view. The other way round (the replica on the loser)
/// and a write planned on the winner are accepted.
#[test]
fn a_write_planned_on_the_losing_layout_of_a_version_is_refused() {
    let me = "dc1-n2";
    let (win, lose) = concurrent_v2(me);
    let joiner = |v: &ClusterView| -> String {
        let mut ids = v.members().iter().map(|n| n.id.clone());
        ids.find(|id| id == "dc1-new" || id == "dc1-other")
            .expect("joiner")
    };
    let won = joiner(&win);
    let key = keys()
        .find(|k| {
            let t = targets(&win, k);
            t.contains(&won) && t.iter().any(|n| n == me)
        })
        .expect("a key the winner's joiner gains");
    let lose_targets = targets(&lose, &key);
    assert!(!lose_targets.contains(&won));
    let lose_digest = lose.digest_bytes();
    let w = Planned {
        keyspace: "default",
        key: &key,
        version: 2,
        digest: &lose_digest,
        targets: &lose_targets,
        repair: false,
    };
    let refused = super::check(&win, &w).expect("refused on the winning layout");
    assert_stale(&refused, 2, 2);
    // The replica on the loser accepts a write planned on the winner: its
    // own view is the one to be replaced.
    let win_targets = targets(&win, &key);
    let win_digest = win.digest_bytes();
    let w = Planned {
        digest: &win_digest,
        targets: &win_targets,
        ..w
    };
    assert!(super::check(&lose, &w).is_none());
    assert!(super::check(&win, &w).is_none());
    // Without a digest (an older peer), versions alone decide, as before.
    let w = Planned {
        digest: &[],
        targets: &lose_targets,
        ..w
    };
    assert!(super::check(&win, &w).is_none());
}
