//! A deterministic, event-driven cluster of [`Membership`] tables: each node
//! gossips on its own timer, digests travel with per-link delays, replies
//! travel back. Time is simulated milliseconds; a seed replays a run.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::peers;
use crate::membership::{Membership, MembershipConfig, Transition};
use crate::proto::v1::internode::GossipDigest;

/// One-way delay model, in ms.
#[derive(Clone, Copy, Debug)]
pub struct Delays {
    /// Uniform delay range within a datacenter.
    pub local: (u64, u64),
    /// Uniform delay range between datacenters.
    pub remote: (u64, u64),
    /// Uniform extra lateness of each gossip timer tick.
    pub tick_jitter: (u64, u64),
}

enum Event {
    Tick(usize),
    Deliver {
        to: usize,
        digest: GossipDigest,
        /// `Some(initiator)` for a request (answer it), `None` for a reply.
        reply_to: Option<usize>,
    },
}

/// The simulated cluster.
pub struct Sim {
    pub nodes: Vec<Membership>,
    pub alive: Vec<bool>,
    pub now: u64,
    /// Every verdict change, as (time, observer, transition).
    pub transitions: Vec<(u64, usize, Transition)>,
    /// Highest φ any live observer saw for a live peer, (local, remote).
    pub max_phi: (f64, f64),
    dcs: Vec<String>,
    interval: u64,
    delays: Delays,
    rng: StdRng,
    seq: u64,
    /// Pending events by (time, sequence): ties resolve in schedule order.
    queue: BTreeMap<(u64, u64), Event>,
}

impl Sim {
    /// `n` nodes over `dcs` datacenters, timers at random phases.
    pub fn new(n: usize, dcs: usize, config: MembershipConfig, delays: Delays, seed: u64) -> Self {
        let infos = peers(n, dcs);
        let interval = config.gossip_interval_ms;
        let nodes = infos
            .iter()
            .enumerate()
            .map(|(i, p)| {
                Membership::new(config.clone(), infos.clone(), &p.id, 1 + i as u64, 0).unwrap()
            })
            .collect();
        let mut sim = Self {
            nodes,
            alive: vec![true; n],
            now: 0,
            transitions: Vec::new(),
            max_phi: (0.0, 0.0),
            dcs: infos.iter().map(|p| p.dc.clone()).collect(),
            interval,
            delays,
            rng: StdRng::seed_from_u64(seed),
            seq: 0,
            queue: BTreeMap::new(),
        };
        for i in 0..n {
            let phase = sim.rng.random_range(0..interval);
            sim.schedule(phase, Event::Tick(i));
        }
        sim
    }

    /// Runs every event up to and including time `until`.
    pub fn run_until(&mut self, until: u64) {
        while let Some(entry) = self.queue.first_entry() {
            if entry.key().0 > until {
                break;
            }
            let ((at, _), event) = entry.remove_entry();
            self.now = at;
            self.handle(event);
        }
        self.now = until;
    }

    /// Stops node `i`: it neither gossips nor answers from now on.
    pub fn kill(&mut self, i: usize) {
        self.alive[i] = false;
    }

    pub fn same_dc(&self, a: usize, b: usize) -> bool {
        self.dcs[a] == self.dcs[b]
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Tick(i) => {
                let jitter = self.range(self.delays.tick_jitter);
                self.schedule(self.interval + jitter, Event::Tick(i));
                if !self.alive[i] {
                    return;
                }
                self.observe(i);
                let now = self.now;
                for t in self.nodes[i].tick(now) {
                    self.transitions.push((now, i, t));
                }
                let partners = self.nodes[i].plan_round(now, &mut self.rng);
                let digest = self.nodes[i].digest();
                for p in partners {
                    let delay = self.delay(i, p);
                    let digest = digest.clone();
                    self.schedule(
                        delay,
                        Event::Deliver {
                            to: p,
                            digest,
                            reply_to: Some(i),
                        },
                    );
                }
            }
            Event::Deliver {
                to,
                digest,
                reply_to,
            } => {
                if !self.alive[to] {
                    return;
                }
                // φ peaks just before news arrives: look then.
                self.observe(to);
                self.nodes[to].apply_digest(&digest, self.now);
                if let Some(from) = reply_to {
                    let reply = self.nodes[to].digest();
                    let delay = self.delay(to, from);
                    self.schedule(
                        delay,
                        Event::Deliver {
                            to: from,
                            digest: reply,
                            reply_to: None,
                        },
                    );
                }
            }
        }
    }

    /// Records the highest φ observer `i` holds for any live peer.
    fn observe(&mut self, i: usize) {
        for j in 0..self.nodes.len() {
            if j == i || !self.alive[j] {
                continue;
            }
            let phi = self.nodes[i].phi(j, self.now);
            let slot = if self.same_dc(i, j) {
                &mut self.max_phi.0
            } else {
                &mut self.max_phi.1
            };
            *slot = slot.max(phi);
        }
    }

    fn delay(&mut self, a: usize, b: usize) -> u64 {
        let range = if self.same_dc(a, b) {
            self.delays.local
        } else {
            self.delays.remote
        };
        self.range(range)
    }

    fn range(&mut self, (lo, hi): (u64, u64)) -> u64 {
        self.rng.random_range(lo..=hi)
    }

    fn schedule(&mut self, after: u64, event: Event) {
        self.seq += 1;
        self.queue.insert((self.now + after, self.seq), event);
    }
}
