//! Waiting for a consistency level: collects replica answers from a channel
//! until the requirement is met, can no longer be met with the answers still
//! expected, or a time passes, and says precisely which happened (garage's
//! `try_call_many` and its `Quorum(quorum, ok, total, errors)` error are the
//! model).
//!
//! A caller may stop early (`until`) or when the answers still expected can
//! no longer meet the level, ask more replicas ([`Gather::expect`]) and go
//! on waiting: that is how count levels fall back to remote replicas.
//!
//! Acknowledgements count replicas only; stored hints are reported next to
//! them (they meet ANY, nothing else). Every error here is raised after the
//! request was sent, so none is `UNAVAILABLE` (see `error`).
//!
//! Must not: send anything, or decide whom to ask (its callers do).

use super::consistency::{AckCounts, ConsistencyLevel, OpKind, Requirement};
use crate::error::GeokvError;
use crate::hints::waiters::StreamFailure;
use crate::replica::handle::HandleError;
use crate::topology::NodeIdx;
use std::collections::BTreeMap;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// An answer towards a level.
pub(super) enum Answer<T> {
    /// One replica's answer: its node, datacenter and result.
    Replica(NodeIdx, String, Result<T, HandleError>),
    /// A hint was stored for a replica that failed (reported, not an ack;
    /// its failure comes as its own answer).
    Hint,
    /// A datacenter's answer through its hinted stream: of the `settles`
    /// replicas there, how many applied the write.
    Stream {
        dc: String,
        settles: u32,
        result: Result<u32, StreamFailure>,
    },
}

/// The answers gathered once the level was met.
pub(super) struct Gathered<T> {
    pub ok: Vec<(NodeIdx, T)>,
    pub acks: AckCounts,
}

/// Where a wait stopped without an error.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Step {
    /// The level is met.
    Met,
    /// Not met: the answers still expected cannot meet it, or `until`
    /// passed. Ask more replicas, or give up with [`Gather::failed`].
    Short,
}

/// What a wait is for: the level and its requirement, the kind of request
/// (a write's errors say it may have been applied), and its deadline.
pub(super) struct Wait {
    pub level: ConsistencyLevel,
    pub req: Requirement,
    pub op: OpKind,
    pub deadline: Instant,
    /// The request's timeout, as its error reports it.
    pub timeout_ms: u64,
}

/// An ongoing wait for a level.
pub(super) struct Gather<T> {
    level: ConsistencyLevel,
    req: Requirement,
    op: OpKind,
    rx: mpsc::Receiver<Answer<T>>,
    /// Answers still to come, per datacenter (a stream answer settles several).
    pending: BTreeMap<String, u32>,
    acks: AckCounts,
    ok: Vec<(NodeIdx, T)>,
    errors: Vec<String>,
    deadline: Instant,
    timeout_ms: u64,
}

impl<T> Gather<T> {
    /// A wait on `rx` for `wait`. `pending` counts the answers to come per
    /// datacenter; `acks` those already obtained (the coordinating
    /// replica's own, hints stored).
    pub fn new(
        wait: Wait,
        rx: mpsc::Receiver<Answer<T>>,
        pending: BTreeMap<String, u32>,
        acks: AckCounts,
    ) -> Self {
        let Wait {
            level,
            req,
            op,
            deadline,
            timeout_ms,
        } = wait;
        Gather {
            level,
            req,
            op,
            rx,
            pending,
            acks,
            ok: Vec::new(),
            errors: Vec::new(),
            deadline,
            timeout_ms,
        }
    }

    /// `n` more answers will come from `dc`.
    pub fn expect(&mut self, dc: &str, n: u32) {
        *self.pending.entry(dc.to_string()).or_default() += n;
    }

