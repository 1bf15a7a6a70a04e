//! Who to gossip with this round. Pure: takes the candidates' verdicts and
//! a random source, returns indices; must not look at φ, clocks or sockets.
//!
//! Policy, for fanout `f`:
//! - `f ≥ 2`: one live peer in our datacenter and one in another (so news
//!   crosses the WAN every round from every node), then `f − 2` more live
//!   peers at random;
//! - `f = 1`: one live peer uniformly at random, whatever its datacenter;
//! - plus, as Cassandra does, one peer believed down with probability
//!   `down / (live + 1)`, so a recovery is noticed even when nobody is live
//!   to relay it (with no live peer at all the probe is certain).

use rand::seq::IndexedRandom;
use rand::Rng;

/// A peer (never ourselves) and what we currently believe about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// Index in the membership table.
    pub idx: usize,
    /// Whether it shares our datacenter.
    pub same_dc: bool,
    /// Whether we believe it is up.
    pub up: bool,
}

/// The indices to gossip with this round; no duplicates, live peers first.
pub fn choose(candidates: &[Candidate], fanout: usize, rng: &mut impl Rng) -> Vec<usize> {
    let live: Vec<&Candidate> = candidates.iter().filter(|c| c.up).collect();
    let down: Vec<usize> = candidates.iter().filter(|c| !c.up).map(|c| c.idx).collect();
    let mut picked: Vec<usize> = Vec::with_capacity(fanout + 1);

    if fanout >= 2 {
        for same_dc in [true, false] {
            let side: Vec<usize> = live
                .iter()
                .filter(|c| c.same_dc == same_dc)
                .map(|c| c.idx)
                .collect();
            if let Some(&i) = side.choose(rng) {
                picked.push(i);
            }
        }
    }
    let rest: Vec<usize> = live
        .iter()
        .map(|c| c.idx)
        .filter(|i| !picked.contains(i))
        .collect();
    let more = fanout.saturating_sub(picked.len());
    picked.extend(rest.choose_multiple(rng, more).copied());

    if !down.is_empty() {
        let p = (down.len() as f64 / (live.len() + 1) as f64).min(1.0);
        if rng.random_bool(p) {
            if let Some(&i) = down.choose(rng) {
                picked.push(i);
            }
        }
    }
    picked
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn cands(local: usize, remote: usize, down: usize) -> Vec<Candidate> {
        let mut v = Vec::new();
        for i in 0..local {
            v.push(Candidate {
                idx: i,
                same_dc: true,
                up: true,
            });
        }
        for i in 0..remote {
            v.push(Candidate {
                idx: 100 + i,
                same_dc: false,
                up: true,
            });
        }
        for i in 0..down {
            v.push(Candidate {
                idx: 200 + i,
                same_dc: i % 2 == 0,
                up: false,
            });
        }
        v
    }

    #[test]
    fn fanout_two_takes_one_local_and_one_remote() {
        let mut rng = StdRng::seed_from_u64(1);
        let c = cands(5, 5, 0);
        for _ in 0..1000 {
            let p = choose(&c, 2, &mut rng);
            assert_eq!(p.len(), 2);
            assert!(p[0] < 100 && (100..200).contains(&p[1]), "{p:?}");
        }
    }

    #[test]
    fn fanout_is_filled_without_duplicates() {
        let mut rng = StdRng::seed_from_u64(2);
        let c = cands(1, 0, 0);
        assert_eq!(choose(&c, 3, &mut rng), vec![0], "only one live peer");
        let c = cands(3, 3, 0);
        for _ in 0..1000 {
            let mut p = choose(&c, 4, &mut rng);
            assert_eq!(p.len(), 4);
            p.sort_unstable();
            p.dedup();
            assert_eq!(p.len(), 4);
        }
    }

    #[test]
    fn down_peers_are_probed_sometimes_and_always_when_alone() {
        let mut rng = StdRng::seed_from_u64(3);
        let c = cands(0, 0, 3);
        for _ in 0..100 {
            let p = choose(&c, 2, &mut rng);
            assert_eq!(p.len(), 1);
            assert!(p[0] >= 200);
        }
        let c = cands(4, 4, 1); // probe probability 1/9
        let probes = (0..9000)
            .filter(|_| choose(&c, 2, &mut rng).iter().any(|&i| i >= 200))
            .count();
        assert!((700..1300).contains(&probes), "{probes}");
    }
}
