//! The write path of a coordinator (puts and deletes).
//!
//! 1. `block_for` turns the level into a `Requirement`; `UNAVAILABLE` up
//!    front when too few replicas are alive (nothing is sent then).
//! 2. A coordinator that does not replicate the key forwards the whole write
//!    to the nearest live replica, which coordinates it (`forward`). So the
//!    rest always runs on a replica of the key:
//! 3. This node advances the key's clock with its actor id and, **in the same
//!    atomic RocksDB batch**, appends the record to the hinted stream of
//!    every remote datacenter (`hints::Commit::mint`, the one place a
//!    write is minted). A crash after the ack loses nothing.
//! 4. The record is merged into the other replicas of our datacenter; a
//!    replica that is down or fails gets a durable hint instead (hints are
//!    reported, never counted as acknowledgements except for ANY). Those
//!    hints are written up front, in the update's batch (`hints::intent`),
//!    and deleted as each replica acknowledges, so a crash right after the
//!    ack loses nothing here either. Remote
//!    datacenters are reached only through their stream. A level that needs
//!    remote acknowledgements (QUORUM, EACH_QUORUM, ALL, TWO/THREE beyond the
//!    live local replicas) puts the entry in the *urgent lane* of those
//!    datacenters' streams and waits for its acknowledgement, which says how
//!    many replicas there applied it; it never waits behind a backlog.
//!
//!    Each replica write carries the view's layout version and the local
//!    targets; a replica on a newer view that replicates the key
//!    differently refuses it, nothing applied (`stale_view`). When the
//!    fan-out then fails, the coordinator fetches that replica's layout and
//!    fans the *same* record (same dot) out again on the newer view, within
//!    the deadline; a write is never minted twice.
//! 5. A count level (ONE/TWO/THREE/QUORUM, explicit W) that expected to be
//!    met locally but is not (a local replica believed alive failed, or half
//!    the deadline passed) falls back to the remote datacenters through their
//!    urgent lanes. LOCAL_* levels never do.
//!
//! Must not: mint a write more than once, or tell a client "nothing applied" once it was sent.

use super::consistency::OpKind;
use super::{Coordinator, Plan, WriteRequest};
use crate::error::GeokvError;
use crate::hints::{Appended, Awaited};
use crate::mutation::{Along, Minted};
use crate::proto::v1::internode::ReplicaWriteRequest;
use crate::replica::handle::{write_request, Merge, PlannedOn};
use crate::topology::{NodeIdx, NodeInfo};
use crate::version::{CausalContext, SiblingSet};
use crate::view::ClusterView;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::time::Instant;

#[path = "write/fan_out.rs"]
mod fan_out;
#[path = "write/replica_call.rs"]
mod replica_call;

/// A write that met its level.
#[derive(Debug, Clone)]
pub struct WriteOutcome {
    /// The write's context: the client's context plus the write's own dot
    /// (never the replica's whole clock: that also covers concurrent
    /// siblings the client was not shown).
    pub context: CausalContext,
    /// Replicas that acknowledged before the answer.
    pub acks: u32,
    /// Hints stored for replicas that were down or failed (not acks).
    pub hints: u32,
}

/// Where a write goes on one view: our datacenter's owners and pending
/// replicas (`local`, sent directly), the remote datacenters (reached
/// through their streams), each datacenter's owners + pending count, and
/// the remote datacenters whose acknowledgements the level waits for.
struct Fanout {
    local: Vec<NodeIdx>,
    sizes: BTreeMap<String, u32>,
    remote_dcs: Vec<String>,
    wait_for: Vec<Awaited>,
}

/// What the replica calls of one fan-out share (issue 14): the record and
/// the one `ReplicaWrite` every peer is sent (keyspace, key, encoded
/// record and the plan: the view's layout version, digest and the ids of
/// `local`, as the replica checks it, `stale_view`), built once per
/// fan-out, not once per replica.
struct Shared {
    record: SiblingSet,
    request: Arc<ReplicaWriteRequest>,
    /// Our datacenter (every local replica's).
    dc: String,
}

