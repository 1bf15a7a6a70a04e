//! The membership table: what this node believes about every node in the
//! topology, and whether each is up.
//!
//! Owns, per node, the highest (generation, heartbeat) seen, the local time
//! that heartbeat last advanced, the φ detector, and the last published
//! up/down verdict. Sans-I/O: every call takes `now` (monotonic ms) and never
//! reads a clock, sleeps or sends; [`Gossiper`](super::Gossiper) drives it.
//! Must not pick gossip peers (see `select.rs`) or talk to the network.
//!
//! Merge rule (Cassandra's): per node keep the higher (generation,
//! heartbeat). A higher generation is a restart and starts a fresh detector;
//! a higher heartbeat within a generation is one arrival for the detector.

use std::collections::HashMap;

use rand::Rng;
use tracing::{info, warn};

use super::config::MembershipConfig;
use super::observe;
use super::phi::{phi_for_silence, PhiDetector, PhiParams};
pub use super::rows::{MembershipError, MergeOutcome, PeerInfo, PeerStatus, Transition};
use super::select::{self, Candidate};
use crate::proto::v1::internode::{GossipDigest, GossipEntry};

#[derive(Debug)]
struct Node {
    info: PeerInfo,
    same_dc: bool,
    /// 0 until first heard of.
    generation: u64,
    heartbeat: u64,
    /// The feature bits of its build ([`super::features`]), from the entry
    /// last adopted (0 from a build before them).
    features: u64,
    /// It refuses writes ([`Membership::set_ready`]), from the entry last
    /// adopted (false, ready, from a build before the bit).
    not_ready: bool,
    detector: PhiDetector,
    /// The verdict last published by `evaluate`.
    up: bool,
}

/// The membership table. See the module docs.
#[derive(Debug)]
pub struct Membership {
    config: MembershipConfig,
    params: PhiParams,
    nodes: Vec<Node>,
    by_id: HashMap<String, usize>,
    me: usize,
    /// Never-heard nodes are judged as if their first heartbeat came at this
    /// time: our start, pushed forward by our own pauses.
    unknown_since_ms: u64,
    /// When `tick` last ran, to notice our own pauses.
    last_tick_ms: u64,
}

impl Membership {
    /// A table for `nodes` (the whole topology, ourselves included) as seen
    /// by `self_id`, whose `generation` is its start time in ms (persisted by
    /// the caller so it grows across restarts).
    pub fn new(
        config: MembershipConfig,
        nodes: impl IntoIterator<Item = PeerInfo>,
        self_id: &str,
        generation: u64,
        now_ms: u64,
    ) -> Result<Self, MembershipError> {
        config.validate()?;
        if generation == 0 {
            return Err(MembershipError::ZeroGeneration);
        }
        let infos: Vec<PeerInfo> = nodes.into_iter().collect();
        let mut by_id = HashMap::with_capacity(infos.len());
        for (i, info) in infos.iter().enumerate() {
            if by_id.insert(info.id.clone(), i).is_some() {
                return Err(MembershipError::DuplicateNode(info.id.clone()));
            }
        }
        let me = *by_id
            .get(self_id)
            .ok_or_else(|| MembershipError::SelfNotInTopology(self_id.to_owned()))?;
        let my_dc = infos[me].dc.clone();
        let params = config.phi_params();
        let nodes = infos
            .into_iter()
            .map(|info| Node {
                same_dc: info.dc == my_dc,
                info,
                generation: 0,
                heartbeat: 0,
                features: 0,
                not_ready: false,
                detector: PhiDetector::new(params),
                up: true,
            })
            .collect::<Vec<_>>();
        let mut table = Self {
            config,
            params,
            nodes,
            by_id,
            me,
            unknown_since_ms: now_ms,
            last_tick_ms: now_ms,
        };
        table.nodes[me].generation = generation;
        table.nodes[me].features = super::features::THIS_BUILD;
        Ok(table)
    }

    /// The knobs in force.
    pub fn config(&self) -> &MembershipConfig {
        &self.config
    }

    /// Our own index.
    pub fn self_index(&self) -> usize {
        self.me
    }

    /// Number of nodes in the table, ourselves included.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the table is empty (never: we are in it).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The index of `id`, if it is in the topology.
    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    /// Who node `idx` is. Panics if out of range.
    pub fn peer(&self, idx: usize) -> &PeerInfo {
        &self.nodes[idx].info
    }

