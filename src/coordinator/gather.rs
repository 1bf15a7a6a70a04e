//! Waiting for a consistency level: collects replica answers from a channel
//! until the requirement is met, can no longer be met, or the deadline passes,
//! and says precisely which of the three happened (garage's `try_call_many`
//! and its `Quorum(quorum, ok, total, errors)` error are the model).

use super::consistency::{AckCounts, ConsistencyLevel, Requirement};
use crate::error::GeokvError;
use crate::topology::NodeIdx;
use std::collections::BTreeMap;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// An answer towards a level.
pub(super) enum Answer<T> {
    /// One replica's answer: its node, datacenter and result.
    Replica(NodeIdx, String, Result<T, String>),
    /// A datacenter's answer through its hinted stream: of the `settles`
    /// replicas there, how many applied the write.
    Stream {
        dc: String,
        settles: u32,
        result: Result<u32, String>,
    },
}

/// The answers gathered once the level was met.
pub(super) struct Gathered<T> {
    pub ok: Vec<(NodeIdx, T)>,
    pub acks: AckCounts,
}

/// Gathers answers from `rx`. `pending` counts the replicas per datacenter
/// whose answer is still to come (a stream answer settles several at once);
/// `acks` the acknowledgements already obtained (e.g. the coordinating
/// replica's, or stored hints for ANY).
pub(super) async fn gather<T>(
    level: ConsistencyLevel,
    req: &Requirement,
    mut rx: mpsc::Receiver<Answer<T>>,
    mut pending: BTreeMap<String, u32>,
    mut acks: AckCounts,
    deadline: Instant,
    timeout_ms: u64,
) -> Result<Gathered<T>, GeokvError> {
    let mut ok = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    loop {
        if req.is_met(&acks) {
            return Ok(Gathered { ok, acks });
        }
        if !req.can_still_be_met(&acks, &pending) {
            return Err(GeokvError::QuorumFailed {
                level: level.name().to_string(),
                received: received(&acks),
                required: req.total(),
                detail: errors.join("; "),
            });
        }
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Err(_) | Ok(None) => {
                let mut detail = String::new();
                let short = req.shortfall(&acks);
                if !short.is_empty() {
                    detail = format!(" ({short})");
                }
                if !errors.is_empty() {
                    detail.push_str(&format!(" (failed: {})", errors.join("; ")));
                }
                return Err(GeokvError::timeout(
                    level,
                    received(&acks),
                    req.total(),
                    timeout_ms,
                    detail,
                ));
            }
            Ok(Some(Answer::Replica(node, dc, res))) => {
                if let Some(p) = pending.get_mut(&dc) {
                    *p = p.saturating_sub(1);
                }
                match res {
                    Ok(v) => {
                        *acks.per_dc.entry(dc).or_default() += 1;
                        ok.push((node, v));
                    }
                    Err(e) => errors.push(e),
                }
            }
            Ok(Some(Answer::Stream {
                dc,
                settles,
                result,
            })) => {
                if let Some(p) = pending.get_mut(&dc) {
                    *p = p.saturating_sub(settles);
                }
                match result {
                    Ok(n) => *acks.per_dc.entry(dc).or_default() += n.min(settles),
                    Err(e) => errors.push(format!("{dc} stream: {e}")),
                }
            }
        }
    }
}

fn received(acks: &AckCounts) -> u32 {
    acks.per_dc.values().sum::<u32>() + acks.hints
}
