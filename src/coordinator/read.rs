//! The read path of a coordinator: ask as many of the nearest live replicas
//! as the level needs (`read_targets` decides which), gather to the level
//! (one more replica when they are slower than the speculative-retry delay,
//! replacements when some fail, remote ones last for count levels), merge
//! their sibling sets by causality, and repair the replicas that answered
//! with stale state (asynchronously, off the request's path). Each replica
//! read carries the view's layout version and digest: a replica on a newer
//! view that no longer replicates the key refuses it (`stale_view`), and a
//! read that failed so is asked again on that view (`newer_view`). Replicas not
//! asked are left to hinted delivery and anti-entropy. The remote replica
//! reads are polled by the coordinator's own task while it gathers
//! ([`ReadCalls`]), not spawned one task each (issue 14); those still in
//! flight when the level is met are dropped (a read has nothing to settle).
//!
//! Must not: write anything but the read repair of replicas that answered, off the request's path.

use super::consistency::{AckCounts, OpKind};
use super::gather::{Answer, Gather, Step, Wait};
use super::newer_view::{Refusal, StaleSlot};
use super::read_targets::{Candidate, ReadTargets};
use super::{Coordinator, ReadRequest};
use crate::error::GeokvError;
use crate::replica::handle::{Handle, HandleError, Merge, PlannedOn};
use crate::ring::ReplicaSet;
use crate::topology::NodeIdx;
use crate::version::SiblingSet;
use crate::view::ClusterView;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// One replica read in flight, sending its answer to the gather.
type ReadCall<'a> = BoxFuture<'a, ()>;

/// The replica reads of one read, polled by the coordinator's task while
/// it waits for the gather (issue 14: no task per remote read).
#[derive(Default)]
struct ReadCalls<'a>(FuturesUnordered<ReadCall<'a>>);

/// How a read's gather asks its replicas: the first wave's calls, more
/// after `speculation` (doubling), until `deadline`.
struct Waves<'a> {
    speculation: Duration,
    deadline: Instant,
    calls: ReadCalls<'a>,
}

/// One read on one view: the view, the request, where replicas that refuse
/// it as planned on an older view are noted, and the request's deadline.
#[derive(Clone, Copy)]
struct OnView<'a> {
    view: &'a ClusterView,
    req: &'a ReadRequest,
    stale: &'a StaleSlot,
    deadline: Instant,
}

