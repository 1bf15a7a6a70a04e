//! Token allocation: a datacenter grown one allocated join at a time stays
//! balanced, and a join moves about 1/(n+1) of the data, all to the joiner.
//! `cargo test --lib tests_allocate -- --nocapture --include-ignored` prints figures.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::tests_prop::build_topology;
use super::*;
use crate::layout::{Layout, NewNode};

const RING: f64 = 18_446_744_073_709_551_616.0;

/// Per node of `dc` (members, by id), the fraction of the ring it replicates in `ks`.
pub(super) fn dc_loads(ring: &Ring, ks: &str, dc: &str) -> BTreeMap<String, f64> {
    let mut loads: BTreeMap<String, f64> = ring
        .nodes()
        .iter()
        .filter(|n| n.dc == dc)
        .map(|n| (n.id.clone(), 0.0))
        .collect();
    for (range, set) in ring.ranges_with_replicas(ks).unwrap() {
        for &n in set.in_dc(dc) {
            *loads.get_mut(&ring.node(n).id).unwrap() += range.width() as f64 / RING;
        }
    }
    loads
}

/// Standard deviation over mean, in percent.
pub(super) fn cv(loads: &BTreeMap<String, f64>) -> f64 {
    let n = loads.len() as f64;
    let mean = loads.values().sum::<f64>() / n;
    let var = loads.values().map(|l| (l - mean).powi(2)).sum::<f64>() / n;
    var.sqrt() / mean * 100.0
}

fn new_node(id: &str, k: usize) -> NewNode {
    let a = |p: u16| {
        format!("10.251.{}.{}:{p}", k / 200, k % 200)
            .parse()
            .unwrap()
    };
    NewNode {
        id: id.into(),
        client_address: a(7070),
        peer_address: a(7071),
        admin_address: a(7072),
    }
}

/// Joins `id` to `rack` of `dc` with allocated tokens and finishes the join.
pub(super) fn join(l: &Layout, id: &str, dc: &str, rack: &str, vnodes: usize, k: usize) -> Layout {
    let tokens = allocate_tokens(l, dc, rack, vnodes, allocation_rf(l, dc)).unwrap();
    assert_eq!(tokens.len(), vnodes);
    let next = l.begin_join(new_node(id, k), dc, rack, &tokens).unwrap();
    next.finish_join(id).unwrap()
}

/// What a join did to `dc`: the share of replicated data that changed
/// hands, and the share that went to a node other than the joiner.
pub(super) fn moved(before: &Ring, after: &Ring, ks: &str, dc: &str, joiner: &str) -> (f64, f64) {
    let mut bounds: Vec<Token> = before.tokens.iter().chain(&after.tokens).copied().collect();
    bounds.sort_unstable();
    bounds.dedup();
    let ids = |r: &Ring, t: Token| -> BTreeSet<String> {
        r.replicas_for_token(ks, t)
            .unwrap()
            .in_dc(dc)
            .iter()
            .map(|&n| r.node(n).id.clone())
            .collect()
    };
    let (mut total, mut moved, mut elsewhere) = (0.0, 0.0, 0.0);
    for (i, &t) in bounds.iter().enumerate() {
        let w = t.wrapping_sub(bounds[(i + bounds.len() - 1) % bounds.len()]) as f64 / RING;
        let (a, b) = (ids(before, t), ids(after, t));
        total += w * b.len() as f64;
        for n in b.difference(&a) {
            moved += w;
            if n != joiner {
                elsewhere += w;
            }
        }
    }
    (moved / total, elsewhere / total)
}

/// dc0 grown from one seeded node by allocated joins (`racks[i]` = rack of
/// node i, node 0 in r0); dc1 seeded with hashed tokens. Returns the
/// layout before and after the last join, and the joiner's id.
pub(super) fn grow(racks: &[usize], rf: u32, vnodes: u32) -> (Layout, Layout, String) {
    let topo = build_topology(
        &[vec![vec![vnodes]], vec![vec![vnodes; 2]; 2]],
        &[("ks", vec![rf, 2])],
    );
    let mut l = Layout::seed(&topo);
    let mut prev = l.clone();
    let mut id = String::new();
    for (i, &r) in racks.iter().enumerate().skip(1) {
        prev = l.clone();
        id = format!("j{i}");
        l = join(&l, &id, "dc0", &format!("r{r}"), vnodes as usize, i);
    }
    (prev, l, id)
}

/// Racks of `dc0` with their node counts.
fn rack_sizes(racks: &[usize]) -> Vec<usize> {
    let mut sizes = vec![0; racks.iter().max().unwrap() + 1];
    racks.iter().for_each(|&r| sizes[r] += 1);
    sizes
}

