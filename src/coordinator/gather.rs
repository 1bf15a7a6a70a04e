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

/// One replica's answer: its node, datacenter and result.
pub(super) type Answer<T> = (NodeIdx, String, Result<T, String>);

/// The answers gathered once the level was met.
pub(super) struct Gathered<T> {
    pub ok: Vec<(NodeIdx, T)>,
    pub acks: AckCounts,
}

/// Gathers answers from `rx`. `pending` counts the requests in flight per
/// datacenter; `acks` the acknowledgements already obtained (e.g. the
/// coordinating replica's, or stored hints for ANY).
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
                if !errors.is_empty() {
                    detail = format!(" (failed: {})", errors.join("; "));
                }
                return Err(GeokvError::timeout(
                    level,
                    received(&acks),
                    req.total(),
                    timeout_ms,
                    detail,
                ));
            }
            Ok(Some((node, dc, res))) => {
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
        }
    }
}

fn received(acks: &AckCounts) -> u32 {
    acks.per_dc.values().sum::<u32>() + acks.hints
}
