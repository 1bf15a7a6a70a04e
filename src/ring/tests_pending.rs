//! Pending-range properties on random clusters and random movements: the
//! pending replicas are exactly the new owners that are not current owners,
//! a write quorum made during the movement (current ∪ pending, blockFor +
//! pending) meets every read quorum of the old and of the new owners, and
//! nothing is pending where nothing moves.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::tests_prop::build_topology;
use super::*;
use crate::consistency::{block_for, with_pending, ConsistencyLevel as L, OpKind, Requirement};
use crate::layout::{Layout, Movement, NewNode, NodeState};

/// dcs[d][r] = vnodes of each node of rack r; rfs[d] ≤ nodes of dc d.
pub(crate) fn arb_cluster(
    vnodes: std::ops::RangeInclusive<u32>,
) -> impl Strategy<Value = (Vec<Vec<Vec<u32>>>, Vec<u32>)> {
    let dc = (1..=3usize, 2..=5usize, 0..=3u32).prop_flat_map(move |(r, n, rf)| {
        (
            Just(r.min(n)),
            prop::collection::vec((0..3usize, vnodes.clone()), n),
            Just(rf.min(n as u32)),
        )
    });
    prop::collection::vec(dc, 1..=3).prop_map(|dcs| {
        let mut shapes = Vec::new();
        let mut rfs = Vec::new();
        for (racks, nodes, rf) in dcs {
            let mut out = vec![Vec::new(); racks];
            for (j, (pick, v)) in nodes.into_iter().enumerate() {
                out[if j < racks { j } else { pick % racks }].push(v);
            }
            shapes.push(out);
            rfs.push(rf);
        }
        if rfs.iter().all(|&r| r == 0) {
            rfs[0] = 1;
        }
        (shapes, rfs)
    })
}

/// A movement: (kind, dc pick, node pick, rack pick, join tokens).
pub(crate) fn arb_ops() -> impl Strategy<Value = Vec<(u8, usize, usize, usize, Vec<u64>)>> {
    prop::collection::vec(
        (
            0..4u8,
            0..3usize,
            0..8usize,
            0..4usize,
            prop::collection::vec(any::<u64>(), 1..8),
        ),
        1..=2,
    )
}

fn new_node(id: &str, k: usize) -> NewNode {
    let a = |p: u16| format!("10.250.0.{k}:{p}").parse().unwrap();
    NewNode {
        id: id.into(),
        client_address: a(7070),
        peer_address: a(7071),
        admin_address: a(7072),
    }
}

/// Applies what it can of `ops` to `l` (a refused op is skipped).
pub(crate) fn apply(mut l: Layout, ops: &[(u8, usize, usize, usize, Vec<u64>)]) -> Layout {
    for (k, (kind, d, n, r, tokens)) in ops.iter().enumerate() {
        let dc = l.datacenters[d % l.datacenters.len()].name.clone();
        let normal: Vec<String> = l
            .nodes()
            .filter(|(x, _, m)| *x == dc && m.state == NodeState::Normal)
            .map(|(_, _, m)| m.id.clone())
            .collect();
        let victim = normal[n % normal.len()].clone();
        let new_id = format!("new{k}");
        let next = match kind {
            0 => l.begin_join(new_node(&new_id, k), &dc, &format!("r{r}"), tokens),
            1 => l.begin_leave(&victim),
            2 => l.begin_remove(&victim),
            _ => l.begin_replace(&victim, new_node(&new_id, k)),
        };
        if let Ok(next) = next {
            l = next;
        }
    }
    l
}

pub(super) type Owners = BTreeMap<String, BTreeSet<String>>;

pub(super) fn owners(ring: &Ring, set: &ReplicaSet) -> Owners {
    set.per_dc
        .iter()
        .map(|d| {
            (
                d.dc.clone(),
                d.nodes.iter().map(|&n| ring.node(n).id.clone()).collect(),
            )
        })
        .collect()
}

/// `set` has enough nodes to meet `req`.
pub(super) fn count_in(req: &Requirement, set: &Owners) -> bool {
    let per_dc = |dc: &str| set.get(dc).map_or(0, |s| s.len() as u32);
    match req {
        Requirement::AnyOrHint => set.values().map(|s| s.len()).sum::<usize>() >= 1,
        Requirement::Total { count } => set.values().map(|s| s.len() as u32).sum::<u32>() >= *count,
        Requirement::Local { dc, count } => per_dc(dc) >= *count,
        Requirement::EachDc { per_dc: need } => need.iter().all(|(dc, n)| per_dc(dc) >= *n),
    }
}