#[test]
#[ignore = "prints a table of balance figures; run with --include-ignored --nocapture"]
fn report_balance() {
    let mut rng_state = 0x1234_5678u64;
    let mut next = |n: usize| {
        rng_state = rng_state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (rng_state >> 33) as usize % n
    };
    for vnodes in [16, 64] {
        for _ in 0..24 {
            let k = 3 + next(10);
            let r = 1 + next(4);
            let balanced = next(2) == 0;
            let racks: Vec<usize> = (0..k)
                .map(|i| if balanced || i < r { i % r } else { next(r) })
                .collect();
            let rf = 1 + next(3.min(k)) as u32;
            let (before, after, id) = grow(&racks, rf, vnodes);
            let (rb, ra) = (Ring::from_layout(&before), Ring::from_layout(&after));
            let c = cv(&dc_loads(&ra, "ks", "dc0"));
            let (m, other) = moved(&rb, &ra, "ks", "dc0", &id);
            println!(
                "vnodes {vnodes:3} nodes {k:2} rf {rf} racks {:?}: stddev {c:5.2}% of mean; moved {:.4} (ideal {:.4}), to others {:.4}",
                rack_sizes(&racks), m, 1.0 / k as f64, other
            );
        }
    }
    // Today's hashed seed (10 nodes x 256 vnodes, 5 racks, rf 1), then one allocated join.
    let topo = build_topology(&[vec![vec![256; 2]; 5]], &[("ks", vec![1])]);
    let before = Layout::seed(&topo);
    let after = join(&before, "j", "dc0", "r2", 256, 0);
    let (rb, ra) = (Ring::from_layout(&before), Ring::from_layout(&after));
    let (m, _) = moved(&rb, &ra, "ks", "dc0", "j");
    println!(
        "hashed seed 10 x 256 vnodes rf 1: stddev {:.2}% of mean before, {:.2}% after an allocated join; moved {m:.4} (ideal {:.4})",
        cv(&dc_loads(&rb, "ks", "dc0")),
        cv(&dc_loads(&ra, "ks", "dc0")),
        1.0 / 11.0
    );
}

/// dc0 nodes 3..=12 over 1..=4 racks (node 0 in r0), 16 or 32 vnodes.
fn arb_growth() -> impl Strategy<Value = (Vec<usize>, u32)> {
    (
        3..=12usize,
        1..=4usize,
        prop::sample::select(vec![16u32, 32]),
    )
        .prop_flat_map(|(k, r, v)| {
            (prop::collection::vec(0..r, k), Just(v)).prop_map(|(mut racks, v)| {
                racks[0] = 0;
                (racks, v)
            })
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// rf 1: every join keeps dc0 within 5% and moves its share, all to the joiner.
    #[test]
    fn rf1_joins_stay_balanced((racks, vnodes) in arb_growth()) {
        let (before, after, id) = grow(&racks, 1, vnodes);
        let (rb, ra) = (Ring::from_layout(&before), Ring::from_layout(&after));
        let c = cv(&dc_loads(&ra, "ks", "dc0"));
        prop_assert!(c <= 5.0, "stddev {:.2}% of mean for racks {:?}", c, rack_sizes(&racks));
        let (m, other) = moved(&rb, &ra, "ks", "dc0", &id);
        let ideal = 1.0 / racks.len() as f64;
        prop_assert!((m - ideal).abs() <= 0.2 * ideal, "moved {} vs ideal {}", m, ideal);
        prop_assert_eq!(other, 0.0);
        // Other datacenters are untouched by a dc0 join.
        prop_assert_eq!(moved(&rb, &ra, "ks", "dc1", &id), (0.0, 0.0));
    }
}

/// rf ≥ 2 where balance is reachable (one rack, or equal racks): within 5%.
/// Where rf ≥ racks and racks differ in size it is not (a rack holds a full
/// copy, split among however many nodes it has); see `report_balance`.
#[test]
fn replicated_joins_stay_balanced_where_reachable() {
    let cases: [(&[usize], u32, u32); 6] = [
        (&[0, 1, 0, 1, 0, 1, 0, 1], 2, 16),
        (&[0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2], 3, 32),
        (&[0; 7], 3, 16),
        (&[0; 10], 2, 16),
        (&[0, 1, 2, 3, 0, 1, 2, 3], 2, 16),
        (&[0, 1, 2, 0, 1, 2], 2, 32),
    ];
    for (racks, rf, vnodes) in cases {
        let (_, after, _) = grow(racks, rf, vnodes);
        let c = cv(&dc_loads(&Ring::from_layout(&after), "ks", "dc0"));
        assert!(
            c <= 5.0,
            "racks {:?} rf {rf}: stddev {c:.2}% of mean",
            rack_sizes(racks)
        );
    }
}

#[test]
fn allocation_refuses_bad_requests_and_avoids_taken_tokens() {
    let l = Layout::seed(&crate::topology::Topology::dev());
    assert_eq!(
        allocate_tokens(&l, "dc9", "r1", 8, 1),
        Err(AllocateError::UnknownDatacenter("dc9".into()))
    );
    assert_eq!(
        allocate_tokens(&l, "dc1", "r1", 0, 1),
        Err(AllocateError::TokenCount(0))
    );
    let t = allocate_tokens(&l, "dc1", "r1", 64, 3).unwrap();
    assert!(t.windows(2).all(|w| w[0] < w[1]));
    let taken: BTreeSet<Token> = l.nodes().flat_map(|(_, _, n)| n.tokens.clone()).collect();
    assert!(t.iter().all(|x| !taken.contains(x)));
    assert_eq!(
        t,
        allocate_tokens(&l, "dc1", "r1", 64, 3).unwrap(),
        "deterministic"
    );
}