impl Shared {
    fn new(view: &ClusterView, to: &Fanout, minted: &Minted, me: &NodeInfo) -> Arc<Self> {
        let digest = view.digest_bytes();
        let targets: Vec<String> = (to.local.iter())
            .map(|&n| view.ring.node(n).id.clone())
            .collect();
        let m = Merge {
            keyspace: minted.keyspace(),
            key: &minted.mutation.key,
            set: &minted.record,
            record: &minted.encoded,
            planned: Some(PlannedOn {
                version: view.version(),
                digest: &digest,
                targets: &targets,
            }),
            repair: false,
        };
        Arc::new(Shared {
            record: minted.record.clone(),
            request: Arc::new(write_request(&me.id, m)),
            dc: me.dc.clone(),
        })
    }

    /// The fan-out's write as a merge into one replica (what `request` is).
    fn merge(&self) -> Merge<'_> {
        let r = &*self.request;
        Merge {
            keyspace: &r.keyspace,
            key: &r.key,
            set: &self.record,
            record: &r.record,
            planned: Some(PlannedOn {
                version: r.layout_version,
                digest: &r.layout_digest,
                targets: &r.targets,
            }),
            repair: false,
        }
    }
}

use super::newer_view::StaleSlot;

/// One fan-out of a minted write: the view it is planned on, the request,
/// the plan and where it sends (on that view), the write, and the
/// request's deadline.
#[derive(Clone, Copy)]
struct Round<'a> {
    view: &'a ClusterView,
    req: &'a WriteRequest,
    plan: &'a Plan<'a>,
    to: &'a Fanout,
    minted: &'a Minted,
    deadline: Instant,
}