impl ReadCalls<'_> {
    /// Awaits `f`, polling the reads in flight meanwhile.
    async fn drive<T>(&mut self, f: impl std::future::Future<Output = T>) -> T {
        super::gather::drive(&mut self.0, f).await
    }
}

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
        let mut view = self.cluster.current();
        loop {
            let stale = StaleSlot::default();
            let res = self.read_on(&view, &req, deadline, &stale).await;
            let refused = stale.lock().take();
            // A read that failed with a refusal from a replica on a newer
            // view (it may have cleaned the key up) is asked again on that
            // view, within the deadline; each round is on a newer view.
            match (res, refused) {
                (Err(e), Some((peer, version))) => {
                    let refusal = Refusal {
                        peer: &peer,
                        version,
                    };
                    let Some(newer) = self.newer_view(refusal, view.rank(), deadline).await else {
                        return Err(e);
                    };
                    metrics::counter!("geokv_stale_view_retries_total").increment(1);
                    view = newer;
                }
                (Ok(out), Some((peer, version))) => {
                    self.refresh_after_refusal(peer, version, view.rank());
                    return Ok(out);
                }
                (res, None) => return res,
            }
        }
    }

    /// One read on `view`; replicas that refuse it as planned on an older
    /// view are noted in `stale`.
    async fn read_on(
        &self,
        view: &Arc<ClusterView>,
        req: &ReadRequest,
        deadline: Instant,
        stale: &StaleSlot,
    ) -> Result<ReadOutcome, GeokvError> {
        let (view, req) = (&**view, req);
        let plan = self.plan(
            view,
            &req.keyspace,
            &req.key,
            req.level,
            req.explicit,
            OpKind::Read,
        )?;
        let requirement = plan.requirement;
        let candidates = self.candidates(view, plan.replicas);
        let mut targets = ReadTargets::new(requirement.clone(), candidates);

        let (tx, rx) = mpsc::channel::<Answer<Option<SiblingSet>>>(plan.replicas.len().max(1));
        let mut pending: BTreeMap<String, u32> = BTreeMap::new();
        let mut calls = ReadCalls::default();
        let on = OnView {
            view,
            req,
            stale,
            deadline,
        };
        for c in targets.first_wave() {
            *pending.entry(c.dc.clone()).or_default() += 1;
            let call = self.replica_read(on, c.node, c.dc, tx.clone());
            calls.0.extend(call);
        }
        let timeout_ms = req.timeout.as_millis() as u64;
        let mut gather = Gather::new(
            Wait {
                level: req.level,
                req: requirement,
                op: OpKind::Read,
                deadline,
                timeout_ms,
            },
            rx,
            pending,
            AckCounts::default(),
        );
        let local_dc = self.me.dc.clone();
        let delay = self.config.read_speculation;
        let waves = Waves {
            speculation: delay,
            deadline,
            calls,
        };
        gather_read(&mut targets, &mut gather, waves, |c| {
            if c.dc != local_dc {
                metrics::counter!("geokv_remote_fallbacks_total", "op" => "read").increment(1);
            }
            self.replica_read(on, c.node, c.dc, tx.clone())
        })
        .await?;
        drop(tx);
        Ok(self.merge_answers(view, req, gather.into_gathered().ok))
    }

    /// The owners `replicas` nearest first, each with its datacenter and
    /// whether it is believed up.
    fn candidates(&self, view: &ClusterView, replicas: &ReplicaSet) -> Vec<Candidate> {
        (self.by_proximity(view, replicas).into_iter())
            .map(|node| Candidate {
                node,
                dc: view.ring.node(node).dc.clone(),
                up: self.is_up(view, node),
            })
            .collect()
    }

    /// The read's outcome from the replicas' `answers`: their sibling sets
    /// merged by causality, sent back to those that differ (read repair).
    fn merge_answers(
        &self,
        view: &ClusterView,
        req: &ReadRequest,
        answers: Vec<(NodeIdx, Option<SiblingSet>)>,
    ) -> ReadOutcome {
        let mut merged: Option<SiblingSet> = None;
        for s in answers.iter().filter_map(|(_, s)| s.as_ref()) {
            match &mut merged {
                Some(m) => m.merge(s),
                None => merged = Some(s.clone()),
            }
        }
        if let Some(m) = &merged {
            if m.siblings.len() > self.replica.max_siblings() {
                // Merges never drop siblings, so concurrent writers at
                // different replicas can briefly exceed the cap; count it.
                metrics::counter!("geokv_siblings_over_cap_total").increment(1);
            }
            self.read_repair(view, req, m, &answers);
        }
        ReadOutcome {
            set: merged,
            answered: answers.len() as u32,
        }
    }

    /// Reads replica `n`: this node's own copy at once (its answer is sent
    /// before this returns, `None`), a peer's by the returned call, which
    /// borrows the request and is polled by the gather's task.
    fn replica_read<'a>(
        &'a self,
        on: OnView<'a>,
        n: NodeIdx,
        dc: String,
        tx: mpsc::Sender<Answer<Option<SiblingSet>>>,
    ) -> Option<ReadCall<'a>> {
        let OnView {
            view,
            req,
            stale,
            deadline,
        } = on;
        let replica = Handle::at(view.ring.node(n), self.local(), &self.peers);
        if let Some(res) = replica.read_now(&req.keyspace, &req.key) {
            // Our own copy, read here with no task of its own (issue 14).
            // The channel holds an answer per replica of the plan, so the
            // send cannot wait; a gather that has already returned has
            // dropped the receiver.
            let _ = tx.try_send(Answer::Replica(n, dc, res));
            return None;
        }
        let timeout = deadline.saturating_duration_since(Instant::now());
        Some(Box::pin(async move {
            let digest = view.digest_bytes();
            let on = PlannedOn::view(view.version(), &digest);
            let got = (replica.read(&req.keyspace, &req.key, on, timeout)).await;
            if let Some(version) = got.as_ref().err().and_then(HandleError::stale_view) {
                let peer = view.ring.node(n);
                stale.lock().get_or_insert_with(|| (peer.clone(), version));
            }
            let answer = Answer::Replica(n, dc, got);
            let _ = tx.send(answer).await;
        }))
    }

    /// Sends the merged state to every answering replica whose state differed.
    fn read_repair(
        &self,
        view: &ClusterView,
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
        let merged = Arc::new((merged.clone(), bytes::Bytes::from(record)));
        for n in stale {
            let replica = Handle::at(view.ring.node(n), self.local(), &self.peers);
            let (ks, key, merged) = (req.keyspace.clone(), req.key.clone(), merged.clone());
            let timeout = self.config.default_timeout;
            let (version, digest) = (view.version(), view.digest_bytes());
            tokio::spawn(async move {
                let m = Merge {
                    keyspace: &ks,
                    key: &key,
                    set: &merged.0,
                    record: &merged.1,
                    // Decided in `view`: a replica that has moved on and
                    // no longer replicates the key refuses it.
                    planned: Some(PlannedOn::repair(version, &digest)),
                    repair: true,
                };
                if let Err(e) = replica.merge(m, timeout).await {
                    tracing::debug!(error = %e, "read repair failed");
                }
            });
        }
    }
}