    /// Waits until the level is met, cannot be met with the answers still
    /// expected, or `until` passes (all `Ok`); past the deadline, the
    /// timeout error.
    pub async fn run(&mut self, until: Instant) -> Result<Step, GeokvError> {
        loop {
            if self.req.is_met(&self.acks) {
                return Ok(Step::Met);
            }
            if !self.req.can_still_be_met(&self.acks, &self.pending) {
                return Ok(Step::Short);
            }
            let stop = until.min(self.deadline);
            match tokio::time::timeout_at(stop, self.rx.recv()).await {
                Ok(Some(answer)) => self.take(answer),
                Err(_) if stop < self.deadline => return Ok(Step::Short),
                Err(_) | Ok(None) => return Err(self.timed_out()),
            }
        }
    }

    fn take(&mut self, answer: Answer<T>) {
        match answer {
            Answer::Hint => self.acks.hints += 1,
            Answer::Replica(node, dc, res) => {
                if let Some(p) = self.pending.get_mut(&dc) {
                    *p = p.saturating_sub(1);
                }
                match res {
                    Ok(v) => {
                        *self.acks.per_dc.entry(dc).or_default() += 1;
                        self.ok.push((node, v));
                    }
                    Err(e) => self.errors.push(e.to_string()),
                }
            }
            Answer::Stream {
                dc,
                settles,
                result,
            } => {
                if let Some(p) = self.pending.get_mut(&dc) {
                    *p = p.saturating_sub(settles);
                }
                match result {
                    Ok(n) => *self.acks.per_dc.entry(dc).or_default() += n.min(settles),
                    Err(e) => self.errors.push(format!("{dc} stream: {e}")),
                }
            }
        }
    }

    /// Whether the answers still expected could meet the level.
    pub fn can_still_be_met(&self) -> bool {
        self.req.is_met(&self.acks) || self.req.can_still_be_met(&self.acks, &self.pending)
    }

    /// Acknowledgements so far.
    pub fn acks(&self) -> &AckCounts {
        &self.acks
    }

    /// Answers still expected, per datacenter.
    pub fn pending(&self) -> &BTreeMap<String, u32> {
        &self.pending
    }

    /// Replica acknowledgements so far (hints not counted).
    pub fn received(&self) -> u32 {
        self.acks.per_dc.values().sum()
    }

    fn hints_note(&self) -> String {
        match self.acks.hints {
            0 => String::new(),
            n => format!(" ({n} hint(s) stored for replicas that are down or failed)"),
        }
    }

    fn timed_out(&self) -> GeokvError {
        let mut detail = String::new();
        let short = self.req.shortfall(&self.acks);
        if !short.is_empty() {
            detail = format!(" ({short})");
        }
        if !self.errors.is_empty() {
            detail.push_str(&format!(" (failed: {})", self.errors.join("; ")));
        }
        detail.push_str(&self.hints_note());
        GeokvError::timeout(
            self.level,
            self.received(),
            self.req.total(),
            self.timeout_ms,
            detail,
            self.op == OpKind::Write,
        )
    }

    /// The error for a level that can no longer be met.
    pub fn failed(&self) -> GeokvError {
        GeokvError::QuorumFailed {
            level: self.level.name().to_string(),
            received: self.received(),
            required: self.req.total(),
            detail: format!("{}{}", self.errors.join("; "), self.hints_note()),
            write: self.op == OpKind::Write,
        }
    }

    /// The answers, once the level is met.
    pub fn into_gathered(self) -> Gathered<T> {
        Gathered {
            ok: self.ok,
            acks: self.acks,
        }
    }
}

/// Awaits `f`, polling the replica calls in flight meanwhile (the write
/// fan-out's and the read's: no task per call, issue 14).
pub(super) async fn drive<'a, T>(
    calls: &mut futures::stream::FuturesUnordered<futures::future::BoxFuture<'a, ()>>,
    f: impl std::future::Future<Output = T>,
) -> T {
    use futures::StreamExt as _;
    tokio::pin!(f);
    loop {
        tokio::select! {
            biased;
            out = &mut f => return out,
            Some(()) = calls.next(), if !calls.is_empty() => {}
        }
    }
}

#[cfg(test)]
mod tests;
