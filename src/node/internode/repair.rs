//! Anti-entropy's internode calls (`Merkle`, `RangeScan`): the request
//! checked and decoded, the replica's leaves or page read on a blocking
//! thread. Must not: compare trees or decide what to repair (`repair`).

use super::InternodeService;
use crate::engine::CallSite::BlockingPool;
use crate::error::GeokvError;
use crate::proto::v1::internode::*;
use tonic::{Request, Response, Status};
use tracing::Instrument;

/// `Merkle`: the leaves of one range's tree on this replica.
pub(super) async fn merkle(
    svc: &InternodeService,
    req: Request<MerkleRequest>,
) -> Result<Response<MerkleResponse>, Status> {
    let span = svc.admit(&req, "merkle")?;
    let r = req.into_inner();
    // 2^depth hashers are allocated: a deeper request is refused.
    crate::replica::merkle::check_depth(r.depth)
        .map_err(|e| GeokvError::InvalidArgument(e.to_string()))?;
    let replica = svc.replica.clone();
    let leaves = BlockingPool
        .run(move || {
            let range = crate::ring::TokenRange::new(r.range_start, r.range_end);
            replica.merkle_leaves(&r.keyspace, range, r.depth)
        })
        .instrument(span)
        .await
        .map_err(|e| GeokvError::Internal(e.to_string()))?
        .map_err(GeokvError::from)?;
    Ok(Response::new(MerkleResponse { leaves }))
}

/// `RangeScan`: one page of a range's rows on this replica.
pub(super) async fn range_scan(
    svc: &InternodeService,
    req: Request<RangeScanRequest>,
) -> Result<Response<RangeScanResponse>, Status> {
    let span = svc.admit(&req, "range_scan")?;
    let r = req.into_inner();
    let replica = svc.replica.clone();
    let limit = r.limit.clamp(1, 10_000) as usize;
    let (rows, more) = BlockingPool
        .run(move || {
            let after = (!r.after_key.is_empty()).then_some(r.after_key.as_slice());
            let range = crate::ring::TokenRange::new(r.range_start, r.range_end);
            replica.scan_page(&r.keyspace, range, after, limit)
        })
        .instrument(span)
        .await
        .map_err(|e| GeokvError::Internal(e.to_string()))?
        .map_err(GeokvError::from)?;
    let items = rows
        .into_iter()
        .map(|(key, set)| {
            let mut record = Vec::with_capacity(set.encoded_len());
            set.encode(&mut record);
            VersionedValue {
                keyspace: Vec::new(),
                key,
                record,
            }
        })
        .collect();
    Ok(Response::new(RangeScanResponse { items, more }))
}