impl Coordinator {
    /// Coordinates a put (`value: Some`) or delete (`value: None`).
    #[tracing::instrument(name = "coordinator.write", skip_all,
        fields(keyspace = %req.mutation.keyspace, level = %req.level, delete = req.mutation.is_delete()))]
    pub async fn write(&self, req: WriteRequest) -> Result<WriteOutcome, GeokvError> {
        self.write_from(req, true).await
    }

    /// Coordinates a write forwarded by a node that does not replicate the
    /// key (the `CoordinateWrite` RPC); never forwards it again. Refused
    /// once the node's shutdown began ([`Coordinator::stopping_on`]).
    #[tracing::instrument(name = "coordinator.write_as_replica", skip_all,
        fields(keyspace = %req.mutation.keyspace, level = %req.level, delete = req.mutation.is_delete()))]
    pub async fn write_as_replica(&self, req: WriteRequest) -> Result<WriteOutcome, GeokvError> {
        if *self.shutdown.borrow() {
            return Err(GeokvError::ShuttingDown);
        }
        self.write_from(req, false).await
    }

    /// Steps 1 and 2: plan, then coordinate here or (when `may_forward`)
    /// forward to a replica.
    async fn write_from(
        &self,
        req: WriteRequest,
        may_forward: bool,
    ) -> Result<WriteOutcome, GeokvError> {
        let deadline = Instant::now() + req.timeout;
        let view = self.cluster.current();
        let plan = self.plan(
            &view,
            &req.mutation.keyspace,
            &req.mutation.key,
            req.level,
            req.explicit,
            OpKind::Write,
        )?;
        if !plan.replicas.contains(view.me_idx()) {
            if may_forward {
                return self
                    .forward_write(&view, &req, plan.replicas, deadline)
                    .await;
            }
            return Err(GeokvError::NotAReplica(format!(
                "{} is not a replica of this key of '{}'",
                self.me.id, req.mutation.keyspace
            )));
        }
        self.coordinate_write(&view, &req, plan, deadline).await
    }

    /// Steps 3 to 5, on a replica of the key: mint the write once, then fan
    /// it out on `view`. A replica on a newer view may refuse it as planned
    /// on an older one (`stale_view`); the same record (same dot: no second
    /// version) is then sent again on the newer view, within the deadline.
    async fn coordinate_write(
        &self,
        view: &ClusterView,
        req: &WriteRequest,
        plan: Plan<'_>,
        deadline: Instant,
    ) -> Result<WriteOutcome, GeokvError> {
        let to = self.fanout(&plan);
        let (minted, appended) = self.mint(view, req, &to).await?;
        let minted = &minted;
        let (plan, to) = (&plan, &to);
        let first = Round {
            view,
            req,
            plan,
            to,
            minted,
            deadline,
        };
        let (mut res, mut stale) = self.fan_out(&first, Some(appended)).await;
        let mut last = view.rank();
        // Only a fan-out that failed is sent again: acknowledgements that
        // met the level were each given by a replica on a view the write
        // covers (see `stale_view`).
        while res.is_err() {
            let Some((peer, version)) = stale.take() else {
                break;
            };
            let Some(newer) = self.newer_view((&peer, version), last, deadline).await else {
                break;
            };
            last = newer.rank();
            metrics::counter!("geokv_stale_view_retries_total").increment(1);
            let (ks, key, level) = (&req.mutation.keyspace, &req.mutation.key, req.level);
            let plan = (self.plan(&newer, ks, key, level, req.explicit, OpKind::Write))
                .map_err(|e| GeokvError::MaybeApplied(format!("on layout v{}: {e}", last.0)))?;
            let to = self.fanout(&plan);
            let again = Round {
                view: &newer,
                req,
                plan: &plan,
                to: &to,
                minted,
                deadline,
            };
            (res, stale) = self.fan_out(&again, None).await;
        }
        // A refusal in a fan-out that met its level: the next writes
        // should not meet it again (review-fix26 M1).
        if let Some((peer, version)) = stale.take() {
            self.refresh_after_refusal(peer, version, last);
        }
        let (acks, hints) = res?;
        Ok(WriteOutcome {
            context: (req.mutation.context).after_write(minted.dot, &minted.record.clock),
            acks,
            hints,
        })
    }

    /// Where a write goes on `plan`'s view (see [`Fanout`]).
    fn fanout(&self, plan: &Plan<'_>) -> Fanout {
        let sizes: BTreeMap<String, u32> = (plan.replicas.per_dc.iter())
            .map(|d| (d.dc.clone(), plan.targets_in(&d.dc).len() as u32))
            .collect();
        let remote_dcs: Vec<String> = (plan.replicas.per_dc.iter())
            .filter(|d| d.dc != self.me.dc)
            .map(|d| d.dc.clone())
            .collect();
        let mut wait_for =
            super::decide::awaited_dcs(&self.me.dc, &plan.requirement, &plan.alive, &remote_dcs);
        for w in &mut wait_for {
            // What the need counts there (M3: a receiver on a newer view
            // with more pending replicas adds the difference).
            let pending = plan.pending.iter().filter(|d| d.dc == w.dc);
            w.pending = Some(pending.map(|d| d.nodes.len() as u32).sum());
        }
        Fanout {
            local: plan.targets_in(&self.me.dc),
            wait_for,
            sizes,
            remote_dcs,
        }
    }

    /// Step 3: this replica mints the write; the stream entries of the
    /// remote datacenters and the intents of the other local replicas
    /// commit with it ([`crate::hints::Commit::mint`], the one place a
    /// write is minted).
    async fn mint(
        &self,
        view: &ClusterView,
        req: &WriteRequest,
        to: &Fanout,
    ) -> Result<(Minted, Appended), GeokvError> {
        let me = view.me_idx();
        let along = Along {
            local: (to.local.iter().copied())
                .filter(|&m| m != me)
                .map(|m| (m, view.ring.node(m).id.clone()))
                .collect(),
            remote_dcs: to.remote_dcs.clone(),
            wait_for: to.wait_for.clone(),
        };
        self.commit.mint(&req.mutation, along).await
    }
}

/// A failure once the write was minted here (committed on this replica):
/// whatever it says, the write may have been applied, so an error that
/// would say "nothing applied" (a hint refused by a sealed store, a
/// storage refusal) becomes [`GeokvError::MaybeApplied`] (review M2 of
/// stop 23). Errors that already say "maybe" keep their code and text
/// (a sealed hint store's refusal of urgent entries is one clean ABORTED,
/// not wrapped again: review-fix-types F3).
fn after_minting(me: &str, e: GeokvError) -> GeokvError {
    match e {
        GeokvError::Timeout { .. }
        | GeokvError::QuorumFailed { .. }
        | GeokvError::MaybeApplied(_)
        | GeokvError::HintsSealed
        | GeokvError::Internal(_) => e,
        e => GeokvError::MaybeApplied(format!("the write was stored on {me}, then: {e}")),
    }
}

#[cfg(test)]
#[path = "write/tests_minted.rs"]
mod tests_minted;