    /// The (generation, heartbeat) we hold for `idx`.
    pub fn version(&self, idx: usize) -> (u64, u64) {
        let n = &self.nodes[idx];
        (n.generation, n.heartbeat)
    }

    /// One gossip round began: bump our heartbeat and re-evaluate everyone.
    /// If this tick is more than `max_local_pause_ms` after the previous one,
    /// we were paused: everybody's silence is forgiven (Cassandra does the
    /// same), otherwise a GC pause would convict the whole cluster.
    pub fn tick(&mut self, now_ms: u64) -> Vec<Transition> {
        let late = now_ms.saturating_sub(self.last_tick_ms);
        if late > self.config.max_local_pause_ms {
            warn!(
                paused_ms = late,
                "membership: local pause, forgiving peers' silence"
            );
            for n in &mut self.nodes {
                n.detector.rebase(now_ms);
            }
            self.unknown_since_ms = self.unknown_since_ms.max(now_ms);
        }
        self.last_tick_ms = self.last_tick_ms.max(now_ms);
        self.nodes[self.me].heartbeat += 1;
        self.evaluate(now_ms)
    }

    /// Merges a peer's digest: per node, keep the higher (generation,
    /// heartbeat). Entries about ourselves are never adopted.
    pub fn apply_digest(&mut self, digest: &GossipDigest, now_ms: u64) -> MergeOutcome {
        let mut out = MergeOutcome::default();
        for e in &digest.entries {
            let Some(i) = self.index_of(&e.node_id) else {
                out.unknown += 1;
                continue;
            };
            if i == self.me {
                let mine = self.nodes[i].generation;
                if e.generation > mine {
                    warn!(from = %digest.from, theirs = e.generation, mine,
                        "membership: a newer generation of our own id is gossiped; duplicate node id or clock went back?");
                }
                continue;
            }
            let n = &mut self.nodes[i];
            if e.generation > n.generation {
                if n.generation != 0 {
                    info!(node = %n.info.id, old = n.generation, new = e.generation, "membership: node restarted");
                }
                n.generation = e.generation;
                n.heartbeat = e.heartbeat;
                n.features = e.features;
                n.not_ready = e.not_ready;
                n.detector = PhiDetector::new(self.params);
                n.detector.heartbeat(now_ms);
                out.restarted += 1;
            } else if e.generation == n.generation && e.heartbeat > n.heartbeat {
                n.heartbeat = e.heartbeat;
                n.features = e.features;
                n.not_ready = e.not_ready;
                n.detector.heartbeat(now_ms);
                out.advanced += 1;
            }
        }
        out
    }

    /// Our full digest: every node we have heard of, ourselves included, in
    /// topology order (deterministic on the wire).
    pub fn digest(&self) -> GossipDigest {
        GossipDigest {
            from: self.nodes[self.me].info.id.clone(),
            entries: self
                .nodes
                .iter()
                .filter(|n| n.generation != 0)
                .map(|n| GossipEntry {
                    node_id: n.info.id.clone(),
                    generation: n.generation,
                    heartbeat: n.heartbeat,
                    features: n.features,
                    not_ready: n.not_ready,
                })
                .collect(),
            // Stamped by the node (see `view::sync`), not by membership.
            ..GossipDigest::default()
        }
    }

    /// φ for node `idx` at `now`: from its detector, or for a never-heard
    /// node as if it was heard once when we started (see
    /// [`MembershipConfig::unknown_grace_ms`]). 0 for ourselves.
    pub fn phi(&self, idx: usize, now_ms: u64) -> f64 {
        if idx == self.me {
            return 0.0;
        }
        let n = &self.nodes[idx];
        n.detector.phi(now_ms).unwrap_or_else(|| {
            phi_for_silence(
                now_ms.saturating_sub(self.unknown_since_ms),
                self.params.bootstrap_interval_ms as f64,
                self.params.acceptable_pause_ms,
            )
        })
    }

    /// Whether node `idx` is up at `now`: φ at most the local-DC or
    /// remote-DC threshold. Computed fresh, so it may lead the published
    /// verdict (updated each [`tick`](Self::tick)) by up to one round.
    pub fn is_up(&self, idx: usize, now_ms: u64) -> bool {
        self.phi(idx, now_ms) <= self.config.threshold(self.nodes[idx].same_dc)
    }

