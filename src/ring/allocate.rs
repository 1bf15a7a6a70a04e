//! Token allocation for a joining node: tokens that keep its datacenter's
//! replicated load balanced, in the spirit of Cassandra's
//! `allocate_tokens_for_local_replication_factor`, instead of hashed ones.
//!
//! Owns [`allocate_tokens`]. Works on the datacenter's own sub-ring (the
//! NTS walk of one datacenter only ever looks at that datacenter's vnodes)
//! and places one token at a time, greedily: for every gap between two
//! vnodes of the datacenter it computes, exactly, how each node's load
//! (the width of the ranges it replicates) changes if the new node takes a
//! piece of that gap, and keeps the gap and split point that bring the
//! other nodes closest to their share of the load after the join (the
//! total in proportion to each node's tokens, i.e. its weight: the mean
//! when weights are equal) while the new node gains its quota for this
//! token (what it still lacks over the tokens it still has to place) — a
//! least-squares objective, solved in closed form
//! per gap. Only the walks that pass the gap can change, so a candidate
//! costs a few walks, not a ring. Pure and deterministic; must not consult
//! liveness or load measurements (it balances token ownership only).

use std::collections::{BTreeSet, HashSet};

use super::placement::{DcPlan, Walk};
use super::Token;
use crate::layout::Layout;
use crate::topology::{NodeIdx, MAX_VNODES};

/// Tokens cannot be allocated for this join.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocateError {
    #[error("datacenter '{0}' is not in the layout")]
    UnknownDatacenter(String),
    #[error("a node needs between 1 and {MAX_VNODES} tokens, got {0}")]
    TokenCount(usize),
}

/// The replication factor to balance a new node of `dc` for: the largest
/// any keyspace asks there (at least 1).
pub fn allocation_rf(layout: &Layout, dc: &str) -> u32 {
    let rfs = layout
        .keyspaces
        .values()
        .filter_map(|k| k.replication.get(dc));
    rfs.copied().max().unwrap_or(1).max(1)
}

/// `count` tokens for a node joining `rack` of `dc`, balancing the load of
/// `dc`'s nodes under replication factor `rf` (see [`allocation_rf`]).
/// Ascending, distinct, and not owned by any member of `layout`.
pub fn allocate_tokens(
    layout: &Layout,
    dc: &str,
    rack: &str,
    count: usize,
    rf: u32,
) -> Result<Vec<Token>, AllocateError> {
    if count == 0 || count > MAX_VNODES as usize {
        return Err(AllocateError::TokenCount(count));
    }
    if !layout.datacenters.iter().any(|d| d.name == dc) {
        return Err(AllocateError::UnknownDatacenter(dc.into()));
    }
    let taken: HashSet<Token> = layout
        .nodes()
        .filter(|(_, _, n)| n.state.is_member())
        .flat_map(|(_, _, n)| n.tokens.iter().copied())
        .collect();
    let mut sub = SubRing::new(layout, dc, rack, rf, count);
    let mut chosen = BTreeSet::new();
    while chosen.len() < count {
        let remaining = (count - chosen.len()) as f64;
        let targets = sub.targets();
        let lacking = (targets[sub.joiner.0 as usize] - sub.loads[sub.joiner.0 as usize]).max(0.0);
        let t = sub.next_token(&targets, lacking / remaining, |t| {
            !taken.contains(&t) && !chosen.contains(&t)
        });
        chosen.insert(t);
        sub.insert(t);
    }
    Ok(chosen.into_iter().collect())
}

const RING: f64 = 18_446_744_073_709_551_616.0; // 2^64

/// One datacenter's vnodes, the joining node last, and what the walk gives.
#[derive(Clone)]
struct SubRing {
    tokens: Vec<Token>,
    owners: Vec<NodeIdx>,
    rack_of: Vec<usize>,
    plan_of: Vec<Option<usize>>,
    plan: [DcPlan; 1],
    joiner: NodeIdx,
    /// The replicas of the interval ending at each vnode.
    sets: Vec<Vec<NodeIdx>>,
    /// The most vnodes any walk visits.
    max_steps: usize,
    /// Per node, the fraction of the ring it replicates.
    loads: Vec<f64>,
    /// Per node, its tokens (the joiner's once placed): its weight.
    weights: Vec<f64>,
}