/// Waits for the level: when `speculation` passes with the level unmet,
/// asks one more replica, and again after twice the previous delay
/// (Cassandra speculates once; asking on keeps the promise that a count
/// level whose local replicas hang reaches the remote ones well before the
/// deadline, and doubling keeps a cluster that is merely slow from being
/// asked for every replica); whenever the replicas still expected can no
/// longer meet it (some failed), asks replacements, and fails when none is
/// left. `ask` sends a read to one more replica, and returns its call if
/// it is still to be polled; `waves.calls` are those of the first wave.
/// The calls are polled while the gather waits; what is in flight once it
/// is done is dropped.
async fn gather_read<'a, T>(
    targets: &mut ReadTargets,
    gather: &mut Gather<T>,
    waves: Waves<'a>,
    mut ask: impl FnMut(Candidate) -> Option<ReadCall<'a>>,
) -> Result<(), GeokvError> {
    let Waves {
        speculation,
        deadline,
        mut calls,
    } = waves;
    let mut wait = speculation;
    let mut speculate_at = Some(Instant::now() + wait);
    loop {
        let until = speculate_at.map_or(deadline, |t| t.min(deadline));
        if calls.drive(gather.run(until)).await? == Step::Met {
            return Ok(());
        }
        let more: Vec<Candidate> = if gather.can_still_be_met() {
            // The delay passed: speculate, and again after twice as long.
            let next = targets.speculate(gather.acks());
            wait = wait.saturating_mul(2);
            speculate_at = next.as_ref().map(|_| Instant::now() + wait);
            if next.is_some() {
                metrics::counter!("geokv_speculative_reads_total").increment(1);
            }
            next.into_iter().collect()
        } else {
            let more = targets.replace_failed(gather.acks(), gather.pending());
            if more.is_empty() {
                return Err(gather.failed());
            }
            more
        };
        for c in more {
            gather.expect(&c.dc, 1);
            calls.0.extend(ask(c));
        }
    }
}

#[cfg(test)]
mod tests;