    /// The feature bits node `id` advertised with the heartbeat last
    /// adopted; `None` before any was heard (or outside the topology).
    pub fn features(&self, id: &str) -> Option<u64> {
        let n = &self.nodes[self.index_of(id)?];
        (n.generation != 0).then_some(n.features)
    }

    /// Whether node `id` takes writes, as its entry last adopted says
    /// (ourselves: as [`set_ready`](Self::set_ready) last said). A node
    /// never heard, outside the topology or on a build before the bit
    /// counts as ready: whether it is up is [`is_up`](Self::is_up)'s.
    pub fn is_ready(&self, id: &str) -> bool {
        self.index_of(id).is_none_or(|i| !self.nodes[i].not_ready)
    }

    /// Sets whether this node takes writes, gossiped with its heartbeat
    /// from the next digest on.
    pub fn set_ready(&mut self, ready: bool) {
        self.nodes[self.me].not_ready = !ready;
    }

    /// [`is_up`](Self::is_up) by id; nodes outside the topology are down.
    pub fn is_up_id(&self, id: &str, now_ms: u64) -> bool {
        self.index_of(id).is_some_and(|i| self.is_up(i, now_ms))
    }

    /// Every node, ourselves included, in topology order.
    pub fn snapshot(&self, now_ms: u64) -> Vec<PeerStatus> {
        (0..self.nodes.len())
            .map(|i| {
                let n = &self.nodes[i];
                PeerStatus {
                    id: n.info.id.clone(),
                    dc: n.info.dc.clone(),
                    rack: n.info.rack.clone(),
                    up: self.is_up(i, now_ms),
                    phi: self.phi(i, now_ms),
                    heartbeat: n.heartbeat,
                    generation: n.generation,
                }
            })
            .collect()
    }

    /// Recomputes every verdict, publishes the gauges, and counts and logs
    /// the changes since the last evaluation.
    pub fn evaluate(&mut self, now_ms: u64) -> Vec<Transition> {
        let mut changes = Vec::new();
        for i in 0..self.nodes.len() {
            let phi = self.phi(i, now_ms);
            let up = self.is_up(i, now_ms);
            let n = &mut self.nodes[i];
            observe::publish(&n.info.id, up, phi);
            if up != n.up {
                n.up = up;
                observe::transition(&n.info.id, up, phi);
                changes.push(Transition {
                    node: n.info.id.clone(),
                    up,
                    phi,
                });
            }
        }
        changes
    }

    /// Follows a new layout: `infos` become the table (ourselves kept even
    /// if absent); nodes already known keep their state, new ones start
    /// never-heard, and nodes no longer listed are forgotten.
    pub fn set_members(&mut self, infos: Vec<PeerInfo>) {
        let my_id = self.nodes[self.me].info.id.clone();
        let mut old: HashMap<String, Node> = self
            .nodes
            .drain(..)
            .map(|n| (n.info.id.clone(), n))
            .collect();
        let mut me = old.remove(&my_id);
        let my_dc = me
            .as_ref()
            .expect("we are in our own table")
            .info
            .dc
            .clone();
        let mut nodes = Vec::with_capacity(infos.len() + 1);
        for info in infos {
            if info.id == my_id {
                nodes.extend(me.take());
                continue;
            }
            let node = old.remove(&info.id).unwrap_or_else(|| Node {
                same_dc: info.dc == my_dc,
                info: info.clone(),
                generation: 0,
                heartbeat: 0,
                features: 0,
                not_ready: false,
                detector: PhiDetector::new(self.params),
                up: true,
            });
            nodes.push(node);
        }
        nodes.extend(me);
        self.by_id = (nodes.iter().enumerate())
            .map(|(i, n)| (n.info.id.clone(), i))
            .collect();
        self.me = self.by_id[&my_id];
        self.nodes = nodes;
    }

    /// Picks this round's gossip partners by the verdicts at `now`: see
    /// `select.rs` for the policy.
    pub fn plan_round(&self, now_ms: u64, rng: &mut impl Rng) -> Vec<usize> {
        let candidates: Vec<Candidate> = (0..self.nodes.len())
            .filter(|&i| i != self.me)
            .map(|i| Candidate {
                idx: i,
                same_dc: self.nodes[i].same_dc,
                up: self.is_up(i, now_ms),
            })
            .collect();
        select::choose(&candidates, self.config.fanout, rng)
    }
}
