//! Which replicas a read asks, and when it asks one more: the pure decision
//! behind the read path (after Cassandra's `ReplicaPlans.forRead` and
//! `AbstractReadExecutor`).
//!
//! The first wave asks exactly as many live replicas as the level needs
//! (`blockFor`), nearest first: the candidates come in proximity order
//! (the coordinator itself when it is a replica, since a local read costs
//! no RPC, then its datacenter, then the others), so LOCAL_* and count
//! levels read the local datacenter first. EACH_QUORUM asks a quorum in
//! each datacenter; ALL asks every replica. A replica believed down is
//! never asked. Afterwards the read asks one more replica each time the
//! asked ones were slower than the speculative-retry delay ([`ReadTargets::speculate`]),
//! and as many more as the level needs when asked replicas failed
//! ([`ReadTargets::replace_failed`]); never one outside the replica set or
//! twice the same.
//!
//! Owns: the choice of replicas. Must not: know about time, sockets or the
//! engine (the read path waits and sends), or compute the level's
//! requirement (that is `consistency`).

use super::consistency::{AckCounts, Requirement};
use crate::topology::NodeIdx;
use std::collections::BTreeMap;

/// A replica of the key as the read sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Candidate {
    pub node: NodeIdx,
    pub dc: String,
    /// Believed alive (gossip and the failure detector).
    pub up: bool,
}

/// The replicas of one read: those asked so far and those that remain.
#[derive(Debug)]
pub(super) struct ReadTargets {
    req: Requirement,
    /// The live replicas, nearest first.
    live: Vec<Candidate>,
    asked: Vec<NodeIdx>,
}

impl ReadTargets {
    /// The replicas of a key for `req`, in proximity order (nearest first).
    pub fn new(req: Requirement, by_proximity: Vec<Candidate>) -> Self {
        ReadTargets {
            req,
            live: by_proximity.into_iter().filter(|c| c.up).collect(),
            asked: Vec::new(),
        }
    }

    /// The first wave: the nearest live replicas, as many as the level
    /// needs in each datacenter it counts (fewer only when fewer are alive).
    pub fn first_wave(&mut self) -> Vec<Candidate> {
        let picked: Vec<Candidate> = match &self.req {
            Requirement::Total { count } => self.nearest(None, *count),
            Requirement::Local { dc, count } => self.nearest(Some(dc), *count),
            Requirement::EachDc { per_dc } => per_dc
                .iter()
                .flat_map(|(dc, n)| self.nearest(Some(dc), *n))
                .collect(),
            // Reads reject ANY; should one come here, one replica meets it.
            Requirement::AnyOrHint => self.nearest(None, 1),
        };
        self.asked.extend(picked.iter().map(|c| c.node));
        picked
    }

    /// One more replica to ask because the asked ones are slow: the nearest
    /// not yet asked in a datacenter the level still lacks answers from
    /// (`acks`); `None` when there is none.
    pub fn speculate(&mut self, acks: &AckCounts) -> Option<Candidate> {
        let next = self
            .unasked()
            .find(|c| self.dc_short(&c.dc, acks))
            .cloned()?;
        self.asked.push(next.node);
        Some(next)
    }

    /// Replicas to ask because asked ones failed: the nearest not yet
    /// asked, in datacenters still short, until the answers `pending` plus
    /// those could meet the level again. Empty when no replica is left (or
    /// none is needed).
    pub fn replace_failed(
        &mut self,
        acks: &AckCounts,
        pending: &BTreeMap<String, u32>,
    ) -> Vec<Candidate> {
        let mut pending = pending.clone();
        let mut out = Vec::new();
        let spare: Vec<Candidate> = self.unasked().cloned().collect();
        for c in spare {
            if self.req.can_still_be_met(acks, &pending) {
                break;
            }
            if !self.dc_short_with(&c.dc, acks, &pending) {
                continue;
            }
            *pending.entry(c.dc.clone()).or_default() += 1;
            self.asked.push(c.node);
            out.push(c);
        }
        out
    }

    /// Every replica asked so far.
    #[cfg(test)]
    pub fn asked(&self) -> &[NodeIdx] {
        &self.asked
    }

    fn nearest(&self, dc: Option<&String>, n: u32) -> Vec<Candidate> {
        self.unasked()
            .filter(|c| dc.is_none_or(|d| &c.dc == d))
            .take(n as usize)
            .cloned()
            .collect()
    }

    fn unasked(&self) -> impl Iterator<Item = &Candidate> {
        self.live.iter().filter(|c| !self.asked.contains(&c.node))
    }

    /// Whether the level still needs answers from `dc`.
    fn dc_short(&self, dc: &str, acks: &AckCounts) -> bool {
        self.dc_short_with(dc, acks, &BTreeMap::new())
    }

    /// Whether answers from `dc` still count towards the level once the
    /// `pending` ones come.
    fn dc_short_with(&self, dc: &str, acks: &AckCounts, pending: &BTreeMap<String, u32>) -> bool {
        let have = |d: &str| {
            acks.per_dc.get(d).copied().unwrap_or(0) + pending.get(d).copied().unwrap_or(0)
        };
        match &self.req {
            Requirement::Total { .. } | Requirement::AnyOrHint => true,
            Requirement::Local { dc: local, .. } => local == dc,
            Requirement::EachDc { per_dc } => per_dc.iter().any(|(d, n)| d == dc && have(d) < *n),
        }
    }
}

#[cfg(test)]
mod tests;
