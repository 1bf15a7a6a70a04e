//! The coordinator: any node coordinates any request.
//!
//! ```text
//! write: block_for → live-replica check → (not a replica: forward to the nearest
//!        live replica, which coordinates) → coordinating replica advances the clock
//!        and appends the remote streams in one batch → full record fanned out to
//!        the other local replicas → gather acks to the level
//! read:  block_for → live-replica check → ask the level's count of nearest live replicas
//!        (`read_targets`) → gather to the level, one more replica per delay while slow
//!        (speculative retry) or as many as failed → merge sibling sets → read repair of stale answers (async)
//! ```
//!
//! Owns: the request plan and the wait for the consistency level. Must not:
//! compute placement (that is `ring`), encode records (`version`), or touch
//! the engine directly (`replica`).

pub use crate::consistency;
mod decide;
mod forward;
mod gather;
mod newer_view;
mod read;
mod read_targets;
mod write;

#[cfg(test)]
mod tests_drain;
#[cfg(test)]
mod tests_not_ready;
#[cfg(test)]
pub(crate) mod tests_pending;

use crate::error::GeokvError;
use crate::hints::{Commit, Hints};
use crate::mutation::Mutation;
use crate::replica::Replica;
use crate::ring::{DcPending, ReplicaSet};
use crate::topology::{NodeIdx, NodeInfo};
use crate::transport::Peers;
use crate::view::{Cluster, ClusterView};
use bytes::Bytes;
use consistency::{ConsistencyLevel, OpKind, Requirement};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub use read::ReadOutcome;
pub use write::WriteOutcome;

/// Liveness is membership's; re-exported where the coordinator's callers
/// have always found it.
pub use crate::membership::{AlwaysUp, Liveness};

/// Coordinator settings.
#[derive(Clone, Debug)]
pub struct CoordinatorConfig {
    /// Deadline when the request names none.
    pub default_timeout: Duration,
    /// Level when the request names none.
    pub default_level: ConsistencyLevel,
    /// Speculative retry of reads: a read whose replicas have not met the
    /// level this long after it was sent asks one more replica, and one
    /// more after each further delay while replicas are left.
    /// A fixed delay well above a loaded replica's p99 (about a millisecond
    /// idle, a few under saturation), so that speculation does not add load
    /// exactly when the cluster is busiest; Cassandra's default is the
    /// table's measured `99p`.
    pub read_speculation: Duration,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            default_timeout: Duration::from_millis(2000),
            default_level: ConsistencyLevel::LocalQuorum,
            read_speculation: Duration::from_millis(20),
        }
    }
}

/// A read, as the API hands it over.
#[derive(Debug, Clone)]
pub struct ReadRequest {
    pub keyspace: String,
    pub key: Bytes,
    pub level: ConsistencyLevel,
    pub explicit: Option<u32>,
    pub timeout: Duration,
}

/// A write or delete, as the API hands it over: the mutation and how to
/// coordinate it.
#[derive(Debug, Clone)]
pub struct WriteRequest {
    pub mutation: Mutation,
    pub level: ConsistencyLevel,
    pub explicit: Option<u32>,
    pub timeout: Duration,
}

/// What [`Coordinator::plan`] decided for one request.
struct Plan<'a> {
    pub requirement: Requirement,
    /// The current owners of the key.
    pub replicas: &'a ReplicaSet,
    /// Writes only: the replicas the key's range gains in a movement in
    /// progress; a write goes to them too and the requirement counts them
    /// (`consistency::with_pending`). Reads use the owners only.
    pub pending: &'a [DcPending],
    /// Live replicas (owners, and for writes pending ones) per datacenter.
    pub alive: BTreeMap<String, u32>,
}

impl Plan<'_> {
    /// Owners and pending replicas in `dc`.
    fn targets_in(&self, dc: &str) -> Vec<NodeIdx> {
        let mut v = self.replicas.in_dc(dc).to_vec();
        for d in self.pending.iter().filter(|d| d.dc == dc) {
            for &n in &d.nodes {
                if !v.contains(&n) {
                    v.push(n);
                }
            }
        }
        v
    }
}

/// Coordinates requests on behalf of one node. Every request loads the
/// cluster view once and places, counts and sends within that view.
pub struct Coordinator {
    cluster: Cluster,
    me: NodeInfo,
    peers: Arc<Peers>,
    replica: Arc<Replica>,
    liveness: Arc<dyn Liveness>,
    hints: Arc<Hints>,
    /// What a write commits with its update (`hints::commit`).
    commit: Commit,
    config: CoordinatorConfig,
    /// The node's shutdown signal ([`Coordinator::stopping_on`]): writes
    /// other nodes forward are refused once it is true.
    shutdown: tokio::sync::watch::Receiver<bool>,
    /// Layout fetches after refusals, shared by concurrent requests.
    fetches: Arc<newer_view::LayoutFetches>,
}

impl Coordinator {
    /// Wires a coordinator.
    pub fn new(
        cluster: Cluster,
        me: NodeInfo,
        peers: Arc<Peers>,
        replica: Arc<Replica>,
        liveness: Arc<dyn Liveness>,
        hints: Arc<Hints>,
        config: CoordinatorConfig,
    ) -> Self {
        Coordinator {
            cluster,
            me,
            peers,
            replica: replica.clone(),
            liveness,
            commit: Commit::new(replica.clone(), hints.clone()),
            hints,
            config,
            // Never signalled until `stopping_on` (tools, tests).
            shutdown: tokio::sync::watch::channel(false).1,
            fetches: Arc::default(),
        }
    }

