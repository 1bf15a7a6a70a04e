//! The choice of survivors a dead node's ranges are copied from, on random
//! topologies (random rf per datacenter, random dead node, replace and
//! removenode): the sources are live owners other than the dead node and
//! the gainer, and they meet every write set a LOCAL_QUORUM or
//! EACH_QUORUM of the dead node's datacenter, or a global QUORUM, could
//! have acknowledged — unless the dead node alone acknowledged it, which
//! no source can hold, or (a global QUORUM) only the dead node and down
//! replicas, which no live source holds. Checked by enumerating the write
//! sets.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::plan::{gains, Gain};
use super::remove::gainers;
use super::survivors::{choose, need, Need};
use crate::consistency::quorum;
use crate::layout::{Layout, NewNode};
use crate::ring::tests_pending::arb_cluster;
use crate::ring::tests_prop::build_topology;

fn new_node(id: &str) -> NewNode {
    let a = |p: u16| format!("10.251.0.9:{p}").parse().unwrap();
    NewNode {
        id: id.into(),
        client_address: a(7070),
        peer_address: a(7071),
        admin_address: a(7072),
    }
}

/// Every subset of `owners` of exactly `size` members.
fn subsets(owners: &[String], size: usize) -> Vec<BTreeSet<String>> {
    (0u32..1 << owners.len())
        .filter(|m| m.count_ones() as usize == size)
        .map(|m| {
            (0..owners.len())
                .filter(|i| m & (1 << i) != 0)
                .map(|i| owners[i].clone())
                .collect()
        })
        .collect()
}

/// The write sets of `gain`'s owners (the dead one included) that a
/// LOCAL_QUORUM of `dc` and a global QUORUM could have acknowledged.
type WriteSets = (Vec<BTreeSet<String>>, Vec<BTreeSet<String>>);
fn write_sets(layout: &Layout, gain: &Gain, dead: &str, dc: &str) -> WriteSets {
    let mut owners: Vec<String> = gain.sources.clone();
    if !owners.iter().any(|o| o == dead) {
        owners.push(dead.into());
    }
    let repl = &layout.keyspaces[&gain.keyspace].replication;
    let rf_dc = repl.get(dc).copied().unwrap_or(0);
    let rf_total: u32 = repl.values().sum();
    let local: Vec<String> = owners
        .iter()
        .filter(|o| layout.node(o).is_some_and(|(d, _, _)| d == dc))
        .cloned()
        .collect();
    (
        subsets(&local, quorum(rf_dc) as usize),
        subsets(&owners, quorum(rf_total) as usize),
    )
}

