//! An incoming `ReplicaReadBatch` (issue 14): each entry checked and read
//! on its own as a `ReplicaRead` would be (its deadline, the view it was
//! planned on), in a span of its own that joins its request's trace, and
//! answered with a result of its own, in order. The answers stop at
//! [`ANSWER_BUDGET`] record bytes (the first entry is always answered):
//! the rest are refused RESOURCE_EXHAUSTED, nothing read, and the caller
//! reads them alone. Point reads from the
//! memtable or block cache: run on the calling worker, as a single
//! `ReplicaRead` is. Must not: read an entry past its deadline, or share
//! one entry's refusal with another.

use crate::error::GeokvError;
use crate::proto::v1::internode::{
    ReplicaReadBatchEntry, ReplicaReadBatchResult, ReplicaReadRequest, ReplicaReadResponse,
};
use crate::replica::Replica;
use crate::transport::replica_batch::result_of;
use crate::view::stale_view;
use crate::view::ClusterView;
use std::time::Duration;

/// The most record bytes one batch answers (the rest are refused, to be
/// read alone): well under the peer port's 64 MiB message limit.
pub(super) const ANSWER_BUDGET: usize = 4 << 20;

/// Every entry read (or refused), as its result on the wire, in order.
pub(in crate::node) fn results(
    rep: &Replica,
    view: &ClusterView,
    entries: Vec<ReplicaReadBatchEntry>,
    arrived: std::time::Instant,
) -> Vec<ReplicaReadBatchResult> {
    let mut used = 0usize;
    let mut full = false;
    let refused = |e: GeokvError| ReplicaReadBatchResult {
        status: Some(result_of(Err(e.into()))),
        read: None,
    };
    let over = || GeokvError::OverAnswerBudget;
    (entries.into_iter())
        .map(|e| {
            if full {
                return refused(over());
            }
            match read(rep, view, e, arrived) {
                Ok(read) if used > 0 && used + read.record.len() > ANSWER_BUDGET => {
                    full = true;
                    refused(over())
                }
                Ok(read) => {
                    used += read.record.len().max(1);
                    ReplicaReadBatchResult {
                        status: None,
                        read: Some(read),
                    }
                }
                Err(s) => refused(s),
            }
        })
        .collect()
}

/// One entry, in a span of its own that joins its request's trace.
fn read(
    rep: &Replica,
    view: &ClusterView,
    e: ReplicaReadBatchEntry,
    arrived: std::time::Instant,
) -> Result<ReplicaReadResponse, GeokvError> {
    let span = tracing::info_span!("internode", rpc = "replica_read", batched = true);
    crate::telemetry::adopt_traceparent(&span, &e.traceparent);
    let _in = span.enter();
    let r: ReplicaReadRequest =
        (e.read).ok_or_else(|| GeokvError::InvalidArgument("an entry without a read".into()))?;
    if e.timeout_ms > 0 && arrived.elapsed() >= Duration::from_millis(u64::from(e.timeout_ms)) {
        return Err(GeokvError::ReadExpired);
    }
    let planned = (r.layout_version, &r.layout_digest[..]);
    if let Some(stale) = stale_view::check_read(view, &r.keyspace, &r.key, planned.0, planned.1) {
        metrics::counter!("geokv_stale_view_refusals_total").increment(1);
        return Err(stale);
    }
    Ok(match rep.read(&r.keyspace, &r.key)? {
        Some(set) => {
            let mut record = Vec::with_capacity(set.encoded_len());
            set.encode(&mut record);
            ReplicaReadResponse {
                record,
                found: true,
            }
        }
        None => ReplicaReadResponse::default(),
    })
}

#[cfg(test)]
mod tests;
