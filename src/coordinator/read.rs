//! The read path of a coordinator: ask the nearest live replicas, gather to
//! the level (a count level that the local replicas fail to meet asks the
//! remote ones too), merge their sibling sets by causality, and repair the
//! replicas that answered with stale state (asynchronously, off the
//! request's path).

use super::consistency::{AckCounts, OpKind, Requirement};
use super::gather::{Answer, Gather, Step};
use super::{Coordinator, ReadRequest};
use crate::error::GeokvError;
use crate::proto::v1::internode::{ReplicaReadRequest, ReplicaWriteRequest};
use crate::topology::NodeIdx;
use crate::version::SiblingSet;
use std::collections::BTreeMap;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// A read that met its level.
#[derive(Debug, Clone)]
pub struct ReadOutcome {
    /// The merged state; `None` when no replica holds the key.
    pub set: Option<SiblingSet>,
    /// Replicas that answered.
    pub answered: u32,
}

impl Coordinator {
    /// Coordinates a read.
    #[tracing::instrument(name = "coordinator.read", skip_all,
        fields(keyspace = %req.keyspace, level = %req.level))]
    pub async fn read(&self, req: ReadRequest) -> Result<ReadOutcome, GeokvError> {
        let deadline = Instant::now() + req.timeout;
        let plan = self.plan(
            &req.keyspace,
            &req.key,
            req.level,
            req.explicit,
            OpKind::Read,
        )?;
        let requirement = plan.requirement;
        let order = self.by_proximity(plan.replicas);
        let targets = self.read_targets(&requirement, &order);

        let (tx, rx) = mpsc::channel::<Answer<Option<SiblingSet>>>(order.len().max(1));
        let mut pending: BTreeMap<String, u32> = BTreeMap::new();
        for &n in &targets {
            let dc = self.dc_of(n).to_string();
            *pending.entry(dc.clone()).or_default() += 1;
            self.spawn_replica_read(n, dc, &req, deadline, tx.clone());
        }
        let timeout_ms = req.timeout.as_millis() as u64;
        let mut gather = Gather::new(
            req.level,
            requirement.clone(),
            OpKind::Read,
            rx,
            pending,
            AckCounts::default(),
            deadline,
            timeout_ms,
        );
        // A count level asked only local replicas: when they cannot meet it
        // (one believed alive failed) or half the deadline passed, ask the
        // remote ones too. LOCAL_* levels never do.
        let rest: Vec<NodeIdx> = match requirement {
            Requirement::Total { .. } => order
                .iter()
                .copied()
                .filter(|n| self.is_up(*n) && !targets.contains(n))
                .collect(),
            _ => Vec::new(),
        };
        let until = if rest.is_empty() {
            deadline
        } else {
            Instant::now() + req.timeout / 2
        };
        let mut step = gather.run(until).await?;
        if step == Step::Short && !rest.is_empty() {
            metrics::counter!("geokv_remote_fallbacks_total", "op" => "read").increment(1);
            for &n in &rest {
                let dc = self.dc_of(n).to_string();
                gather.expect(&dc, 1);
                self.spawn_replica_read(n, dc, &req, deadline, tx.clone());
            }
            step = gather.run(deadline).await?;
        }
        drop(tx);
        if step == Step::Short {
            return Err(gather.failed());
        }
        let got = gather.into_gathered();
        let answered = got.ok.len() as u32;
        let mut merged: Option<SiblingSet> = None;
        for (_, s) in got.ok.iter() {
            if let Some(s) = s {
                match &mut merged {
                    Some(m) => m.merge(s),
                    None => merged = Some(s.clone()),
                }
            }
        }
        if let Some(m) = &merged {
            if m.siblings.len() > self.replica.max_siblings() {
                // Merges never drop siblings, so concurrent writers at
                // different replicas can briefly exceed the cap; count it.
                metrics::counter!("geokv_siblings_over_cap_total").increment(1);
            }
            self.read_repair(&req, m, &got.ok);
        }
        Ok(ReadOutcome {
            set: merged,
            answered,
        })
    }

    /// Which live replicas to ask: the local ones when the level can be met
    /// locally, every live replica otherwise. Nearest first.
    fn read_targets(&self, req: &Requirement, order: &[NodeIdx]) -> Vec<NodeIdx> {
        let live = order.iter().copied().filter(|n| self.is_up(*n));
        let local_only = match req {
            Requirement::Local { .. } => true,
            Requirement::Total { count } => {
                let local = order
                    .iter()
                    .filter(|n| self.dc_of(**n) == self.me.dc && self.is_up(**n))
                    .count() as u32;
                *count <= local
            }
            Requirement::EachDc { .. } | Requirement::AnyOrHint => false,
        };
        if local_only {
            live.filter(|n| self.dc_of(*n) == self.me.dc).collect()
        } else {
            live.collect()
        }
    }

    fn spawn_replica_read(
        &self,
        n: NodeIdx,
        dc: String,
        req: &ReadRequest,
        deadline: Instant,
        tx: mpsc::Sender<Answer<Option<SiblingSet>>>,
    ) {
        let (ks, key) = (req.keyspace.clone(), req.key.clone());
        let span = tracing::Span::current();
        if n == self.me.idx {
            let replica = self.replica.clone();
            tokio::spawn(tracing::Instrument::instrument(
                async move {
                    let res = replica.blocking(move |r| r.read(&ks, &key)).await;
                    let _ = tx
                        .send(Answer::Replica(n, dc, res.map_err(|e| e.to_string())))
                        .await;
                },
                span,
            ));
            return;
        }
        let peers = self.peers.clone();
        let timeout = deadline.saturating_duration_since(Instant::now());
        tokio::spawn(tracing::Instrument::instrument(
            async move {
                let msg = ReplicaReadRequest {
                    keyspace: ks,
                    key: key.to_vec(),
                };
                let res = match peers.replica_read(n, msg, timeout).await {
                    Ok(r) if r.found => SiblingSet::decode(&r.record)
                        .map(Some)
                        .map_err(|e| format!("{n:?}: bad record: {e}")),
                    Ok(_) => Ok(None),
                    Err(e) => Err(e.to_string()),
                };
                let _ = tx.send(Answer::Replica(n, dc, res)).await;
            },
            span,
        ));
    }

    /// Sends the merged state to every answering replica whose state differed.
    fn read_repair(
        &self,
        req: &ReadRequest,
        merged: &SiblingSet,
        answers: &[(NodeIdx, Option<SiblingSet>)],
    ) {
        let stale: Vec<NodeIdx> = answers
            .iter()
            .filter(|(_, s)| s.as_ref() != Some(merged))
            .map(|(n, _)| *n)
            .collect();
        if stale.is_empty() {
            return;
        }
        metrics::counter!("geokv_read_repairs_total").increment(stale.len() as u64);
        let mut record = Vec::with_capacity(merged.encoded_len());
        merged.encode(&mut record);
        for n in stale {
            let (ks, key) = (req.keyspace.clone(), req.key.clone());
            if n == self.me.idx {
                let replica = self.replica.clone();
                let m = merged.clone();
                tokio::spawn(async move {
                    let _ = replica.blocking(move |r| r.apply(&ks, &key, &m)).await;
                });
                continue;
            }
            let peers = self.peers.clone();
            let msg = ReplicaWriteRequest {
                keyspace: ks,
                key: key.to_vec(),
                record: record.clone(),
                coordinator: self.me.id.clone(),
            };
            let timeout = self.config.default_timeout;
            tokio::spawn(async move {
                if let Err(e) = peers.replica_write(n, msg, timeout).await {
                    tracing::debug!(error = %e, "read repair failed");
                }
            });
        }
    }
}
