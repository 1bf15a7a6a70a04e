//! Distribution tests: how evenly 256 random vnodes spread keys, and how
//! few keys move when a node joins. Run with `--nocapture` to see figures.

use super::tests_prop::build_topology;
use super::*;

/// Keys `key-0`, `key-1`, … as the client would send them.
fn keys(n: usize) -> impl Iterator<Item = Vec<u8>> {
    (0..n).map(|i| format!("key-{i}").into_bytes())
}

fn primary<'a>(ring: &'a Ring, ks: &str, key: &[u8]) -> &'a str {
    let set = ring.replicas(ks, key).unwrap();
    &ring.node(set.per_dc[0].nodes[0]).id
}

#[test]
fn ten_nodes_of_256_vnodes_share_keys_evenly() {
    // One DC, 10 nodes over 5 racks, rf 1: the first replica is the owner.
    let topo = build_topology(&[vec![vec![256; 2]; 5]], &[("one", vec![1])]);
    let ring = Ring::new(&topo);
    let mut counts = vec![0u64; ring.nodes().len()];
    const N: usize = 1_000_000;
    for key in keys(N) {
        let set = ring.replicas("one", &key).unwrap();
        counts[set.per_dc[0].nodes[0].0 as usize] += 1;
    }
    let mean = N as f64 / counts.len() as f64;
    let var = counts
        .iter()
        .map(|&c| (c as f64 - mean).powi(2))
        .sum::<f64>()
        / counts.len() as f64;
    let cv = var.sqrt() / mean * 100.0;
    let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
    println!("balance: 10 nodes x 256 vnodes, {N} keys: stddev {cv:.2}% of mean; min {min}, max {max}, mean {mean:.0}");
    assert!(
        cv <= 5.0,
        "keys-per-node stddev {cv:.2}% of mean exceeds 5%: {counts:?}"
    );
}

#[test]
fn adding_a_node_moves_about_one_in_n_plus_one_keys_and_only_to_it() {
    // 10 nodes over 3 racks; the new node joins rack 1 (so indexes shift: compare ids).
    let before = build_topology(
        &[vec![vec![256; 4], vec![256; 3], vec![256; 3]]],
        &[("one", vec![1]), ("three", vec![3])],
    );
    let after = build_topology(
        &[vec![vec![256; 4], vec![256; 4], vec![256; 3]]],
        &[("one", vec![1]), ("three", vec![3])],
    );
    let (old, new) = (Ring::new(&before), Ring::new(&after));
    let joined = "d0-r1-n3";
    assert!(old.node_by_id(joined).is_none() && new.node_by_id(joined).is_some());
    let ids = |ring: &Ring, set: &ReplicaSet| {
        let mut v: Vec<String> = set.all().map(|n| ring.node(n).id.clone()).collect();
        v.sort();
        v
    };
    const N: usize = 200_000;
    let (mut moved, mut changed3) = (0usize, 0usize);
    for key in keys(N) {
        let (a, b) = (primary(&old, "one", &key), primary(&new, "one", &key));
        if a != b {
            moved += 1;
            assert_eq!(
                b,
                joined,
                "key {:?} moved from {a} to {b}, not to the new node",
                String::from_utf8_lossy(&key)
            );
        }
        let (a3, b3) = (
            ids(&old, old.replicas("three", &key).unwrap()),
            ids(&new, new.replicas("three", &key).unwrap()),
        );
        if a3 != b3 {
            changed3 += 1;
            assert!(
                b3.iter().any(|id| id == joined),
                "rf3 set of {key:?} changed without the new node: {a3:?} -> {b3:?}"
            );
        }
    }
    let frac = moved as f64 / N as f64;
    let ideal = 1.0 / 11.0;
    println!("movement: 10 -> 11 nodes, {N} keys: {:.2}% changed primary (ideal 1/11 = {:.2}%); rf 3 sets changed for {:.2}%",
        frac * 100.0, ideal * 100.0, changed3 as f64 / N as f64 * 100.0);
    assert!(
        frac <= 1.5 * ideal && frac >= 0.5 * ideal,
        "moved fraction {frac:.4} far from 1/11"
    );
}
