//! The write path of a coordinator (puts and deletes).
//!
//! 1. `block_for` turns the level into a [`Requirement`]; `UNAVAILABLE` up
//!    front when too few replicas are alive (nothing is sent then).
//! 2. A coordinator that does not replicate the key forwards the whole write
//!    to the nearest live replica, which coordinates it (`forward`). So the
//!    rest always runs on a replica of the key:
//! 3. This node advances the key's clock with its actor id and, **in the same
//!    atomic RocksDB batch**, appends the record to the hinted stream of
//!    every remote datacenter ([`Coordinator::update_here`], the one place a
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

use super::consistency::{AckCounts, OpKind, Requirement};
use super::gather::{Answer, Gather, Step};
use super::{Coordinator, Plan, WriteRequest};
use crate::error::GeokvError;
use crate::hints::intent::Intent;
use crate::hints::waiters::StreamWait;
use crate::hints::{append_update, Appended, Awaited};
use crate::proto::v1::internode::ReplicaWriteRequest;
use crate::topology::{NodeIdx, NodeInfo};
use crate::transport::TransportError;
use crate::version::{CausalContext, Dot, SiblingSet};
use crate::view::ClusterView;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::time::Instant;

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

pub(super) use crate::clock::now_ms;

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

/// The plan a replica write belongs to, as the replica checks it
/// (`stale_view`): the view's layout version and the ids of `local`.
struct Planned {
    version: u64,
    targets: Vec<String>,
}

/// The first replica that refused a fan-out as planned on an older view,
/// and its layout version.
type StaleSlot = Arc<parking_lot::Mutex<Option<(NodeInfo, u64)>>>;

