//! The invariants of abandoning a movement (issue 11, review of stop 26):
//! a joiner or replacement that died for good after its movement switched
//! reads is dropped in two versions (`Layout::abort`: reads back to the old
//! owners with the movement kept, then the node dropped), every adjacent
//! pair keeps write and read quorums intersecting (as the steps of a
//! finish, `tests_switch`), and from the first step on the dead node reads
//! nothing, so no range is readable only from it. Also: a `begin_*` never
//! starts a movement reading new (a stale `reading_new`, review L1).
//! Test code only; must not hold production logic.

use proptest::prelude::*;

use super::tests_pending::{apply, arb_cluster, arb_ops, owners};
use super::tests_prop::build_topology;
use super::tests_switch::{adjacent_versions_intersect, mover};
use super::*;
use crate::layout::{Layout, Movement, NodeState};

/// `l` with every movement's reads switched to its new owners (step 2).
fn switched(l: &Layout) -> Vec<Layout> {
    let mut out = vec![l.clone()];
    for m in l.movements.values() {
        let last = out.last().expect("begun");
        let step = last.next_finish_step(mover(m)).expect("a movement steps");
        out.push(step.layout().clone());
    }
    out
}

/// Err unless `id` is a read owner of no token of `l` and every DC with
/// replicas still has a read owner for every range.
fn reads_nothing(l: &Layout, id: &str, ks: &str) -> Result<(), String> {
    let ring = Ring::from_layout(l);
    for &t in &ring.tokens {
        let set = ring.replicas_for_token(ks, t).expect("ks");
        let per_dc = owners(&ring, set);
        if per_dc.values().any(|s| s.contains(id)) {
            return Err(format!("v{}: {id} still reads token {t:#x}", l.version));
        }
        for (dc, &rf) in &l.keyspaces[ks].replication {
            if rf > 0 && per_dc.get(dc).is_none_or(|s| s.is_empty()) {
                return Err(format!("v{}: no reader of {t:#x} in {dc}", l.version));
            }
        }
    }
    Ok(())
}

/// The joiners and replacements of `l`'s movements.
fn joiners(l: &Layout) -> Vec<String> {
    (l.movements.values())
        .filter_map(|m| match m {
            Movement::Join { node } | Movement::Replace { new: node, .. } => Some(node.clone()),
            _ => None,
        })
        .collect()
}

/// Appends to `vs` the abort of every joiner of its last layout, each
/// until the node is dropped; Err if a step is refused, the node still
/// reads after a step, or an abort takes other than two versions.
fn abort_every_joiner(vs: &mut Vec<Layout>) -> Result<usize, String> {
    let at_switch = vs.last().expect("switched").clone();
    for j in joiners(&at_switch) {
        let mut steps = 0;
        while vs.last().and_then(|l| l.node(&j)).map(|n| n.2.state) == Some(NodeState::Joining) {
            let next = (vs.last().expect("some").abort(&j)).map_err(|e| e.to_string())?;
            reads_nothing(&next, &j, "ks")?;
            vs.push(next);
            steps += 1;
            if steps > 2 {
                return Err(format!("the abort of {j} took more than two versions"));
            }
        }
        if steps != 2 {
            return Err(format!(
                "the abort of {j} after the switch took {steps} version(s)"
            ));
        }
        let (dc, _, _) = at_switch.node(&j).expect("a member");
        let end = vs.last().expect("some");
        if end.movements.contains_key(dc) || end.reads_new(dc) {
            return Err(format!(
                "{dc} still moves after the abort: {:?}",
                end.movements
            ));
        }
    }
    Ok(joiners(&at_switch).len())
}

/// rf 3 in one DC of three nodes, a fourth joins and its reads switch;
/// it dies for good. Abandoned in two versions, each pair of adjacent
/// versions intersects and the dead joiner reads nothing after the first.
#[test]
fn a_joiner_dead_after_the_switch_is_dropped_in_two_versions_that_keep_quorums() {
    let topo = build_topology(&[vec![vec![8], vec![8], vec![8]]], &[("ks", vec![3])]);
    let join = (0u8, 0, 0, 0, (1..=8u64).map(|i| i << 60 | 0x5555).collect());
    let mut vs = switched(&apply(Layout::seed(&topo), &[join]));
    assert!(
        vs.last().expect("v").reads_new("dc0"),
        "the switch of reads"
    );
    assert_eq!(abort_every_joiner(&mut vs), Ok(1));
    adjacent_versions_intersect(&vs).expect("adjacent versions intersect");
    let end = vs.last().expect("end");
    assert_eq!(
        end.node("new0").map(|n| n.2.state),
        Some(NodeState::Removed)
    );
}

/// The negative control: the same joiner dropped in one version at the
/// switch (reads straight back to the old owners) fails the same check.
#[test]
fn dropping_the_same_joiner_in_one_version_fails_the_check() {
    let topo = build_topology(&[vec![vec![8], vec![8], vec![8]]], &[("ks", vec![3])]);
    let join = (0u8, 0, 0, 0, (1..=8u64).map(|i| i << 60 | 0x5555).collect());
    let vs = switched(&apply(Layout::seed(&topo), &[join]));
    let at_switch = vs.last().expect("switched").clone();
    let mut dropped = at_switch.clone();
    dropped.version += 1;
    dropped.movements.clear();
    dropped.reading_new.clear();
    let n = dropped.node_mut("new0").expect("joiner");
    n.state = NodeState::Removed;
    n.tokens.clear();
    assert!(
        adjacent_versions_intersect(&[at_switch, dropped]).is_err(),
        "a one-version drop at the switch must be caught"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random rings, racks, rf and movements: every joiner and replacement
    /// at the switch is abandoned in two versions; adjacent versions
    /// intersect from the begin to the end, and the dead node reads
    /// nothing from the first abort step on.
    #[test]
    fn every_step_of_an_abort_after_the_switch_keeps_quorums_and_reads_off_the_dead_node(
        (shape, rfs) in arb_cluster(1..=5), ops in arb_ops()
    ) {
        let topo = build_topology(&shape, &[("ks", rfs)]);
        let begun = apply(Layout::seed(&topo), &ops);
        prop_assume!(!joiners(&begun).is_empty());
        let mut vs = switched(&begun);
        match abort_every_joiner(&mut vs) {
            Ok(n) => prop_assert!(n > 0),
            Err(e) => prop_assert!(false, "{}", e),
        }
        if let Err(e) = adjacent_versions_intersect(&vs) {
            prop_assert!(false, "{}", e);
        }
    }

    /// Review of stop 26, L1: a layout carrying a stale `reading_new` for
    /// every datacenter (left by an older build) starts no movement reading
    /// from its new owners.
    #[test]
    fn no_begin_starts_a_movement_reading_new(
        (shape, rfs) in arb_cluster(1..=5), ops in arb_ops()
    ) {
        let topo = build_topology(&shape, &[("ks", rfs)]);
        let mut stale = Layout::seed(&topo);
        stale.reading_new = stale.datacenters.iter().map(|d| d.name.clone()).collect();
        let begun = apply(stale, &ops);
        prop_assume!(!begun.movements.is_empty());
        for dc in begun.movements.keys() {
            prop_assert!(!begun.reads_new(dc), "{} begins reading new", dc);
        }
    }
}
