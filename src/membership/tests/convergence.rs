//! Epidemic convergence: N [`Gossiper`]s exchanging digests in memory
//! (`begin_round` → peer's `handle_digest` → `apply_reply`) learn every
//! heartbeat within O(log N) rounds.

use std::sync::Arc;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::node_infos;
use crate::membership::{Gossiper, ManualClock, MembershipConfig};

struct Cluster {
    gossipers: Vec<Gossiper>,
    clock: Arc<ManualClock>,
    rng: StdRng,
}

impl Cluster {
    fn new(n: usize, fanout: usize, seed: u64) -> Self {
        let nodes = node_infos(n, 2);
        let clock = Arc::new(ManualClock::new(0));
        let cfg = MembershipConfig {
            fanout,
            ..MembershipConfig::default()
        };
        let gossipers = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                Gossiper::new(
                    cfg.clone(),
                    nodes.clone(),
                    &n.id,
                    1 + i as u64,
                    clock.clone(),
                )
                .unwrap()
            })
            .collect();
        Self {
            gossipers,
            clock,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// One synchronous round in three phases, so news moves at most two
    /// hops per round (pushed to a peer, then pulled from it):
    /// 1. every node starts its round (heartbeat += 1, digest taken);
    /// 2. the requests are handled in random order, each answered with the
    ///    handler's merged view;
    /// 3. every initiator merges its replies.
    fn round(&mut self) {
        self.clock.advance(1000);
        let mut sends = Vec::new();
        for (i, g) in self.gossipers.iter().enumerate() {
            for (peer, digest) in g.begin_round(&mut self.rng) {
                sends.push((i, peer.idx.0 as usize, digest));
            }
        }
        sends.shuffle(&mut self.rng);
        let replies: Vec<_> = sends
            .into_iter()
            .map(|(from, to, digest)| (from, self.gossipers[to].handle_digest(digest)))
            .collect();
        for (from, reply) in replies {
            self.gossipers[from].apply_reply(&reply);
        }
    }

    /// For each observer, the heartbeat it holds for every node (by index).
    fn views(&self) -> Vec<Vec<u64>> {
        self.gossipers
            .iter()
            .map(|g| {
                let mut view = vec![0; self.gossipers.len()];
                for e in g.digest().entries {
                    view[e.node_id[1..].parse::<usize>().unwrap()] = e.heartbeat;
                }
                view
            })
            .collect()
    }

    /// Rounds until every node holds at least `target[n]` for every `n`.
    fn rounds_to_learn(&mut self, target: &[u64], cap: usize) -> usize {
        for r in 1..=cap {
            self.round();
            let views = self.views();
            if views
                .iter()
                .all(|v| v.iter().zip(target).all(|(h, t)| h >= t))
            {
                return r;
            }
        }
        panic!("no convergence within {cap} rounds");
    }

    /// Cold start (nobody has heard of anybody) and then, after a few
    /// rounds, the heartbeats the next round will carry: rounds until
    /// everyone holds them, counting the round that creates them.
    fn measure(n: usize, fanout: usize, seed: u64, cap: usize) -> (usize, usize) {
        let mut c = Self::new(n, fanout, seed);
        let cold = c.rounds_to_learn(&vec![1; n], cap);
        for _ in 0..5 {
            c.round();
        }
        let views = c.views();
        let next: Vec<u64> = (0..n).map(|i| views[i][i] + 1).collect();
        let warm = c.rounds_to_learn(&next, cap);
        (cold, warm)
    }
}

fn bound(n: usize) -> usize {
    (3.0 * (n as f64).log2() + 3.0).floor() as usize
}

#[test]
fn every_node_learns_every_heartbeat_in_log_n_rounds() {
    for (n, seeds) in [(20, 20), (200, 3)] {
        for fanout in [1, 2] {
            let measured: Vec<_> = (0..seeds)
                .map(|seed| Cluster::measure(n, fanout, seed, bound(n) + 10))
                .collect();
            let worst = measured.iter().map(|&(c, w)| c.max(w)).max().unwrap();
            println!(
                "N={n} fanout {fanout}: (cold, warm) rounds per seed {measured:?}; worst {worst}, bound {}",
                bound(n)
            );
            assert!(
                worst <= bound(n),
                "N={n} fanout {fanout}: {worst} rounds > {}",
                bound(n)
            );
        }
    }
}