impl Coordinator {
    /// Coordinates a put (`value: Some`) or delete (`value: None`).
    #[tracing::instrument(name = "coordinator.write", skip_all,
        fields(keyspace = %req.keyspace, level = %req.level, delete = req.value.is_none()))]
    pub async fn write(&self, req: WriteRequest) -> Result<WriteOutcome, GeokvError> {
        self.write_from(req, true).await
    }

    /// Coordinates a write forwarded by a node that does not replicate the
    /// key (the `CoordinateWrite` RPC); never forwards it again.
    #[tracing::instrument(name = "coordinator.write_as_replica", skip_all,
        fields(keyspace = %req.keyspace, level = %req.level, delete = req.value.is_none()))]
    pub async fn write_as_replica(&self, req: WriteRequest) -> Result<WriteOutcome, GeokvError> {
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
            &req.keyspace,
            &req.key,
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
                self.me.id, req.keyspace
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
        let (record, dot, appended) = self
            .update_here(view, req, &to.local, &to.remote_dcs, &to.wait_for)
            .await?;
        let mut encoded = Vec::with_capacity(record.encoded_len());
        record.encode(&mut encoded);
        let minted = (&record, encoded.as_slice());
        let first = (Some(appended), deadline);
        let (mut res, mut stale) = self.fan_out(view, req, &plan, &to, minted, first).await;
        let mut last = view.version();
        // Only a fan-out that failed is sent again: acknowledgements that
        // met the level were each given by a replica on a view the write
        // covers (see `stale_view`).
        while let (true, Some((peer, version))) = (res.is_err(), stale.take()) {
            let Some(newer) = self.newer_view(&peer, version, deadline).await else {
                break;
            };
            if newer.version() <= last {
                break;
            }
            last = newer.version();
            metrics::counter!("geokv_stale_view_retries_total").increment(1);
            let (ks, key, level) = (&req.keyspace, &req.key, req.level);
            let plan = (self.plan(&newer, ks, key, level, req.explicit, OpKind::Write))
                .map_err(|e| GeokvError::MaybeApplied(format!("on layout v{last}: {e}")))?;
            let to = self.fanout(&plan);
            (res, stale) = (self.fan_out(&newer, req, &plan, &to, minted, (None, deadline))).await;
        }
        let (acks, hints) = res?;
        Ok(WriteOutcome {
            context: req.context.after_write(dot, &record.clock),
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
        Fanout {
            local: plan.targets_in(&self.me.dc),
            wait_for: self.awaited_dcs(&plan.requirement, &plan.alive, &remote_dcs),
            sizes,
            remote_dcs,
        }
    }

    /// The layout of `peer`, which refused a write as planned on a view
    /// older than its `version`, installed here; `None` when that did not
    /// bring this node to `version` before the deadline.
    async fn newer_view(
        &self,
        peer: &NodeInfo,
        version: u64,
        deadline: Instant,
    ) -> Option<Arc<ClusterView>> {
        if self.cluster.current().version() < version {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.peers.get_layout(peer, left).await {
                Ok(msg) => match crate::view::sync::from_message(&peer.id, &msg) {
                    Ok(layout) => {
                        if let Err(e) = self.cluster.install(layout) {
                            tracing::warn!(peer = %peer.id, error = %e, "layout of a refusing replica not installed");
                        }
                    }
                    Err(e) => tracing::warn!(peer = %peer.id, error = %e, "bad layout"),
                },
                Err(e) => tracing::warn!(peer = %peer.id, error = %e, "layout fetch failed"),
            }
        }
        let now = self.cluster.current();
        (now.version() >= version).then_some(now)
    }

    /// One fan-out of a minted write on `view`: our datacenter's targets
    /// directly, the remote datacenters through their streams (the entries
    /// committed with the write on the first fan-out, `appended`; urgent
    /// ones appended now on a later one), gathered to `plan`'s level.
    /// Returns `(acks, hints)` or the failure, and the first replica that
    /// refused the write as planned on an older view, with its version.
    async fn fan_out(
        &self,
        view: &ClusterView,
        req: &WriteRequest,
        plan: &Plan<'_>,
        to: &Fanout,
        (record, encoded): (&SiblingSet, &[u8]),
        (appended, deadline): (Option<Appended>, Instant),
    ) -> (Result<(u32, u32), GeokvError>, Option<(NodeInfo, u64)>) {
        let stale = StaleSlot::default();
        let res = self
            .gather_fan_out(
                view,
                req,
                plan,
                to,
                (record, encoded),
                (appended, deadline),
                &stale,
            )
            .await;
        let refused = stale.lock().take();
        (res, refused)
    }

    #[allow(clippy::too_many_arguments)]
    async fn gather_fan_out(
        &self,
        view: &ClusterView,
        req: &WriteRequest,
        plan: &Plan<'_>,
        to: &Fanout,
        (record, encoded): (&SiblingSet, &[u8]),
        (appended, deadline): (Option<Appended>, Instant),
        stale: &StaleSlot,
    ) -> Result<(u32, u32), GeokvError> {
        let requirement = &plan.requirement;
        let (sizes, remote_dcs, wait_for) = (&to.sizes, &to.remote_dcs, &to.wait_for);
        let (waits, mut intents) = match appended {
            Some(a) => (a.waits, a.intents),
            None if wait_for.is_empty() => (Vec::new(), Vec::new()),
            None => {
                let dcs: Vec<String> = wait_for.iter().map(|w| w.dc.clone()).collect();
                let waits = (self.hints)
                    .stream_append_now(&dcs, wait_for, &req.keyspace, &req.key, record)
                    .await
                    .map_err(|e| {
                        GeokvError::Internal(format!("{e}; the write may have been applied"))
                    })?;
                (waits, Vec::new())
            }
        };
        let mut acks = AckCounts::default();
        if to.local.contains(&view.me_idx()) {
            *acks.per_dc.entry(self.me.dc.clone()).or_default() += 1;
        }
        let planned = Planned {
            version: view.version(),
            targets: (to.local.iter())
                .map(|&n| view.ring.node(n).id.clone())
                .collect(),
        };
        let fan_out = sizes.values().sum::<u32>() as usize;
        let (tx, rx) = mpsc::channel::<Answer<()>>(fan_out.max(1) + remote_dcs.len());
        let mut pending: BTreeMap<String, u32> = BTreeMap::new();
        for &n in &to.local {
            if n == view.me_idx() {
                continue;
            }
            let peer = view.ring.node(n);
            // A hint committed with the update (see `hints::intent`).
            let intent = intents
                .iter()
                .position(|i| i.target == n)
                .map(|i| intents.swap_remove(i));
            if !self.is_up(view, n) {
                // Stored, or recorded for anti-entropy when over the bound:
                // either way the write reaches it later; not an ack.
                match intent {
                    Some(i) => i.failed(),
                    None => {
                        (self.hints)
                            .hint_node(&peer.id, &req.keyspace, &req.key, record)
                            .await?
                    }
                }
                acks.hints += 1;
                continue;
            }
            *pending.entry(self.me.dc.clone()).or_default() += 1;
            let dc = self.me.dc.clone();
            let rec = (encoded.to_vec(), record);
            let sent = (&planned, stale.clone());
            self.spawn_replica_write((n, peer), dc, req, rec, intent, sent, deadline, tx.clone());
        }
        for wait in waits {
            let settles = sizes.get(&wait.dc).copied().unwrap_or(0);
            *pending.entry(wait.dc.clone()).or_default() += settles;
            spawn_stream_wait(wait, settles, deadline, tx.clone());
        }
        let timeout_ms = req.timeout.as_millis() as u64;
        let mut gather = Gather::new(
            req.level,
            requirement.clone(),
            OpKind::Write,
            rx,
            pending,
            acks,
            deadline,
            timeout_ms,
        );
        // Step 5: a count level met locally so far may still need the
        // remote datacenters (not yet asked).
        let fallback = matches!(requirement, Requirement::Total { .. })
            && wait_for.is_empty()
            && !remote_dcs.is_empty();
        let until = if fallback {
            Instant::now() + req.timeout / 2
        } else {
            deadline
        };
        let mut step = gather.run(until).await?;
        if step == Step::Short && fallback {
            // Only what is still missing: one slow remote replica must not
            // hold the write up (issue 9, defect 13 on this path).
            let need = match requirement {
                Requirement::Total { count } => count.saturating_sub(gather.received()).max(1),
                _ => 0,
            };
            let to = (sizes, remote_dcs.as_slice(), need);
            self.fall_back_remote(req, to, record, deadline, &tx, &mut gather)
                .await?;
            step = gather.run(deadline).await?;
        }
        if step == Step::Short {
            return Err(gather.failed());
        }
        let got = gather.into_gathered();
        Ok((got.acks.per_dc.values().sum(), got.acks.hints))
    }

    /// Step 5: the record goes to the urgent lane of every remote
    /// datacenter (the backlog entry committed with the write stays: a
    /// second delivery merges to the same state) and the gather waits for
    /// their acknowledgements too.
    #[allow(clippy::too_many_arguments)]
    async fn fall_back_remote(
        &self,
        req: &WriteRequest,
        (sizes, remote_dcs, need): (&BTreeMap<String, u32>, &[String], u32),
        record: &SiblingSet,
        deadline: Instant,
        tx: &mpsc::Sender<Answer<()>>,
        gather: &mut Gather<()>,
    ) -> Result<(), GeokvError> {
        metrics::counter!("geokv_remote_fallbacks_total", "op" => "write").increment(1);
        let all: Vec<Awaited> = remote_dcs
            .iter()
            .map(|dc| Awaited {
                dc: dc.clone(),
                // The receiver caps it at its datacenter's replicas.
                need,
            })
            .collect();
        let waits = self
            .hints
            .stream_append_now(remote_dcs, &all, &req.keyspace, &req.key, record)
            .await
            .map_err(|e| GeokvError::Internal(format!("{e}; the write may have been applied")))?;
        for wait in waits {
            let settles = sizes.get(&wait.dc).copied().unwrap_or(0);
            gather.expect(&wait.dc, settles);
            spawn_stream_wait(wait, settles, deadline, tx.clone());
        }
        Ok(())
    }

    /// The remote datacenters whose acknowledgements the level needs (and so
    /// waits for through their streams): every datacenter with a quorum of
    /// its own for EACH_QUORUM, every remote one when a total count exceeds
    /// what our live local replicas can give.
    ///
    /// Each with the count its receiver must reach before acknowledging: the
    /// datacenter's own quorum for EACH_QUORUM; for a total count, what our
    /// live local replicas cannot give (so should one of them fail after
    /// all, the level can fail although more remote replicas applied it).
    fn awaited_dcs(
        &self,
        req: &Requirement,
        alive: &BTreeMap<String, u32>,
        remote_dcs: &[String],
    ) -> Vec<Awaited> {
        let local = alive.get(&self.me.dc).copied().unwrap_or(0);
        match req {
            Requirement::AnyOrHint | Requirement::Local { .. } => Vec::new(),
            Requirement::Total { count } if *count > local => remote_dcs
                .iter()
                .map(|dc| Awaited {
                    dc: dc.clone(),
                    need: count - local,
                })
                .collect(),
            Requirement::Total { .. } => Vec::new(),
            Requirement::EachDc { per_dc } => per_dc
                .iter()
                .filter(|(dc, n)| *dc != self.me.dc && *n > 0)
                .map(|(dc, n)| Awaited {
                    dc: dc.clone(),
                    need: *n,
                })
                .collect(),
        }
    }

    /// Step 3: this replica advances the clock, and the stream entries of the
    /// remote datacenters go into the same atomic batch. The only place a
    /// write is minted; whatever else must commit with the write is added
    /// to the batch here.
    async fn update_here(
        &self,
        view: &ClusterView,
        req: &WriteRequest,
        local_targets: &[NodeIdx],
        remote_dcs: &[String],
        wait_for: &[Awaited],
    ) -> Result<(SiblingSet, Dot, Appended), GeokvError> {
        let ts = now_ms();
        let (ks, key, value, ctx) = (
            req.keyspace.clone(),
            req.key.clone(),
            req.value.clone(),
            req.context.clone(),
        );
        let hints = self.hints.clone();
        let (dcs, wait) = (remote_dcs.to_vec(), wait_for.to_vec());
        let me = view.me_idx();
        let local: Vec<(NodeIdx, String)> = local_targets
            .iter()
            .copied()
            .filter(|&m| m != me)
            .map(|m| (m, view.ring.node(m).id.clone()))
            .collect();
        let ((set, dot), appended) = self
            .replica
            .blocking(move |r| {
                let mut appended = None;
                let res = r.update(&ks, &key, value, &ctx, ts, |set, batch| {
                    appended = Some(append_update(
                        &hints, &local, &dcs, &wait, &ks, &key, set, batch,
                    )?);
                    Ok(())
                });
                match res {
                    Ok(set) => Ok((set, appended.unwrap_or_default())),
                    Err(e) => {
                        // The batch did not commit: its queue entries do not exist.
                        if let Some(a) = appended {
                            hints.rollback(a);
                        }
                        Err(e)
                    }
                }
            })
            .await?;
        self.hints
            .notify_appended(remote_dcs, wait_for, &appended.waits);
        Ok((set, dot, appended))
    }

    #[allow(clippy::too_many_arguments)]
    fn spawn_replica_write(
        &self,
        (n, peer): (NodeIdx, &NodeInfo),
        dc: String,
        req: &WriteRequest,
        (encoded, record): (Vec<u8>, &SiblingSet),
        intent: Option<Intent>,
        (planned, stale): (&Planned, StaleSlot),
        deadline: Instant,
        tx: mpsc::Sender<Answer<()>>,
    ) {
        let peers = self.peers.clone();
        let peer = peer.clone();
        let hints = self.hints.clone();
        let msg = ReplicaWriteRequest {
            keyspace: req.keyspace.clone(),
            key: req.key.to_vec(),
            record: encoded,
            coordinator: self.me.id.clone(),
            layout_version: planned.version,
            targets: planned.targets.clone(),
        };
        let (ks, key, record) = (req.keyspace.clone(), req.key.clone(), record.clone());
        let timeout = deadline.saturating_duration_since(Instant::now());
        let span = tracing::Span::current();
        tokio::spawn(tracing::Instrument::instrument(
            async move {
                let res = peers.replica_write(&peer, msg, timeout).await;
                if let Err(TransportError::StaleView { version, .. }) = &res {
                    stale.lock().get_or_insert((peer.clone(), *version));
                }
                match (&res, intent) {
                    // The acknowledgement does not wait on the cleanup.
                    (Ok(_), Some(i)) => {
                        let _ = tx.send(Answer::Replica(n, dc, Ok(()))).await;
                        return i.done().await;
                    }
                    (Ok(_), None) => {}
                    // The hint committed with the update stays, to be delivered.
                    (Err(_), Some(i)) => {
                        i.failed();
                        let _ = tx.send(Answer::Hint).await;
                    }
                    // A local replica that failed gets a hint.
                    (Err(e), None) => match hints.hint_node(&peer.id, &ks, &key, &record).await {
                        Ok(()) => {
                            let _ = tx.send(Answer::Hint).await;
                        }
                        Err(h) => tracing::error!(error = %h, "could not store hint after {e}"),
                    },
                }
                let res = res.map(|_| ()).map_err(|e| e.to_string());
                let _ = tx.send(Answer::Replica(n, dc, res)).await;
            },
            span,
        ));
    }
}

/// Waits on one datacenter's acknowledgement of an urgent stream entry and
/// hands it to the gather. Past the deadline nobody gathers: the wait is
/// dropped (the entry stays queued and is delivered anyway), a second later,
/// so the gather reports its own timeout first.
fn spawn_stream_wait(
    wait: StreamWait,
    settles: u32,
    deadline: Instant,
    tx: mpsc::Sender<Answer<()>>,
) {
    tokio::spawn(async move {
        let dc = wait.dc.clone();
        let drop_at = deadline + std::time::Duration::from_secs(1);
        let result = tokio::time::timeout_at(drop_at, wait.outcome())
            .await
            .unwrap_or_else(|_| Err("no acknowledgement by the deadline".to_string()));
        let _ = tx
            .send(Answer::Stream {
                dc,
                settles,
                result,
            })
            .await;
    });
}