/// Checks `sources` for `gain`: live survivors meeting every write set.
fn check(
    layout: &Layout,
    gain: &Gain,
    gainer: &str,
    dead: &str,
    sources: &[String],
    up: &dyn Fn(&str) -> bool,
) -> Result<(), TestCaseError> {
    let dc = layout.node(dead).unwrap().0.to_string();
    for s in sources {
        prop_assert!(s != dead && s != gainer, "{} is not a survivor", s);
        prop_assert!(gain.sources.contains(s), "{} is not an owner", s);
        prop_assert!(up(s), "{} is down", s);
    }
    let (local, global) = write_sets(layout, gain, dead, &dc);
    // A global QUORUM held only by the dead node and down replicas (a
    // remote datacenter down) waits for read repair or anti-entropy.
    let global = global.into_iter().filter(|w| w.iter().any(|n| up(n)));
    for w in local.into_iter().chain(global) {
        if w.iter().all(|n| n == dead) {
            continue; // the dead node alone: hints or repair only
        }
        prop_assert!(
            sources.iter().any(|s| w.contains(s)),
            "{:?} misses the write set {:?} of {:?}",
            sources,
            w,
            gain
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn sources_meet_every_quorum_write_set_the_dead_node_did_not_hold_alone(
        (shape, rfs) in arb_cluster(1..=3),
        pick in 0..64usize,
        replace in any::<bool>(),
        down_mask in any::<u64>(),
    ) {
        let topo = build_topology(&shape, &[("ks", rfs)]);
        let seed = Layout::seed(&topo);
        let ids: Vec<String> = seed.nodes().map(|(_, _, n)| n.id.clone()).collect();
        let dead = ids[pick % ids.len()].clone();
        let (moving, gainer_ids) = if replace {
            (seed.begin_replace(&dead, new_node("fresh")).unwrap(), vec!["fresh".to_string()])
        } else {
            let Ok(l) = seed.begin_remove(&dead) else { return Ok(()) };
            let g = gainers(&l, &dead);
            (l, g)
        };
        let all_up = |id: &str| id != dead;
        let some_up = |id: &str| {
            id != dead && ids.iter().position(|i| i == id).is_none_or(|p| down_mask & (1 << (p % 64)) == 0)
        };
        for gainer in &gainer_ids {
            for gain in gains(&moving, gainer).unwrap() {
                let survivors = gain.sources.iter().filter(|s| **s != dead && *s != gainer).count();
                match choose(&moving, &gain, gainer, &dead, &all_up) {
                    Ok(sources) => check(&moving, &gain, gainer, &dead, &sources, &all_up)?,
                    Err(e) => prop_assert_eq!(survivors, 0, "all up yet short: {}", e),
                }
                if let Ok(sources) = choose(&moving, &gain, gainer, &dead, &some_up) {
                    check(&moving, &gain, gainer, &dead, &sources, &some_up)?;
                }
            }
        }
    }
}

#[test]
fn the_need_meets_local_and_global_quorums() {
    // rf 3 alone: both survivors; dc1:3 + dc2:1 (N 4, Q 3): 2.
    assert_eq!(need(3, 3, 2, 2), Need { local: 2, total: 2 });
    assert_eq!(need(3, 4, 2, 3), Need { local: 2, total: 2 });
    // dc1:3 + dc2:2 (N 5, Q 3): a quorum may be the dead node and dc2.
    assert_eq!(need(3, 5, 2, 4), Need { local: 2, total: 3 });
    // rf 5: 3 of 4; rf 2: 1 of 1.
    assert_eq!(need(5, 5, 4, 4), Need { local: 3, total: 3 });
    assert_eq!(need(2, 2, 1, 1), Need { local: 1, total: 1 });
    // rf 1 with dc2:1: no local survivor exists, the remote one is needed.
    assert_eq!(need(1, 2, 0, 1), Need { local: 0, total: 1 });
    // rf 1 alone: nothing survives, yet one source is needed (a shortfall).
    assert_eq!(need(1, 1, 0, 0), Need { local: 0, total: 1 });
}

#[test]
fn a_replacement_copies_from_its_own_datacenter_while_a_remote_one_is_down() {
    // dc0:3 + dc1:3 (N 6, Q 4): a global QUORUM may be the dead node and
    // all of dc1, so with dc1 up a third source (in dc1) is taken. With dc1
    // down that copy cannot be had from anyone up; the two local survivors
    // still meet every LOCAL_QUORUM, and the replacement must not wait for
    // a remote datacenter to come back.
    let dc = || vec![vec![4], vec![4], vec![4]];
    let topo = build_topology(&[dc(), dc()], &[("ks", vec![3, 3])]);
    let dead = "d0-r0-n0";
    let moving = Layout::seed(&topo)
        .begin_replace(dead, new_node("fresh"))
        .unwrap();
    let local_only = |id: &str| id.starts_with("d0-") && id != dead;
    let all_up = |id: &str| id != dead;
    let local = ["d0-r1-n0".to_string(), "d0-r2-n0".to_string()];
    for gain in gains(&moving, "fresh").unwrap() {
        let with_dc1 = choose(&moving, &gain, "fresh", dead, &all_up).unwrap();
        assert_eq!(with_dc1.len(), 3, "{with_dc1:?}");
        let sources = choose(&moving, &gain, "fresh", dead, &local_only)
            .unwrap_or_else(|e| panic!("a down remote datacenter blocks the copy: {e}"));
        assert_eq!(sources, local, "{gain:?}");
    }
}
