//! An incoming `ReplicaBatch` (issue 14): each entry checked on its own as
//! a `ReplicaWrite` would be (its deadline, the view it was planned on, its
//! record), then every entry that passed applied in **one** engine write
//! ([`Replica::apply_all`]: one WAL sync under `Durability::Sync`), all
//! under one view, as a single write's check and apply are. Must not:
//! apply an entry past its deadline, or share one entry's refusal with
//! another (only the shared engine write's failure is every applied
//! entry's).

use super::decode;
use crate::error::GeokvError;
use crate::proto::v1::internode::{ReplicaBatchEntry, ReplicaBatchResult, ReplicaWriteRequest};
use crate::replica::{BatchWrite, Replica};
use crate::transport::replica_batch::result_of;
use crate::version::SiblingSet;
use crate::view::stale_view;
use crate::view::{Cluster, ClusterView};
use std::time::Duration;
use tonic::Status;

/// Every entry applied (or refused), as its result on the wire, in order.
/// Blocking: runs on the replica's site.
pub(in crate::node) fn results(
    rep: &Replica,
    cluster: &Cluster,
    entries: Vec<ReplicaBatchEntry>,
    arrived: std::time::Instant,
) -> Vec<ReplicaBatchResult> {
    // The engine write the entries share, in a span of its own that each
    // entry's span (its own checks only) follows from.
    let apply = tracing::info_span!("replica_batch_apply", entries = entries.len());
    cluster.with_current(|view| {
        let checked: Vec<Result<(ReplicaWriteRequest, SiblingSet), Status>> = (entries.into_iter())
            .map(|e| check(view, e, arrived, &apply))
            .collect();
        let writes: Vec<BatchWrite<'_>> = (checked.iter().flatten())
            .map(|(r, set)| (r.keyspace.as_str(), &r.key[..], set))
            .collect();
        // A cleanup that has not deleted yet sees it and keeps the ranges a
        // newer layout may give this node (as `stale_view::apply_checked`).
        if let Some(v) = (checked.iter().flatten())
            .map(|(r, _)| r.layout_version)
            .max()
        {
            cluster.note_planned(v);
        }
        let (applied, write) = apply.in_scope(|| rep.apply_all(&writes));
        let write = write.map_err(Status::from);
        let mut applied = applied.into_iter();
        (checked.into_iter())
            .map(|c| {
                result_of(c.and_then(|_| match applied.next() {
                    Some(Ok(())) => write.clone(),
                    Some(Err(e)) => Err(e.into()),
                    None => Err(GeokvError::Internal("an entry without a result".into()).into()),
                }))
            })
            .collect()
    })
}

/// One entry's own checks, in a span of its own that joins its request's
/// trace and follows from the batch's `apply` span: its deadline (refused,
/// nothing applied, once past), its record, and the view it was planned on.
fn check(
    view: &ClusterView,
    e: ReplicaBatchEntry,
    arrived: std::time::Instant,
    apply: &tracing::Span,
) -> Result<(ReplicaWriteRequest, SiblingSet), Status> {
    let span = tracing::info_span!("internode", rpc = "replica_write", batched = true);
    crate::telemetry::adopt_traceparent(&span, &e.traceparent);
    span.follows_from(apply);
    let _in = span.enter();
    let r =
        (e.write).ok_or_else(|| GeokvError::InvalidArgument("an entry without a write".into()))?;
    if e.timeout_ms > 0 && arrived.elapsed() >= Duration::from_millis(u64::from(e.timeout_ms)) {
        return Err(GeokvError::Expired.into());
    }
    let set = decode(&r.record)?;
    let planned = stale_view::Planned {
        keyspace: &r.keyspace,
        key: &r.key,
        version: r.layout_version,
        digest: &r.layout_digest,
        targets: &r.targets,
        repair: r.repair,
    };
    if let Some(stale) = stale_view::check(view, &planned) {
        stale_view::refused(planned.kind());
        return Err(stale.into());
    }
    Ok((r, set))
}

#[cfg(test)]
mod tests;
