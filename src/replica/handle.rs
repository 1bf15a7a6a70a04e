//! One replica of a key wherever it lives: this node's [`Replica`] or a
//! peer's, reached over `transport::Peers`. The one place that chooses
//! between calling the engine here and sending an internode RPC, for every
//! caller that reads, merges or scans a replica (the coordinator's fan-out,
//! reads and read repair, the stream receiver, repair sessions).
//!
//! Both arms do the same thing: a merge here is [`Replica::apply`], a merge
//! at a peer is `ReplicaWrite` (which the peer serves with
//! [`Replica::apply`]); likewise reads, Merkle leaves and range scans.
//!
//! Must not: choose which replicas to ask, retry, hint, or count
//! acknowledgements (the callers do); or touch the engine except through
//! [`Replica`].

mod here;
mod merge;

pub use here::Placed;
pub use merge::write_request;
pub use merge::{Merge, PlannedOn};

use super::{Replica, Row};
use crate::engine::{CallSite, EngineError};
use crate::error::GeokvError;
use crate::proto::v1::internode::{
    MerkleRequest, RangeScanRequest, ReplicaReadRequest, ReplicaWriteRequest,
};
use crate::token::TokenRange;
use crate::topology::NodeInfo;
use crate::transport::{Peers, TransportError};
use crate::version::SiblingSet;
use crate::view::stale_view::{self, Decided, Planned};
use crate::view::Cluster;
use futures::{StreamExt, TryStreamExt};
use std::sync::Arc;
use std::time::Duration;

