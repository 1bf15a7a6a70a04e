//! One entry of an incoming `ReplicaBatch`, applied as a `ReplicaWrite`
//! would apply it (issue 14). Must not: apply an entry past its deadline,
//! or share one entry's outcome with another.

use super::decode;
use crate::proto::v1::internode::{ReplicaBatchEntry, ReplicaBatchResult};
use crate::replica::Replica;
use crate::transport::replica_batch::result_of;
use crate::view::stale_view;
use crate::view::Cluster;
use std::time::Duration;
use tonic::Status;

/// The entry applied (or refused), as its result on the wire.
pub(super) fn result(
    rep: &Replica,
    cluster: &Cluster,
    e: ReplicaBatchEntry,
    arrived: std::time::Instant,
) -> ReplicaBatchResult {
    result_of(apply_entry(rep, cluster, e, arrived))
}

/// One entry of a `ReplicaBatch`, as a `ReplicaWrite` would apply it: its
/// own deadline (refused, nothing applied, once past), view check and span
/// (joining its request's trace). Blocking: runs on the replica's site.
fn apply_entry(
    rep: &Replica,
    cluster: &Cluster,
    e: ReplicaBatchEntry,
    arrived: std::time::Instant,
) -> Result<(), Status> {
    let span = tracing::info_span!("internode", rpc = "replica_write", batched = true);
    crate::telemetry::adopt_traceparent(&span, &e.traceparent);
    let _in = span.enter();
    let r = (e.write).ok_or_else(|| Status::invalid_argument("an entry without a write"))?;
    if e.timeout_ms > 0 && arrived.elapsed() >= Duration::from_millis(u64::from(e.timeout_ms)) {
        let mut late =
            Status::deadline_exceeded("the entry's deadline passed before it was applied");
        late.metadata_mut().insert(
            crate::proto::APPLIED_METADATA,
            tonic::metadata::MetadataValue::from_static("no"),
        );
        return Err(late);
    }
    let set = decode(&r.record)?;
    let planned = stale_view::Planned {
        keyspace: &r.keyspace,
        key: &r.key,
        version: r.layout_version,
        digest: &r.layout_digest,
        targets: &r.targets,
    };
    stale_view::apply_checked(cluster, &planned, || rep.apply(&r.keyspace, &r.key, &set))
        .map(|_| ())
        .map_err(Status::from)
}
