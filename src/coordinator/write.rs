//! The write path of a coordinator (puts and deletes).
//!
//! 1. `block_for` turns the level into a [`Requirement`]; `UNAVAILABLE` up
//!    front when too few replicas are alive.
//! 2. The nearest live replica (ourselves when we are one) advances the key's
//!    clock with its actor id and returns the full record. In the same atomic
//!    RocksDB batch, when that replica is us, the record is appended to the
//!    hinted stream of every remote datacenter; otherwise we append it before
//!    acknowledging. So a coordinator crash after the ack loses nothing.
//! 3. The record is merged into the other replicas of our datacenter; a replica
//!    that is down or fails gets a durable hint instead. When we coordinate
//!    as a replica, those hints are written up front, in the update's batch
//!    (`hints::intent`), and deleted as each replica acknowledges, so a crash
//!    after the ack loses nothing here either. Remote datacenters are
//!    reached only through their stream. A level that needs remote
//!    acknowledgements (QUORUM, EACH_QUORUM, ALL, TWO/THREE beyond the local
//!    replicas) puts the entry in the *urgent lane* of those datacenters'
//!    streams and waits for its acknowledgement, which says how many replicas
//!    there applied it; it never waits behind a backlog (see `hints`).

use super::consistency::{AckCounts, OpKind, Requirement};
use super::gather::{gather, Answer};
use super::{Coordinator, WriteRequest};
use crate::error::GeokvError;
use crate::hints::intent::Intent;
use crate::hints::{append_update, awaits, Appended, Awaited};
use crate::proto::v1::internode::{ReplicaUpdateRequest, ReplicaWriteRequest};
use crate::topology::NodeIdx;
use crate::version::{SiblingSet, VersionVector};
use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// A write that met its level.
#[derive(Debug, Clone)]
pub struct WriteOutcome {
    /// Context of the stored version: covers the write just made.
    pub context: VersionVector,
    /// Acknowledgements received (replicas, plus hints for ANY).
    pub acks: u32,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Coordinator {
    /// Coordinates a put (`value: Some`) or delete (`value: None`).
    #[tracing::instrument(name = "coordinator.write", skip_all,
        fields(keyspace = %req.keyspace, level = %req.level, delete = req.value.is_none()))]
    pub async fn write(&self, req: WriteRequest) -> Result<WriteOutcome, GeokvError> {
        let deadline = Instant::now() + req.timeout;
        let plan = self.plan(
            &req.keyspace,
            &req.key,
            req.level,
            req.explicit,
            OpKind::Write,
        )?;
        let (requirement, set, alive) = (plan.requirement, plan.replicas, plan.alive);
        let order = self.by_proximity(set);
        let remote_dcs: Vec<String> = set
            .per_dc
            .iter()
            .filter(|d| d.dc != self.me.dc)
            .map(|d| d.dc.clone())
            .collect();

        let wait_for = self.awaited_dcs(&requirement, &alive, &remote_dcs);
        let (chosen, record, appended) = self
            .update_at_nearest(&req, &order, &remote_dcs, &wait_for, deadline)
            .await?;
        let (waits, mut intents) = (appended.waits, appended.intents);
        let mut acks = AckCounts::default();
        let chosen_dc = self.dc_of(chosen).to_string();
        if !awaits(&wait_for, &chosen_dc) {
            // (An awaited datacenter's stream answer counts the chosen replica.)
            *acks.per_dc.entry(chosen_dc).or_default() += 1;
        }

        let mut encoded = Vec::with_capacity(record.encoded_len());
        record.encode(&mut encoded);
        let (tx, rx) = mpsc::channel::<Answer<()>>(order.len().max(1));
        let mut pending: BTreeMap<String, u32> = BTreeMap::new();
        for &n in &order {
            let dc = self.dc_of(n).to_string();
            if n == chosen || dc != self.me.dc {
                continue; // remote datacenters: through their stream
            }
            // A hint committed with the update (see `hints::intent`).
            let intent = intents
                .iter()
                .position(|i| i.target == n)
                .map(|i| intents.swap_remove(i));
            if !self.is_up(n) {
                match intent {
                    Some(i) => i.failed(),
                    None => self.hints.hint_node(n, &req.keyspace, &req.key, &record)?,
                }
                acks.hints += 1;
                continue;
            }
            *pending.entry(dc.clone()).or_default() += 1;
            let rec = (encoded.clone(), &record);
            self.spawn_replica_write(n, dc, &req, rec, intent, deadline, tx.clone());
        }
        for wait in waits {
            let settles = set.in_dc(&wait.dc).len() as u32;
            *pending.entry(wait.dc.clone()).or_default() += settles;
            let tx = tx.clone();
            tokio::spawn(async move {
                let dc = wait.dc.clone();
                // Past the deadline nobody gathers: drop the wait (the entry
                // stays queued and is delivered anyway). A second later, so
                // the gather reports its own timeout first.
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
        drop(tx);
        let timeout_ms = req.timeout.as_millis() as u64;
        let got = gather(
            req.level,
            &requirement,
            rx,
            pending,
            acks,
            deadline,
            timeout_ms,
        )
        .await?;
        let acks = got.acks.per_dc.values().sum::<u32>() + got.acks.hints;
        Ok(WriteOutcome {
            context: record.context().clone(),
            acks,
        })
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

    /// Step 2: the nearest live replica advances the clock. Tries replicas in
    /// proximity order until one answers or the deadline passes.
    async fn update_at_nearest(
        &self,
        req: &WriteRequest,
        order: &[NodeIdx],
        remote_dcs: &[String],
        wait_for: &[Awaited],
        deadline: Instant,
    ) -> Result<(NodeIdx, SiblingSet, Appended), GeokvError> {
        let ts = now_ms();
        let mut errors = Vec::new();
        for &n in order.iter().filter(|n| self.is_up(**n)) {
            if n == self.me.idx {
                let (ks, key, value, ctx) = (
                    req.keyspace.clone(),
                    req.key.clone(),
                    req.value.clone(),
                    req.context.clone(),
                );
                let hints = self.hints.clone();
                let (dcs, wait) = (remote_dcs.to_vec(), wait_for.to_vec());
                let local: Vec<NodeIdx> = order
                    .iter()
                    .copied()
                    .filter(|&m| m != n && self.dc_of(m) == self.me.dc)
                    .collect();
                let (set, appended) = self
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
                return Ok((n, set, appended));
            }
            let msg = ReplicaUpdateRequest {
                keyspace: req.keyspace.clone(),
                key: req.key.to_vec(),
                value: req.value.as_ref().map(|v| v.to_vec()),
                context: req.context.encode_context(),
                timestamp_ms: ts,
            };
            let left = deadline.saturating_duration_since(Instant::now());
            match self.peers.replica_update(n, msg, left).await {
                Ok(resp) => {
                    let set = SiblingSet::decode(&resp.record).map_err(|e| {
                        GeokvError::Internal(format!("replica {} sent a bad record: {e}", n.0))
                    })?;
                    let waits = self.hints.stream_append_now(
                        remote_dcs,
                        wait_for,
                        &req.keyspace,
                        &req.key,
                        &set,
                    )?;
                    return Ok((n, set, Appended::waiting(waits)));
                }
                Err(crate::transport::TransportError::Rpc { code, message, .. })
                    if code == tonic::Code::FailedPrecondition
                        || code == tonic::Code::InvalidArgument =>
                {
                    // The replica refused the write itself (e.g. the sibling
                    // cap): another replica would refuse it too.
                    return Err(GeokvError::Refused { code, message });
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
        Err(GeokvError::QuorumFailed {
            level: req.level.name().to_string(),
            received: 0,
            required: 1,
            detail: format!("no replica could take the write: {}", errors.join("; ")),
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn spawn_replica_write(
        &self,
        n: NodeIdx,
        dc: String,
        req: &WriteRequest,
        (encoded, record): (Vec<u8>, &SiblingSet),
        intent: Option<Intent>,
        deadline: Instant,
        tx: mpsc::Sender<Answer<()>>,
    ) {
        let peers = self.peers.clone();
        let hints = self.hints.clone();
        let msg = ReplicaWriteRequest {
            keyspace: req.keyspace.clone(),
            key: req.key.to_vec(),
            record: encoded,
            coordinator: self.me.id.clone(),
        };
        let (ks, key, record) = (req.keyspace.clone(), req.key.clone(), record.clone());
        let timeout = deadline.saturating_duration_since(Instant::now());
        let span = tracing::Span::current();
        tokio::spawn(tracing::Instrument::instrument(
            async move {
                let res = peers.replica_write(n, msg, timeout).await;
                match (&res, intent) {
                    (Ok(_), Some(i)) => i.done(),
                    // The hint committed with the update is delivered.
                    (Err(_), Some(i)) => i.failed(),
                    (Ok(_), None) => {}
                    (Err(e), None) => {
                        // A local replica that failed gets a hint.
                        if let Err(h) = hints.hint_node(n, &ks, &key, &record) {
                            tracing::error!(error = %h, "could not store hint after {e}");
                        }
                    }
                }
                let res = res.map(|_| ()).map_err(|e| e.to_string());
                let _ = tx.send(Answer::Replica(n, dc, res)).await;
            },
            span,
        ));
    }
}