impl SubRing {
    fn new(layout: &Layout, dc: &str, rack: &str, rf: u32, count: usize) -> SubRing {
        let members: Vec<_> = layout
            .nodes()
            .filter(|(d, _, n)| *d == dc && n.state.owns_tokens())
            .collect();
        let mut racks: Vec<&str> = members.iter().map(|(_, r, _)| *r).collect();
        racks.push(rack);
        racks.sort_unstable();
        racks.dedup();
        let rack_no = |r: &str| racks.iter().position(|x| *x == r).expect("listed");
        let mut rack_of: Vec<usize> = members.iter().map(|(_, r, _)| rack_no(r)).collect();
        rack_of.push(rack_no(rack));
        let mut vnodes: Vec<(Token, NodeIdx)> = members
            .iter()
            .enumerate()
            .flat_map(|(i, (_, _, n))| n.tokens.iter().map(move |&t| (t, NodeIdx(i as u32))))
            .collect();
        vnodes.sort_unstable();
        vnodes.dedup_by_key(|v| v.0);
        let (tokens, owners) = vnodes.into_iter().unzip();
        let nodes = rack_of.len();
        let mut weights: Vec<f64> = members
            .iter()
            .map(|(_, _, n)| n.tokens.len() as f64)
            .collect();
        weights.push(count as f64);
        let plan = DcPlan {
            name: dc.into(),
            rf,
            target: (rf as usize).min(nodes),
            racks: racks.len(),
        };
        let mut sub = SubRing {
            tokens,
            owners,
            rack_of,
            plan_of: vec![Some(0); nodes],
            plan: [plan],
            joiner: NodeIdx(nodes as u32 - 1),
            sets: Vec::new(),
            max_steps: 0,
            loads: Vec::new(),
            weights,
        };
        sub.recompute();
        sub
    }

    /// Per node, the load it should end with: the replicated total shared
    /// in proportion to the weights (the mean when every weight is equal),
    /// so a node joined with weight 2 takes twice the others' share.
    fn targets(&self) -> Vec<f64> {
        let total: f64 = self.loads.iter().sum();
        let weights: f64 = self.weights.iter().sum();
        self.weights.iter().map(|w| total * w / weights).collect()
    }

    fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Width of the interval ending at vnode `p`, in tokens (the whole ring
    /// saturates at `u64::MAX`).
    fn width(&self, p: usize) -> u64 {
        let m = self.len();
        if m == 1 {
            u64::MAX
        } else {
            self.tokens[p].wrapping_sub(self.tokens[(p + m - 1) % m])
        }
    }

    fn walk<'a>(&'a self, owners: &'a [NodeIdx]) -> Walk<'a> {
        Walk {
            owners,
            plan_of_node: &self.plan_of,
            rack_of_node: &self.rack_of,
        }
    }

    fn recompute(&mut self) {
        let m = self.len();
        let mut sets = Vec::with_capacity(m);
        let mut loads = vec![0.0; self.rack_of.len()];
        let mut max_steps = 0;
        let walk = self.walk(&self.owners);
        for p in 0..m {
            let (set, steps) = walk.place_counted(p, &self.plan);
            let nodes = set.into_iter().next().map(|d| d.nodes).unwrap_or_default();
            for n in &nodes {
                loads[n.0 as usize] += self.width(p) as f64 / RING;
            }
            max_steps = max_steps.max(steps);
            sets.push(nodes);
        }
        (self.sets, self.loads, self.max_steps) = (sets, loads, max_steps);
    }

    fn insert(&mut self, t: Token) {
        let i = self.tokens.partition_point(|&x| x < t);
        self.tokens.insert(i, t);
        self.owners.insert(i, self.joiner);
        self.recompute();
    }

    /// The best free token: the gap and split point minimising the
    /// squared distance of the others to their `targets` and of the
    /// joiner's gain to `quota`.
    fn next_token(&self, targets: &[f64], quota: f64, free: impl Fn(Token) -> bool) -> Token {
        let m = self.len();
        let joiner_placed = self.owners.contains(&self.joiner);
        let complete = self.sets.iter().all(|s| s.len() == self.plan[0].target);
        // Ties (common while every node replicates everything) go to the
        // widest gap, so the tokens spread instead of halving one gap.
        let mut best: Option<(f64, u64, Token)> = None;
        if m > 0 && (joiner_placed || complete) {
            for g in 0..m {
                let Some((cost, offset)) = self.evaluate(g, targets, quota) else {
                    continue;
                };
                let (t, w) = (self.tokens[g].wrapping_add(offset), self.width((g + 1) % m));
                let better = best.is_none_or(|(c, bw, _)| {
                    let tol = 1e-12 * c.abs().max(1e-12);
                    cost < c - tol || (cost <= c + tol && w > bw)
                });
                if free(t) && better {
                    best = Some((cost, w, t));
                }
            }
        }
        if let Some((_, _, t)) = best {
            return t;
        }
        // No usable estimate (an empty datacenter, or a first token whose
        // rack or node changes every walk): the middle of the widest gap.
        let start = (0..m).max_by_key(|&p| self.width(p)).unwrap_or(0);
        let mut t = match m {
            0 => 0x5555_5555_5555_5555,
            _ => self.tokens[(start + m - 1) % m].wrapping_add(self.width(start) / 2),
        };
        while !free(t) {
            t = t.wrapping_add(1);
        }
        t
    }

    /// The joiner takes a piece of the interval ending at vnode `g + 1`,
    /// right after vnode `g`: the cost at the best split, and its offset.
    fn evaluate(&self, g: usize, targets: &[f64], quota: f64) -> Option<(f64, u64)> {
        let Prediction {
            loads: after,
            change: d,
            width: w,
        } = self.predict(g)?;
        // The residuals to minimise: the others' loads less their targets;
        // the joiner's gain from this token less its quota.
        let j = self.joiner.0 as usize;
        let mut base: Vec<f64> = after.iter().zip(targets).map(|(l, t)| l - t).collect();
        base[j] = after[j] - self.loads[j] - quota;
        let wf = w as f64 / RING;
        // Residuals are base + x·d for the piece x the joiner's token cuts off.
        let num: f64 = base.iter().zip(&d).map(|(b, d)| b * d).sum();
        let den: f64 = d.iter().map(|d| d * d).sum();
        let x = if den > 0.0 { -num / den } else { wf / 2.0 };
        let offset = ((x / wf).clamp(0.0, 1.0) * w as f64) as u64;
        let offset = offset.clamp(1, w - 1);
        let x = offset as f64 / RING;
        let cost = base.iter().zip(&d).map(|(b, d)| (b + x * d).powi(2)).sum();
        Some((cost, offset))
    }

    /// Loads if the joiner's token went right after vnode `g` cutting off
    /// nothing, the change per unit cut off (+1 gains, -1 loses), and the
    /// width of the gap. Exact: the walks that can pass the gap are re-run
    /// on the ring with the token inserted.
    fn predict(&self, g: usize) -> Option<Prediction> {
        let m = self.len();
        let g1 = (g + 1) % m;
        let w = self.width(g1);
        if w < 2 {
            return None;
        }
        // The new ring: old vnodes 0..=g, the joiner, old g+1..; a window
        // of it from `before` vnodes ahead of the gap, long enough for every
        // walk started there to finish (or the whole new ring, rotated).
        let before = self.max_steps.min(m - 1);
        let new_owner = |j: usize| match j.cmp(&(g + 1)) {
            std::cmp::Ordering::Less => self.owners[j],
            std::cmp::Ordering::Equal => self.joiner,
            std::cmp::Ordering::Greater => self.owners[j - 1],
        };
        let start = g + 1 + (m + 1) - before;
        let len = (before + self.max_steps + 3).min(m + 1);
        let window: Vec<NodeIdx> = (0..len).map(|i| new_owner((start + i) % (m + 1))).collect();
        let walk = self.walk(&window);
        let place = |i: usize| -> Vec<NodeIdx> {
            let set = walk.place_counted(i, &self.plan).0;
            set.into_iter().next().map(|d| d.nodes).unwrap_or_default()
        };
        let mut loads = self.loads.clone();
        let mut shift = |nodes: &[NodeIdx], by: f64| {
            for n in nodes {
                loads[n.0 as usize] += by;
            }
        };
        for i in 0..before {
            let p = (g + m + 1 - before + i) % m;
            let new = place(i);
            if new != self.sets[p] {
                let wp = self.width(p) as f64 / RING;
                shift(&new, wp);
                shift(&self.sets[p], -wp);
            }
        }
        let (at_t, at_g1) = (place(before), place((before + 1) % len));
        let wf = w as f64 / RING;
        shift(&at_g1, wf);
        shift(&self.sets[g1], -wf);
        let mut d = vec![0.0; loads.len()];
        at_t.iter().for_each(|n| d[n.0 as usize] += 1.0);
        at_g1.iter().for_each(|n| d[n.0 as usize] -= 1.0);
        Some(Prediction {
            loads,
            change: d,
            width: w,
        })
    }
}

/// What a joiner's token right after vnode `g` gives ([`SubRing::predict`]):
/// the loads if it cut off nothing, the change in each node's load per unit
/// it cuts off, and the width of the gap.
struct Prediction {
    loads: Vec<f64>,
    change: Vec<f64>,
    width: u64,
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::ring::tests_pending::arb_cluster;
    use crate::ring::tests_prop::build_topology;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// What a candidate is scored on is what inserting it really gives.
        #[test]
        fn predicted_loads_are_exact(
            (shape, rfs) in arb_cluster(1..=5),
            rack in 0..4usize,
            placed in prop::collection::vec(any::<u64>(), 0..3),
            frac in 0.0..1.0f64,
        ) {
            let topo = build_topology(&shape, &[("ks", rfs.clone())]);
            let layout = Layout::seed(&topo);
            let mut sub = SubRing::new(&layout, "dc0", &format!("r{rack}"), rfs[0].max(1), 8);
            for t in placed {
                if !sub.tokens.contains(&t) {
                    sub.insert(t);
                }
            }
            for g in 0..sub.len() {
                let Some(Prediction { loads, change: d, width: w }) = sub.predict(g) else { continue };
                let offset = ((w as f64 * frac) as u64).clamp(1, w - 1);
                let mut real = sub.clone();
                real.insert(sub.tokens[g].wrapping_add(offset));
                let x = offset as f64 / RING;
                for (n, got) in real.loads.iter().enumerate() {
                    let want = loads[n] + x * d[n];
                    prop_assert!((got - want).abs() < 1e-9, "gap {} node {}: predicted {} real {}", g, n, want, got);
                }
            }
        }
    }
}
