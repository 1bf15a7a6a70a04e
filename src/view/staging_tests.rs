//! Property of gossip's staging rule (`staging.rs`, review-layout29 L4):
//! over random advertisements of three voters and two staged layouts of
//! one version (the chosen one and a fork), a layout is committed only
//! when a quorum of its voters shows it, or no other layout of its
//! version is in sight; one a quorum shows is always committed.

use std::time::Duration;

use proptest::prelude::*;
use tokio::time::Instant;

use super::cas_testing::{three_nodes, with_keyspace};
use super::staging::{Staging, STAGE_GRACE};

const MEMBERS: [&str; 3] = ["dc1-n1", "dc1-n2", "dc1-n3"];

proptest! {
    /// `shows[i]`: what member i advertises (0 nothing, 1 the chosen v2,
    /// 2 the fork of v2, 3 the seed v1); `staged_for`: how long ago both
    /// were staged, in seconds.
    #[test]
    fn a_committed_layout_is_held_by_a_quorum_or_uncontested(
        shows in proptest::collection::vec(0u8..4, 3),
        staged_for in 0u64..(2 * STAGE_GRACE.as_secs()),
    ) {
        let v1 = three_nodes();
        let (chosen, fork) = (with_keyspace(&v1, "a"), with_keyspace(&v1, "fork"));
        let (mut staging, at) = (Staging::default(), Instant::now());
        for (id, show) in MEMBERS.iter().zip(&shows) {
            match show {
                1 => staging.heard(id, 2, chosen.digest()),
                2 => staging.heard(id, 2, fork.digest()),
                3 => staging.heard(id, 1, v1.digest()),
                _ => {}
            }
        }
        staging.stage(chosen.clone(), at);
        staging.stage(fork.clone(), at);
        let holding = |n: u8| shows.iter().filter(|s| **s == n).count();
        let now = at + Duration::from_secs(staged_for);
        let ready = staging.ready(1, now);
        for (layout, n, other) in [(&chosen, 1, 2), (&fork, 2, 1)] {
            let committed = ready.as_ref().is_some_and(|(l, _)| l == layout);
            let (held, contested) = (holding(n), holding(other) > 0);
            if committed {
                prop_assert!(held >= 2 || (held == 1 && !contested), "{shows:?}");
            }
            if held == 1 && contested {
                prop_assert!(!committed, "a lone holder's layout while another is in sight");
            }
            if held >= 2 {
                prop_assert!(committed, "a quorum of its voters shows it: {shows:?}");
            }
            if held == 1 && !contested && staged_for >= STAGE_GRACE.as_secs() {
                prop_assert!(committed, "uncontested past the grace: {shows:?}");
            }
        }
    }
}
