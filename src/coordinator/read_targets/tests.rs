//! Examples and properties of the read's replica choice: the first wave asks
//! exactly the level's count of live replicas, nearest first; speculation
//! and replacement never ask a dead replica, one twice, or one outside the
//! replica set, and replacement restores the level whenever replicas allow.

use super::{Candidate, ReadTargets};
use crate::coordinator::consistency::{
    block_for, AckCounts, ConsistencyLevel, OpKind, Replication, Requirement,
};
use crate::topology::NodeIdx;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

/// Replicas `dc:[up,...]` in proximity order, numbered from 0.
fn cands(dcs: &[(&str, &[bool])]) -> Vec<Candidate> {
    let mut out = Vec::new();
    for (dc, ups) in dcs {
        for up in ups.iter() {
            out.push(Candidate {
                node: NodeIdx(out.len() as u32),
                dc: dc.to_string(),
                up: *up,
            });
        }
    }
    out
}

fn nodes(c: &[Candidate]) -> Vec<u32> {
    c.iter().map(|c| c.node.0).collect()
}

fn acks(e: &[(&str, u32)]) -> AckCounts {
    AckCounts {
        per_dc: e.iter().map(|(d, n)| (d.to_string(), *n)).collect(),
        hints: 0,
    }
}

#[test]
fn quorum_on_rf3_asks_the_two_nearest_then_speculates_the_third() {
    let mut t = ReadTargets::new(
        Requirement::Total { count: 2 },
        cands(&[("dc1", &[true, true, true])]),
    );
    assert_eq!(nodes(&t.first_wave()), vec![0, 1]);
    assert_eq!(t.speculate(&acks(&[("dc1", 1)])).map(|c| c.node.0), Some(2));
    assert_eq!(t.speculate(&acks(&[("dc1", 1)])), None, "nothing left");
}

#[test]
fn a_dead_replica_is_skipped_for_a_live_one() {
    let mut t = ReadTargets::new(
        Requirement::Total { count: 2 },
        cands(&[("dc1", &[true, false, true])]),
    );
    assert_eq!(nodes(&t.first_wave()), vec![0, 2]);
    assert_eq!(t.speculate(&AckCounts::default()), None);
}

#[test]
fn local_quorum_stays_local_and_count_levels_reach_out_last() {
    let two_dc = cands(&[("dc1", &[true, true, true]), ("dc2", &[true, true, true])]);
    let mut local = ReadTargets::new(
        Requirement::Local {
            dc: "dc1".into(),
            count: 2,
        },
        two_dc.clone(),
    );
    assert_eq!(nodes(&local.first_wave()), vec![0, 1]);
    assert_eq!(local.speculate(&acks(&[])).map(|c| c.node.0), Some(2));
    assert_eq!(local.speculate(&acks(&[])), None, "never a remote one");

    let mut quorum = ReadTargets::new(Requirement::Total { count: 4 }, two_dc.clone());
    assert_eq!(nodes(&quorum.first_wave()), vec![0, 1, 2, 3]);
    let mut all = ReadTargets::new(Requirement::Total { count: 6 }, two_dc);
    assert_eq!(nodes(&all.first_wave()), vec![0, 1, 2, 3, 4, 5]);
}

#[test]
fn each_quorum_asks_a_quorum_per_dc_and_speculates_where_short() {
    let mut t = ReadTargets::new(
        Requirement::EachDc {
            per_dc: vec![("dc1".into(), 2), ("dc2".into(), 2)],
        },
        cands(&[("dc1", &[true, true, true]), ("dc2", &[true, true, true])]),
    );
    assert_eq!(nodes(&t.first_wave()), vec![0, 1, 3, 4]);
    let next = t.speculate(&acks(&[("dc1", 2), ("dc2", 1)]));
    assert_eq!(next.map(|c| c.node.0), Some(5), "dc1 is met: dc2's third");
}

#[test]
fn failures_are_replaced_until_the_level_can_be_met_again() {
    let mut t = ReadTargets::new(
        Requirement::Total { count: 2 },
        cands(&[("dc1", &[true, true]), ("dc2", &[true, true])]),
    );
    assert_eq!(nodes(&t.first_wave()), vec![0, 1]);
    // Both failed: nothing pending, nothing acked.
    let more = t.replace_failed(&acks(&[]), &BTreeMap::new());
    assert_eq!(nodes(&more), vec![2, 3]);
    assert!(t.replace_failed(&acks(&[]), &BTreeMap::new()).is_empty());
}

/// A random keyspace: 1..=3 datacenters of 1..=4 replicas, each up or not.
fn layout() -> impl Strategy<Value = Vec<Vec<bool>>> {
    prop::collection::vec(prop::collection::vec(any::<bool>(), 1..=4), 1..=3)
}