    /// Once `shutdown` is true (the node's signal, which also stops its
    /// hint delivery) a write another node forwards here
    /// ([`Coordinator::write_as_replica`]) is refused before anything is
    /// minted ("shutting down", nothing applied), so the forwarder asks
    /// the key's next replica instead of one that may not stay up for the
    /// write's remote datacenters. The signal itself is read, so no write
    /// slips in between delivery stopping and a flag being set (review
    /// Low of stop 23). Requests of this node's own clients already in
    /// flight go on.
    pub fn stopping_on(mut self, shutdown: tokio::sync::watch::Receiver<bool>) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// Settings.
    pub fn config(&self) -> &CoordinatorConfig {
        &self.config
    }

    /// The cluster this coordinator places keys in.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// This node's replica, for [`crate::replica::handle::Handle::at`].
    fn local(&self) -> crate::replica::handle::Local<'_> {
        crate::replica::handle::Local {
            replica: &self.replica,
            cluster: &self.cluster,
        }
    }

    fn is_up(&self, view: &ClusterView, n: NodeIdx) -> bool {
        n == view.me_idx() || self.liveness.is_up(&view.ring.node(n).id)
    }

    /// Whether `n` is up and takes writes: a node that gossiped it refuses
    /// them (its storage latched a failed write or sync) is counted out of
    /// a write's live replicas and hinted, not sent the write, so a level
    /// that needs it is UNAVAILABLE up front ("not applied"), never a
    /// "maybe" timeout; reads still count it (review-tidy34 L4). This node
    /// counts itself: a client write is checked before it coordinates
    /// (`Cluster::serving`, in the client service), but a write a peer
    /// forwards (`internode::coordinate_write`) is not; there a latched
    /// node's mint refuses it (its engine's `SyncFailed`) before anything
    /// is sent (review-write35 L3).
    fn takes_writes(&self, view: &ClusterView, n: NodeIdx) -> bool {
        let id = &view.ring.node(n).id;
        n == view.me_idx() || (self.liveness.is_up(id) && self.liveness.is_ready(id))
    }

    /// Whether `n` counts as live for `op`.
    fn live_for(&self, view: &ClusterView, n: NodeIdx, op: OpKind) -> bool {
        match op {
            OpKind::Write => self.takes_writes(view, n),
            OpKind::Read => self.is_up(view, n),
        }
    }

    /// Replicas of the key, nearest first: ourselves, then our datacenter
    /// (in walk order), then the other datacenters in topology order.
    fn by_proximity(&self, view: &ClusterView, set: &ReplicaSet) -> Vec<NodeIdx> {
        let me = view.me_idx();
        let mut out: Vec<NodeIdx> = Vec::with_capacity(set.len());
        if set.contains(me) {
            out.push(me);
        }
        out.extend(set.in_dc(&self.me.dc).iter().copied().filter(|n| *n != me));
        for dc in &set.per_dc {
            if dc.dc != self.me.dc {
                out.extend(dc.nodes.iter().copied());
            }
        }
        out
    }

    /// Live replicas per datacenter, for `op`.
    fn alive_per_dc(
        &self,
        view: &ClusterView,
        set: &ReplicaSet,
        op: OpKind,
    ) -> BTreeMap<String, u32> {
        let mut m = BTreeMap::new();
        for dc in &set.per_dc {
            let up = dc
                .nodes
                .iter()
                .filter(|n| self.live_for(view, **n, op))
                .count() as u32;
            m.insert(dc.dc.clone(), up);
        }
        m
    }

    /// The common start of every request: the keyspace, the requirement
    /// of the level (`FAILED_PRECONDITION` when impossible), the replica
    /// set, and the up-front liveness check (`UNAVAILABLE`).
    fn plan<'v>(
        &self,
        view: &'v ClusterView,
        keyspace: &str,
        key: &[u8],
        level: ConsistencyLevel,
        explicit: Option<u32>,
        op: OpKind,
    ) -> Result<Plan<'v>, GeokvError> {
        let unknown = || GeokvError::UnknownKeyspace(keyspace.to_string());
        let spec = view
            .ring
            .topology()
            .keyspace(keyspace)
            .ok_or_else(unknown)?;
        let requirement =
            consistency::block_for(level, explicit, op, &spec.replication, &self.me.dc)?;
        let token = crate::ring::token_of(key);
        let replicas = (view.ring.replicas_for_token(keyspace, token)).map_err(|_| unknown())?;
        let mut alive = self.alive_per_dc(view, replicas, op);
        let (requirement, pending) = match op {
            OpKind::Write => {
                let pending = view.pending.for_token(keyspace, token);
                for d in pending {
                    let up = d
                        .nodes
                        .iter()
                        .filter(|n| self.takes_writes(view, **n))
                        .count() as u32;
                    *alive.entry(d.dc.clone()).or_default() += up;
                }
                let counts = view.pending.counts_for_token(keyspace, token);
                (consistency::with_pending(requirement, &counts), pending)
            }
            OpKind::Read => (requirement, &[][..]),
        };
        decide::check_alive(level, &requirement, &alive)?;
        Ok(Plan {
            requirement,
            replicas,
            pending,
            alive,
        })
    }
}