/// Why a call on a replica failed.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// This node's replica refused or failed (a read or a merge).
    #[error(transparent)]
    Local(#[from] GeokvError),
    /// Scanning this node's engine failed.
    #[error(transparent)]
    Storage(#[from] EngineError),
    /// The peer did not answer, or refused.
    #[error(transparent)]
    Peer(#[from] TransportError),
    /// The peer answered something that cannot be used (a bad record).
    #[error("{peer}: {detail}")]
    BadReply { peer: String, detail: String },
    /// A blocking task panicked or was cancelled.
    #[error("{0}")]
    Task(String),
}

impl HandleError {
    /// The peer's layout version when it refused a write planned on an
    /// older view (`view::stale_view`): nothing was applied.
    pub fn stale_view(&self) -> Option<u64> {
        match self {
            HandleError::Peer(TransportError::StaleView { version, .. }) => Some(*version),
            _ => None,
        }
    }
}

/// This node's replica and the cluster whose view checks its merges, for
/// [`Handle::at`].
#[derive(Clone, Copy)]
pub struct Local<'a> {
    pub replica: &'a Arc<Replica>,
    pub cluster: &'a Cluster,
}

/// One replica: this node's own (with the cluster whose view in force
/// checks the merges it is given), or a peer reached over `Peers`.
#[derive(Clone)]
pub enum Handle {
    Here(Arc<Replica>, Cluster),
    Peer { peers: Arc<Peers>, node: NodeInfo },
}

impl Handle {
    /// `node`'s replica: `here` when `node` is this node (`peers.me()`),
    /// otherwise the peer over `peers`.
    pub fn at(node: &NodeInfo, here: Local<'_>, peers: &Arc<Peers>) -> Handle {
        if node.id == peers.me().id {
            Handle::Here(here.replica.clone(), here.cluster.clone())
        } else {
            Handle::Peer {
                peers: peers.clone(),
                node: node.clone(),
            }
        }
    }

    /// Whether this is this node's own replica.
    pub fn is_here(&self) -> bool {
        matches!(self, Handle::Here(..))
    }

    /// Merges `m` (idempotent, order-free). Here on the replica's call
    /// site ([`Replica::blocking`]), checked as a peer checks it
    /// ([`stale_view::apply_checked`]); at a peer by a `ReplicaWrite` of its
    /// own, naming this node as the coordinator, **outside** the peer's
    /// batching lane: node hints, read repair, movement and repair pages
    /// neither wait behind client writes in that lane (head of line
    /// blocking: a stalled peer holds its lane) nor take its room (issue
    /// 14). Client writes (the coordinator's fan-out, and another
    /// datacenter's through its stream) use [`Handle::merge_batched`].
    pub async fn merge(&self, m: Merge<'_>, timeout: Duration) -> Result<(), HandleError> {
        match self {
            Handle::Here(replica, cluster) => {
                let owned = here::Owned {
                    keyspace: m.keyspace.to_string(),
                    key: m.key.to_vec(),
                    set: m.set.clone(),
                };
                let decided = m.planned.map(|p| Decided {
                    repair: m.repair,
                    ..Decided::from(p)
                });
                Ok(here::merge(replica, cluster, owned, decided, None).await?)
            }
            Handle::Peer { peers, node } => {
                let msg = write_request(&peers.me().id, m);
                Ok(peers.replica_write(node, msg, timeout).await?)
            }
        }
    }

    /// [`Handle::merge`] of a client write (the coordinator's fan-out, a
    /// stream entry from another datacenter):
    /// at a peer batched with the other client writes to that peer that
    /// queue while a call to it is in flight (issue 14,
    /// `transport::replica_batch`).
    pub async fn merge_batched(&self, m: Merge<'_>, timeout: Duration) -> Result<(), HandleError> {
        match self {
            Handle::Here(..) => self.merge(m, timeout).await,
            Handle::Peer { peers, node } => {
                let msg = write_request(&peers.me().id, m);
                Ok(peers.replica_write_batched(node, msg, timeout).await?)
            }
        }
    }

    /// [`Handle::merge_batched`] of a write whose request to a peer,
    /// `write` ([`write_request`] of `m`), is built once and shared by
    /// every replica call of its fan-out (issue 14: no copy per peer).
    pub async fn merge_shared(
        &self,
        m: Merge<'_>,
        write: &Arc<ReplicaWriteRequest>,
        timeout: Duration,
    ) -> Result<(), HandleError> {
        match self {
            Handle::Here(..) => self.merge(m, timeout).await,
            Handle::Peer { peers, node } => {
                let write = write.clone();
                Ok(peers.replica_write_batched(node, write, timeout).await?)
            }
        }
    }

    /// The replica's copy of a key, read now when it is this node's (a
    /// point read from the memtable or block cache takes microseconds, and
    /// needs no task of its own: issue 14); `None` for a peer, whose copy
    /// [`Handle::read`] must await.
    pub fn read_now(
        &self,
        keyspace: &str,
        key: &[u8],
    ) -> Option<Result<Option<SiblingSet>, HandleError>> {
        match self {
            Handle::Here(replica, _) => Some(replica.read(keyspace, key).map_err(Into::into)),
            Handle::Peer { .. } => None,
        }
    }

    /// The replica's copy of a key; a peer is told the view the read was
    /// planned on (`on`: its version and digest), and refuses if it is newer and
    /// places the key elsewhere. A peer's read is one call, unless the
    /// node runs with `GEOKV_BATCH_READS=1` (an A/B switch, off by default:
    /// it cost more CPU per get, BENCHMARKS.md); then it is batched with the
    /// other reads of that peer queued while a call to it is in flight, in a
    /// lane of their own (`transport::read_batch`), never behind its writes.
    pub async fn read(
        &self,
        keyspace: &str,
        key: &[u8],
        on: PlannedOn<'_>,
        timeout: Duration,
    ) -> Result<Option<SiblingSet>, HandleError> {
        let (peers, node) = match self {
            Handle::Here(replica, _) => return Ok(replica.read(keyspace, key)?),
            Handle::Peer { peers, node } => (peers, node),
        };
        let msg = ReplicaReadRequest {
            keyspace: keyspace.to_string(),
            key: key.to_vec(),
            layout_version: on.version,
            layout_digest: on.digest.to_vec(),
        };
        // One call per read unless the read lane is turned on
        // (`Peers::batch_reads`, an experiment): the lane showed no CPU
        // gain per get in its A/B (BENCHMARKS.md), and a queued read waits
        // behind the call in flight.
        let r = if peers.batch_reads() {
            peers.replica_read_batched(node, msg, timeout).await?
        } else {
            peers.replica_read(node, msg, timeout).await?
        };
        if !r.found {
            return Ok(None);
        }
        SiblingSet::decode(&r.record)
            .map(Some)
            .map_err(|e| bad_reply(node, format!("bad record: {e}")))
    }

    /// The leaves of the replica's Merkle tree of `depth` over `range`
    /// (here on a blocking thread: it scans the whole range).
    pub async fn leaves(
        &self,
        keyspace: &str,
        range: TokenRange,
        depth: u32,
        timeout: Duration,
    ) -> Result<Vec<Vec<u8>>, HandleError> {
        match self {
            Handle::Here(replica, _) => {
                let (replica, ks) = (replica.clone(), keyspace.to_string());
                CallSite::BlockingPool
                    .run(move || replica.merkle_leaves(&ks, range, depth))
                    .await
                    .map_err(|e| HandleError::Task(e.to_string()))?
                    .map_err(HandleError::from)
            }
            Handle::Peer { peers, node } => {
                let req = MerkleRequest {
                    keyspace: keyspace.to_string(),
                    range_start: range.start,
                    range_end: range.end,
                    depth,
                };
                Ok(peers.merkle(node, req, timeout).await?.leaves)
            }
        }
    }

    /// One page of the replica's rows in `range` after `after`: at most
    /// `limit` rows, and whether more follow.
    pub async fn scan(
        &self,
        keyspace: &str,
        range: TokenRange,
        after: Option<Vec<u8>>,
        limit: u32,
        timeout: Duration,
    ) -> Result<(Vec<Row>, bool), HandleError> {
        match self {
            Handle::Here(replica, _) => {
                let (replica, ks) = (replica.clone(), keyspace.to_string());
                CallSite::BlockingPool
                    .run(move || replica.scan_page(&ks, range, after.as_deref(), limit as usize))
                    .await
                    .map_err(|e| HandleError::Task(e.to_string()))?
                    .map_err(HandleError::from)
            }
            Handle::Peer { peers, node } => {
                let req = RangeScanRequest {
                    keyspace: keyspace.to_string(),
                    range_start: range.start,
                    range_end: range.end,
                    limit,
                    after_key: after.unwrap_or_default(),
                };
                let r = peers.range_scan(node, req, timeout).await?;
                let rows = (r.items.into_iter())
                    .map(|v| match SiblingSet::decode(&v.record) {
                        Ok(set) => Ok((v.key, set)),
                        Err(e) => Err(bad_reply(
                            node,
                            format!("undecodable record in a range scan: {e}"),
                        )),
                    })
                    .collect::<Result<Vec<Row>, HandleError>>()?;
                Ok((rows, r.more))
            }
        }
    }

    /// Merges a page of rows (anti-entropy, movement), each checked
    /// against `planned` like [`Handle::merge`] (`None`: in any view): here
    /// in one atomic batch on the blocking pool (a page is many keys;
    /// nothing applied if one row is refused); at a peer one `ReplicaWrite`
    /// per row, `concurrency` at a time, outside the batching lane of
    /// client writes.
    pub async fn merge_page(
        &self,
        keyspace: &str,
        rows: Vec<Row>,
        (planned, concurrency): (Option<PlannedOn<'_>>, usize),
        timeout: Duration,
    ) -> Result<(), HandleError> {
        match self {
            Handle::Here(replica, cluster) => {
                let ks = keyspace.to_string();
                // Every page is a repair's or a movement's.
                let decided = planned.map(|p| Decided {
                    repair: true,
                    ..Decided::from(p)
                });
                let cluster = cluster.clone();
                replica
                    .on_pool(move |r| match decided {
                        None => r.apply_page(&ks, &rows),
                        Some(d) => {
                            let ws: Vec<Planned<'_>> =
                                rows.iter().map(|(k, _)| d.of_key(&ks, k)).collect();
                            stale_view::apply_all_checked(&cluster, &ws, || {
                                r.apply_page(&ks, &rows)
                            })
                        }
                    })
                    .await?;
            }
            Handle::Peer { .. } => {
                futures::stream::iter(rows)
                    .map(|(key, set)| async move {
                        let mut record = Vec::with_capacity(set.encoded_len());
                        set.encode(&mut record);
                        let record = bytes::Bytes::from(record);
                        let m = Merge {
                            keyspace,
                            key: &key,
                            set: &set,
                            record: &record,
                            planned,
                            repair: true,
                        };
                        self.merge(m, timeout).await
                    })
                    .buffer_unordered(concurrency.max(1))
                    .try_collect::<Vec<()>>()
                    .await?;
            }
        }
        Ok(())
    }
}

fn bad_reply(node: &NodeInfo, detail: String) -> HandleError {
    HandleError::BadReply {
        peer: node.id.clone(),
        detail,
    }
}

#[cfg(test)]
mod tests;