fn level() -> impl Strategy<Value = ConsistencyLevel> {
    let levels = ConsistencyLevel::ALL_LEVELS.iter().copied();
    prop::sample::select(
        levels
            .filter(|l| *l != ConsistencyLevel::Any)
            .collect::<Vec<_>>(),
    )
}

fn setup(layout: &[Vec<bool>], level: ConsistencyLevel) -> Option<(Requirement, Vec<Candidate>)> {
    let names: Vec<String> = (0..layout.len()).map(|i| format!("dc{i}")).collect();
    let repl: Replication = names
        .iter()
        .zip(layout)
        .map(|(d, ups)| (d.clone(), ups.len() as u32))
        .collect();
    let req = block_for(level, None, OpKind::Read, &repl, "dc0").ok()?;
    let spec: Vec<(&str, &[bool])> = names
        .iter()
        .zip(layout)
        .map(|(d, ups)| (d.as_str(), ups.as_slice()))
        .collect();
    Some((req, cands(&spec)))
}

/// How many of `wave` each datacenter has.
fn per_dc(wave: &[Candidate]) -> BTreeMap<String, u32> {
    let mut m = BTreeMap::new();
    for c in wave {
        *m.entry(c.dc.clone()).or_default() += 1;
    }
    m
}

proptest! {
    #[test]
    fn the_first_wave_is_the_levels_count_of_the_nearest_live_replicas(
        layout in layout(), level in level()
    ) {
        let Some((req, all)) = setup(&layout, level) else { return Ok(()) };
        let live: Vec<Candidate> = all.iter().filter(|c| c.up).cloned().collect();
        let live_in = |dc: &str| live.iter().filter(|c| c.dc == dc).count() as u32;
        let wave = ReadTargets::new(req.clone(), all.clone()).first_wave();
        prop_assert!(wave.iter().all(|c| c.up), "never a dead replica");
        let got = per_dc(&wave);
        match &req {
            Requirement::Total { count } => {
                // A prefix of the live replicas in proximity order: the
                // local datacenter before any other.
                let n = (*count as usize).min(live.len());
                prop_assert_eq!(&wave[..], &live[..n]);
            }
            Requirement::Local { dc, count } => {
                prop_assert!(wave.iter().all(|c| &c.dc == dc));
                prop_assert_eq!(wave.len() as u32, (*count).min(live_in(dc)));
            }
            Requirement::EachDc { per_dc } => {
                for (dc, n) in per_dc {
                    prop_assert_eq!(got.get(dc).copied().unwrap_or(0), (*n).min(live_in(dc)));
                }
            }
            Requirement::AnyOrHint => prop_assert!(false, "reads reject ANY"),
        }
    }

    #[test]
    fn waves_speculation_and_replacement_stay_inside_the_live_replicas(
        layout in layout(), level in level(), failed in any::<u8>(), rounds in 0usize..6
    ) {
        let Some((req, all)) = setup(&layout, level) else { return Ok(()) };
        let live: BTreeSet<u32> = all.iter().filter(|c| c.up).map(|c| c.node.0).collect();
        let mut t = ReadTargets::new(req.clone(), all.clone());
        let wave = t.first_wave();
        // Some of the wave fail (bit i of `failed`), the others stay pending.
        let mut pending = BTreeMap::new();
        for (i, c) in wave.iter().enumerate() {
            if failed & (1 << (i % 8)) == 0 {
                *pending.entry(c.dc.clone()).or_default() += 1u32;
            }
        }
        let acks = AckCounts::default();
        let more = t.replace_failed(&acks, &pending);
        for c in &more {
            *pending.entry(c.dc.clone()).or_default() += 1;
        }
        // Replacement restores the level unless no live replica is left
        // where it is short.
        if !req.can_still_be_met(&acks, &pending) {
            let asked: BTreeSet<u32> = t.asked().iter().map(|n| n.0).collect();
            for c in all.iter().filter(|c| c.up && !asked.contains(&c.node.0)) {
                let counts = match &req {
                    Requirement::Total { .. } | Requirement::AnyOrHint => true,
                    Requirement::Local { dc, .. } => &c.dc == dc,
                    Requirement::EachDc { per_dc } => per_dc
                        .iter()
                        .any(|(d, n)| d == &c.dc && pending.get(d).copied().unwrap_or(0) < *n),
                };
                prop_assert!(!counts, "{:?} was left unasked where the level is short", c);
            }
        }
        for _ in 0..rounds {
            let _ = t.speculate(&acks);
        }
        let asked: Vec<u32> = t.asked().iter().map(|n| n.0).collect();
        let unique: BTreeSet<u32> = asked.iter().copied().collect();
        prop_assert_eq!(unique.len(), asked.len(), "no replica asked twice");
        prop_assert!(unique.is_subset(&live), "only live replicas of the set");
        if let Requirement::Local { dc, .. } = &req {
            prop_assert!(all.iter().filter(|c| unique.contains(&c.node.0)).all(|c| &c.dc == dc));
        }
    }
}