/// Every read set meeting `read` within `readable` intersects every write
/// set meeting `write` within `writable`: the largest write avoiding a
/// minimal read never meets `write`.
pub(super) fn quorums_intersect(
    write: &Requirement,
    writable: &Owners,
    read: &Requirement,
    readable: &Owners,
) -> bool {
    let all: Vec<(String, String)> = readable
        .iter()
        .flat_map(|(d, s)| s.iter().map(move |n| (d.clone(), n.clone())))
        .collect();
    (0u32..1 << all.len()).all(|mask| {
        let r: Owners = all
            .iter()
            .enumerate()
            .filter(|(i, _)| mask >> i & 1 == 1)
            .fold(BTreeMap::new(), |mut m, (_, (d, n))| {
                m.entry(d.clone())
                    .or_insert_with(BTreeSet::new)
                    .insert(n.clone());
                m
            });
        if !count_in(read, &r) {
            return true;
        }
        let avoid: Owners = writable
            .iter()
            .map(|(d, s)| {
                (
                    d.clone(),
                    s.iter()
                        .filter(|n| !r.get(d).is_some_and(|x| x.contains(*n)))
                        .cloned()
                        .collect(),
                )
            })
            .collect();
        !count_in(write, &avoid)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn pending_ranges_keep_quorums_intersecting((shape, rfs) in arb_cluster(1..=6), ops in arb_ops()) {
        let topo = build_topology(&shape, &[("ks", rfs.clone())]);
        let seed = Layout::seed(&topo);
        prop_assert!(PendingRanges::of_layout(&seed).unwrap().is_empty());
        let moving = apply(seed, &ops);
        let (now, after) = (Ring::from_layout(&moving), Ring::from_layout(&moving.settled()));
        prop_assert!(PendingRanges::between(&now, &now).unwrap().is_empty());
        prop_assert!(PendingRanges::between(&after, &after).unwrap().is_empty());
        let pending = PendingRanges::of_layout(&moving).unwrap();
        prop_assert_eq!(&pending, &PendingRanges::between(&now, &after).unwrap());
        let repl = &topo.keyspaces["ks"].replication;
        let dcs: Vec<&String> = repl.iter().filter(|(_, &rf)| rf > 0).map(|(d, _)| d).collect();
        let mut bounds: Vec<Token> = now.tokens.iter().chain(&after.tokens).copied().collect();
        bounds.sort_unstable();
        for t in bounds {
            let c = owners(&now, now.replicas_for_token("ks", t).unwrap());
            let n = owners(&after, after.replicas_for_token("ks", t).unwrap());
            let p: Owners = pending.for_token("ks", t).iter().map(|d| (d.dc.clone(), d.nodes.iter().map(|&i| now.node(i).id.clone()).collect())).collect();
            // Pending = new owners that are not current owners, exactly.
            for (dc, new) in &n {
                let want: BTreeSet<String> = new.difference(&c[dc]).cloned().collect();
                prop_assert_eq!(p.get(dc).cloned().unwrap_or_default(), want, "dc {} token {:#x}", dc, t);
            }
            if c == n {
                prop_assert!(p.is_empty(), "untouched range has pending replicas");
            }
            for m in moving.movements.values() {
                let only: Option<&String> = match m { Movement::Join { node } => Some(node), Movement::Replace { new, .. } => Some(new), _ => None };
                if let Some(only) = only {
                    let dc = moving.node(only).unwrap().0;
                    prop_assert!(p.get(dc).is_none_or(|s| s.iter().all(|x| x == only)), "{} moved others", m);
                }
            }
            let writable: Owners = c.iter().map(|(d, s)| (d.clone(), s.union(p.get(d).unwrap_or(&BTreeSet::new())).cloned().collect())).collect();
            let counts = pending.counts_for_token("ks", t);
            let mut pairs: Vec<(L, L, &str)> = vec![(L::Quorum, L::Quorum, dcs[0]), (L::All, L::One, dcs[0])];
            for &dc in &dcs {
                pairs.push((L::LocalQuorum, L::LocalQuorum, dc));
                pairs.push((L::EachQuorum, L::LocalQuorum, dc));
            }
            for (wl, rl, dc) in pairs {
                let w = with_pending(block_for(wl, None, OpKind::Write, repl, dc).unwrap(), &counts);
                let r = block_for(rl, None, OpKind::Read, repl, dc).unwrap();
                prop_assert!(count_in(&w, &writable), "{} write cannot be met", wl);
                prop_assert!(quorums_intersect(&w, &writable, &r, &c), "{} write misses an old {} read in {}", wl, rl, dc);
                prop_assert!(quorums_intersect(&w, &writable, &r, &n), "{} write misses a new {} read in {}", wl, rl, dc);
            }
        }
    }
}
