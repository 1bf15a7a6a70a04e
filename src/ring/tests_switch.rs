//! The invariant of the steps at the end of a movement (issue 11, audit
//! W2): for every two adjacent layout versions a movement goes through,
//! any write quorum planned on one meets any read quorum planned on the
//! other, at every level that promises read-your-writes (LOCAL_QUORUM,
//! QUORUM, EACH_QUORUM writes read at LOCAL_QUORUM). Coordinators are at
//! most one version apart because a step is proposed only once every live
//! member is on the one before (`movement::switch`).

use proptest::prelude::*;

use super::tests_pending::Owners;
use super::tests_pending::{apply, arb_cluster, arb_ops, count_in, owners, quorums_intersect};
use super::tests_prop::build_topology;
use super::*;
use crate::consistency::{block_for, with_pending, ConsistencyLevel as L, OpKind};
use crate::layout::{Layout, Movement};

/// The node whose id ends `m` through [`Layout::next_finish_step`].
pub(super) fn mover(m: &Movement) -> &str {
    match m {
        Movement::Join { node } | Movement::Leave { node } | Movement::Remove { node, .. } => node,
        Movement::Replace { new, .. } => new,
    }
}

/// The versions from `seed` through `ops` (each accepted one a version)
/// and then every step the drivers propose to end each movement.
fn versions(seed: Layout, ops: &[(u8, usize, usize, usize, Vec<u64>)]) -> Vec<Layout> {
    let mut out = vec![seed.clone()];
    for i in 1..=ops.len() {
        let next = apply(seed.clone(), &ops[..i]);
        if next.version != out.last().expect("seed").version {
            out.push(next);
        }
    }
    while let Some(m) = out.last().expect("seed").movements.values().next().cloned() {
        let step = out.last().expect("seed").next_finish_step(mover(&m));
        out.push(
            step.expect("a movement in progress can step")
                .layout()
                .clone(),
        );
    }
    out
}

/// Where `w`'s writes of `t` go (owners and pending replicas), per DC.
fn writable(ring: &Ring, pending: &PendingRanges, ks: &str, t: Token) -> Owners {
    let mut out = owners(ring, ring.replicas_for_token(ks, t).expect("ks"));
    for d in pending.for_token(ks, t) {
        let ids = d.nodes.iter().map(|&i| ring.node(i).id.clone());
        out.entry(d.dc.clone()).or_default().extend(ids);
    }
    out
}

/// `Err` naming the first token and levels where a write quorum planned
/// on `w` can miss a read quorum planned on `r`.
fn write_meets_read(w: &Layout, r: &Layout, ks: &str) -> Result<(), String> {
    let (wring, rring) = (Ring::from_layout(w), Ring::from_layout(r));
    let pending = PendingRanges::of_layout(w).expect("pending");
    let also = Ring::from_layout(&w.also_written());
    let mut bounds: Vec<Token> = [&wring, &rring, &also]
        .iter()
        .flat_map(|g| g.tokens.iter().copied())
        .collect();
    bounds.sort_unstable();
    bounds.dedup();
    let repl = &w.keyspaces[ks].replication;
    let dcs: Vec<&String> = repl
        .iter()
        .filter(|(_, &rf)| rf > 0)
        .map(|(d, _)| d)
        .collect();
    let mut pairs: Vec<(L, L, &str)> = vec![(L::Quorum, L::Quorum, dcs[0])];
    for &dc in &dcs {
        pairs.push((L::LocalQuorum, L::LocalQuorum, dc));
        pairs.push((L::EachQuorum, L::LocalQuorum, dc));
    }
    for t in bounds {
        let writes = writable(&wring, &pending, ks, t);
        let reads = owners(&rring, rring.replicas_for_token(ks, t).expect("ks"));
        let counts = pending.counts_for_token(ks, t);
        for &(wl, rl, dc) in &pairs {
            let need = with_pending(
                block_for(wl, None, OpKind::Write, repl, dc).expect("w"),
                &counts,
            );
            let read = block_for(rl, None, OpKind::Read, repl, dc).expect("r");
            if count_in(&need, &writes) && !quorums_intersect(&need, &writes, &read, &reads) {
                return Err(format!(
                    "token {t:#x}: a {wl:?} write on v{} to {writes:?} misses a {rl:?} read in {dc} on v{} of {reads:?}",
                    w.version, r.version
                ));
            }
        }
    }
    Ok(())
}

/// Both directions for every adjacent pair of `vs`.
pub(super) fn adjacent_versions_intersect(vs: &[Layout]) -> Result<(), String> {
    for pair in vs.windows(2) {
        write_meets_read(&pair[0], &pair[1], "ks")?;
        write_meets_read(&pair[1], &pair[0], "ks")?;
    }
    Ok(())
}

/// Audit W2: rf 3 in one DC of three nodes, a fourth joins. A
/// LOCAL_QUORUM write acknowledged on the layout after the join's end by
/// two new owners (the joiner among them) must meet a LOCAL_QUORUM read
/// planned one version before by a coordinator the new version has not
/// reached yet. With a one-step finish the read can go to the old owner
/// that lost the range and one that was slow to apply: it misses.
#[test]
fn a_read_planned_before_the_finish_meets_a_write_acknowledged_after_it() {
    let topo = build_topology(&[vec![vec![8], vec![8], vec![8]]], &[("ks", vec![3])]);
    let join = (0u8, 0, 0, 0, (1..=8u64).map(|i| i << 60 | 0x5555).collect());
    let vs = versions(Layout::seed(&topo), &[join]);
    assert!(vs[1].movements.contains_key("dc0"), "the join began");
    assert!(vs.last().expect("end").movements.is_empty(), "and ended");
    adjacent_versions_intersect(&vs).expect("adjacent versions intersect");
}

/// The negative control of the test above: the same join ended in one
/// step (begin, then `finish_*` with no switch of reads) fails the same
/// check, so the check can see W2.
#[test]
fn a_one_step_finish_of_the_same_join_fails_the_check() {
    let topo = build_topology(&[vec![vec![8], vec![8], vec![8]]], &[("ks", vec![3])]);
    let join = (0u8, 0, 0, 0, (1..=8u64).map(|i| i << 60 | 0x5555).collect());
    let begun = apply(Layout::seed(&topo), &[join]);
    let m = begun
        .movements
        .values()
        .next()
        .cloned()
        .expect("the join began");
    let finished = begun.finish_movement(&m).expect("one-step finish");
    assert!(
        adjacent_versions_intersect(&[begun, finished]).is_err(),
        "a one-step finish must be caught"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random rings, racks, rf and movements (one or two DCs moving at once).
    #[test]
    fn every_step_of_a_movement_keeps_adjacent_quorums_intersecting(
        (shape, rfs) in arb_cluster(1..=5), ops in arb_ops()
    ) {
        let topo = build_topology(&shape, &[("ks", rfs)]);
        let vs = versions(Layout::seed(&topo), &ops);
        prop_assert!(vs.last().expect("end").movements.is_empty());
        if let Err(e) = adjacent_versions_intersect(&vs) {
            prop_assert!(false, "{}", e);
        }
    }
}
