//! Plan properties on random clusters and random movements: the ranges a
//! node gains are exactly its pending ranges, each with current owners as
//! sources (its datacenter's losers first); what a node loses is gained by
//! its datacenter's new owners from it; cleanup ranges are the complement
//! of ownership.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::plan::{gains, losses, unreplicated};
use crate::layout::Layout;
use crate::ring::tests_pending::{apply, arb_cluster, arb_ops};
use crate::ring::tests_prop::build_topology;
use crate::ring::{PendingRanges, Ring, Token, TokenRange};

/// Every start and end of `sets`: a union of ranges is constant on each
/// piece between two consecutive ones, so testing these tests it all.
fn probes(sets: &[&[TokenRange]]) -> BTreeSet<Token> {
    sets.iter()
        .flat_map(|s| s.iter())
        .flat_map(|r| [r.start, r.end])
        .collect()
}

fn covers(ranges: &[TokenRange], t: Token) -> bool {
    ranges.iter().any(|r| r.contains(t))
}

fn owner_ids(ring: &Ring, ks: &str, t: Token) -> BTreeSet<String> {
    let set = ring.replicas_for_token(ks, t).unwrap();
    set.all().map(|n| ring.node(n).id.clone()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn gains_are_the_pending_ranges_with_current_owners_as_sources(
        (shape, rfs) in arb_cluster(1..=6),
        ops in arb_ops(),
    ) {
        let topo = build_topology(&shape, &[("ks", rfs.clone()), ("other", rfs)]);
        let moving: Layout = apply(Layout::seed(&topo), &ops);
        let now = Ring::from_layout(&moving);
        let pending = PendingRanges::of_layout(&moving).unwrap();
        for node in now.nodes() {
            let g = gains(&moving, &node.id).unwrap();
            for ks in ["ks", "other"] {
                let mine: Vec<TokenRange> = g.iter().filter(|x| x.keyspace == ks).map(|x| x.range).collect();
                let want: Vec<TokenRange> = pending
                    .ranges(ks)
                    .filter(|(_, p)| p.iter().any(|d| d.nodes.contains(&node.idx)))
                    .map(|(r, _)| r)
                    .collect();
                for t in probes(&[&mine, &want]) {
                    prop_assert_eq!(covers(&mine, t), covers(&want, t), "{} {} token {:#x}", node.id, ks, t);
                }
            }
            for x in &g {
                prop_assert!(!x.sources.is_empty(), "{:?} has no source", x);
                for t in [x.range.end, x.range.start.wrapping_add(1)] {
                    let owners = owner_ids(&now, &x.keyspace, t);
                    prop_assert_eq!(&x.sources.iter().cloned().collect::<BTreeSet<_>>(), &owners);
                }
                prop_assert!(!x.sources.contains(&node.id));
                prop_assert_eq!(&x.sources[..x.losing.len()], &x.losing[..], "losing owners first");
            }
        }
    }

    #[test]
    fn what_a_node_loses_its_new_owners_gain_from_it(
        (shape, rfs) in arb_cluster(1..=6),
        ops in arb_ops(),
    ) {
        let topo = build_topology(&shape, &[("ks", rfs)]);
        let moving = apply(Layout::seed(&topo), &ops);
        let now = Ring::from_layout(&moving);
        let after = Ring::from_layout(&moving.settled());
        for node in now.nodes() {
            for loss in losses(&moving, &node.id).unwrap() {
                let t = loss.range.end;
                prop_assert!(owner_ids(&now, "ks", t).contains(&node.id));
                prop_assert!(!owner_ids(&after, "ks", t).contains(&node.id));
                for new in &loss.new_owners {
                    let g = gains(&moving, new).unwrap();
                    let hit = g.iter().find(|x| x.range.contains(t));
                    prop_assert!(hit.is_some_and(|x| x.losing.contains(&node.id)), "{} does not gain {:?} from {}", new, loss.range, node.id);
                }
            }
        }
    }

    /// Only the loser's own datacenter gains from it: another's gainers
    /// copy from their own sources (review-elastic29 L2).
    #[test]
    fn what_a_node_loses_only_its_own_datacenter_gains_from_it(
        (shape, rfs) in arb_cluster(1..=6),
        ops in arb_ops(),
    ) {
        let topo = build_topology(&shape, &[("ks", rfs)]);
        let moving = apply(Layout::seed(&topo), &ops);
        let dc = |id: &str| moving.node(id).map(|(d, _, _)| d.to_string());
        for node in Ring::from_layout(&moving).nodes() {
            for loss in losses(&moving, &node.id).unwrap() {
                for new in &loss.new_owners {
                    prop_assert_eq!(dc(new), dc(&node.id), "{} gains from {} across datacenters", new, node.id);
                }
            }
        }
    }

    /// A gainer's strict sources are its own datacenter's losers
    /// (review-elastic29 L2): another's replica count is not its own.
    #[test]
    fn a_gainers_strict_sources_are_in_its_datacenter(
        (shape, rfs) in arb_cluster(1..=6),
        ops in arb_ops(),
    ) {
        let topo = build_topology(&shape, &[("ks", rfs)]);
        let moving = apply(Layout::seed(&topo), &ops);
        let dc = |id: &str| moving.node(id).map(|(d, _, _)| d.to_string());
        for node in Ring::from_layout(&moving).nodes() {
            for gain in gains(&moving, &node.id).unwrap() {
                for losing in &gain.losing {
                    prop_assert_eq!(dc(losing), dc(&node.id), "{} copies strictly from {}", node.id, losing);
                }
            }
        }
    }

    #[test]
    fn cleanup_ranges_are_exactly_what_a_node_does_not_replicate(
        (shape, rfs) in arb_cluster(1..=6),
        ops in arb_ops(),
    ) {
        let topo = build_topology(&shape, &[("ks", rfs)]);
        let settled = apply(Layout::seed(&topo), &ops).settled();
        let ring = Ring::from_layout(&settled);
        for node in ring.nodes() {
            let drop: Vec<TokenRange> = unreplicated(&ring, &node.id).unwrap().into_iter().map(|(_, r)| r).collect();
            let keep = ring.ranges_of("ks", node.idx).unwrap();
            for t in probes(&[&drop, &keep]) {
                prop_assert!(covers(&drop, t) != covers(&keep, t), "{} token {:#x}", node.id, t);
            }
        }
    }
}
