//! The internode gRPC service: decodes peer requests, refuses links cut by
//! fault injection, adopts the caller's trace context, and hands the work to
//! the replica, the coordinator (forwarded writes), the hint receiver,
//! gossip or repair. It lives with the node, the one module allowed to know
//! every subsystem, so `transport` below it owns only channels and no
//! subsystem depends on another through it. A subsystem with calls of its
//! own is served from its own file: `streams` (hinted streams), `repair`
//! (anti-entropy), `batch`/`read_batch` (replica batches). Must not hold
//! logic of its own beyond decoding.

use crate::consistency::ConsistencyLevel;
use crate::coordinator::{Coordinator, WriteRequest};
use crate::error::GeokvError;
use crate::hints::receive::Receiver;
use crate::membership::Gossiper;
use crate::mutation::Mutation;
use crate::proto::v1::internode::internode_server::Internode;
use crate::proto::v1::internode::*;
use crate::replica::Replica;
use crate::transport::faults::Faults;
use crate::transport::tls;
use crate::transport::FROM_HEADER;
use crate::version::{CausalContext, SiblingSet};
use crate::view::acceptor;
use crate::view::stale_view;
use crate::view::sync::LayoutSync;
use crate::view::Cluster;
use std::sync::Arc;
use std::time::Duration;
use tonic::{Request, Response, Status};
use tracing::Instrument;

// Visible to `node` for the decoder properties (`super::decoders`).
pub(super) mod batch;
pub(super) mod read_batch;
mod repair;
mod streams;

use streams::Acks;

/// Serves internode calls for one node.
pub struct InternodeService {
    pub cluster: Cluster,
    /// Layout versions on gossip, `GetLayout` and `PushLayout`.
    pub layout: Arc<LayoutSync>,
    pub replica: Arc<Replica>,
    /// Coordinates writes forwarded by nodes that do not replicate the key.
    pub coordinator: Arc<Coordinator>,
    pub receiver: Receiver,
    pub gossiper: Gossiper,
    pub faults: Arc<Faults>,
    /// The auth state (`SyncAuth`).
    pub auth: Arc<crate::security::auth::Auth>,
}

impl InternodeService {
    /// Refuses calls from a peer whose link is cut; returns the request span.
    fn admit<T>(&self, req: &Request<T>, name: &'static str) -> Result<tracing::Span, Status> {
        let from = req
            .metadata()
            .get(FROM_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let view = self.cluster.current();
        let from_dc = match view.node(from) {
            Some(peer) if self.faults.incoming_cut(peer) => {
                let from = format!("from {from} ");
                return Err(GeokvError::LinkCut { from }.into());
            }
            Some(peer) => peer.dc.clone(),
            None => "unknown".to_string(),
        };
        metrics::counter!("geokv_internode_requests_total", "rpc" => name, "from_dc" => from_dc)
            .increment(1);
        let span = tracing::info_span!("internode", rpc = name, from = %from);
        crate::telemetry::adopt_remote_parent(&span, req.metadata());
        Ok(span)
    }
}

/// A replica write's record; one that does not decode is refused before
/// anything is applied.
fn decode(record: &[u8]) -> Result<SiblingSet, GeokvError> {
    SiblingSet::decode(record).map_err(|e| GeokvError::InvalidArgument(format!("bad record: {e}")))
}

/// The write a forwarded `CoordinateWrite` asks for; a level or context
/// that does not decode is refused before anything is coordinated.
pub(super) fn write_request(r: CoordinateWriteRequest) -> Result<WriteRequest, GeokvError> {
    let level = (r.level.parse::<ConsistencyLevel>())
        .map_err(|e| GeokvError::InvalidArgument(e.to_string()))?;
    let context = CausalContext::decode_context(&r.context)?;
    Ok(WriteRequest {
        mutation: Mutation {
            keyspace: r.keyspace,
            key: bytes::Bytes::from(r.key),
            value: r.value.map(bytes::Bytes::from),
            context,
        },
        level,
        explicit: (r.explicit_count > 0).then_some(r.explicit_count),
        timeout: Duration::from_millis(u64::from(r.timeout_ms.max(1))),
    })
}

#[tonic::async_trait]
impl Internode for InternodeService {
    async fn replica_write(
        &self,
        req: Request<ReplicaWriteRequest>,
    ) -> Result<Response<ReplicaWriteResponse>, Status> {
        let span = self.admit(&req, "replica_write")?;
        let r = req.into_inner();
        // The coordinating node (today always the sender, `from`): named on
        // this replica's apply span, so its trace and logs say whose client
        // write it applied.
        let span = tracing::info_span!(parent: &span, "replica_apply",
            coordinator = %r.coordinator, keyspace = %r.keyspace);
        let set = decode(&r.record)?;
        let cluster = self.cluster.clone();
        // The check and the apply under one view (installs wait meanwhile),
        // on the replica's blocking site: never across a network await.
        self.replica
            .blocking(move |rep| {
                let planned = stale_view::Planned {
                    keyspace: &r.keyspace,
                    key: &r.key,
                    version: r.layout_version,
                    digest: &r.layout_digest,
                    targets: &r.targets,
                    repair: r.repair,
                };
                stale_view::apply_checked(&cluster, &planned, || {
                    rep.apply(&r.keyspace, &r.key, &set)
                })
            })
            .instrument(span)
            .await?;
        Ok(Response::new(ReplicaWriteResponse {}))
    }

    async fn replica_batch(
        &self,
        req: Request<ReplicaBatchRequest>,
    ) -> Result<Response<ReplicaBatchResponse>, Status> {
        let span = self.admit(&req, "replica_batch")?;
        let arrived = std::time::Instant::now();
        let entries = req.into_inner().entries;
        let cluster = self.cluster.clone();
        // One hand-off to the replica's blocking site for the whole batch;
        // each entry checked on its own, in a span of its own that joins
        // its request's trace; those that pass applied in one engine write.
        let faults = self.faults.clone();
        let results = self
            .replica
            .blocking(move |rep| {
                faults.stall_if_armed(|| rep.open());
                Ok(batch::results(rep, &cluster, entries, arrived))
            })
            .instrument(span)
            .await?;
        Ok(Response::new(ReplicaBatchResponse { results }))
    }

    async fn coordinate_write(
        &self,
        req: Request<CoordinateWriteRequest>,
    ) -> Result<Response<CoordinateWriteResponse>, Status> {
        let span = self.admit(&req, "coordinate_write")?;
        let r = req.into_inner();
        let write = async {
            let req = write_request(r)?;
            self.coordinator.write_as_replica(req).await
        };
        let out = write.instrument(span).await?;
        self.faults.crash_if_armed();
        Ok(Response::new(CoordinateWriteResponse {
            context: out.context.encode_context(),
            acks: out.acks,
            hints: out.hints,
        }))
    }

    async fn replica_read(
        &self,
        req: Request<ReplicaReadRequest>,
    ) -> Result<Response<ReplicaReadResponse>, Status> {
        let span = self.admit(&req, "replica_read")?;
        let r = req.into_inner();
        let view = self.cluster.current();
        let planned = (r.layout_version, &r.layout_digest);
        if let Some(stale) =
            stale_view::check_read(&view, &r.keyspace, &r.key, planned.0, planned.1)
        {
            stale_view::refused("read");
            return Err(stale.into());
        }
        let got = self
            .replica
            .reading(&r.keyspace, &r.key)
            .instrument(span)
            .await?;
        Ok(Response::new(match got {
            Some(set) => {
                let mut record = Vec::with_capacity(set.encoded_len());
                set.encode(&mut record);
                ReplicaReadResponse {
                    record,
                    found: true,
                }
            }
            None => ReplicaReadResponse {
                record: Vec::new(),
                found: false,
            },
        }))
    }

    async fn replica_read_batch(
        &self,
        req: Request<ReplicaReadBatchRequest>,
    ) -> Result<Response<ReplicaReadBatchResponse>, Status> {
        let span = self.admit(&req, "replica_read_batch")?;
        let (arrived, view) = (std::time::Instant::now(), self.cluster.current());
        let entries = req.into_inner().entries;
        let results = span.in_scope(|| read_batch::results(&self.replica, &view, entries, arrived));
        Ok(Response::new(ReplicaReadBatchResponse { results }))
    }

    type StreamStream = Acks;

    async fn stream(
        &self,
        req: Request<tonic::Streaming<StreamBatch>>,
    ) -> Result<Response<Acks>, Status> {
        self.batches(req, "stream", false)
    }

    type AdoptStream = Acks;

    async fn adopt(
        &self,
        req: Request<tonic::Streaming<StreamBatch>>,
    ) -> Result<Response<Acks>, Status> {
        self.batches(req, "adopt", true)
    }

    async fn gossip(&self, req: Request<GossipDigest>) -> Result<Response<GossipDigest>, Status> {
        let _span = self.admit(&req, "gossip")?;
        let verified = req.extensions().get::<tls::VerifiedPeer>().cloned();
        let incoming = req.into_inner();
        if let Some(peer) = verified.filter(|p| p.0 != incoming.from) {
            let msg = format!(
                "gossip from node '{}' claims to come from '{}'",
                peer.0, incoming.from
            );
            tls::refused(tls::Port::Internode, "identity", &msg);
            return Err(GeokvError::NotPermitted(msg).into());
        }
        self.layout.observe(&incoming);
        let mut reply = self.gossiper.handle_digest(incoming);
        self.layout.stamp(&mut reply);
        Ok(Response::new(reply))
    }

    async fn get_layout(
        &self,
        req: Request<GetLayoutRequest>,
    ) -> Result<Response<LayoutMessage>, Status> {
        let _span = self.admit(&req, "get_layout")?;
        Ok(Response::new(self.layout.serve_get()))
    }

    async fn push_layout(
        &self,
        req: Request<LayoutMessage>,
    ) -> Result<Response<PushLayoutResponse>, Status> {
        let _span = self.admit(&req, "push_layout")?;
        let from = (req.metadata().get(FROM_HEADER))
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        match self.layout.serve_push(&from, req.get_ref()) {
            Ok(version) => Ok(Response::new(PushLayoutResponse { version })),
            Err(e) => Err(GeokvError::from(e).into()),
        }
    }

    async fn layout_prepare(
        &self,
        req: Request<LayoutPrepareRequest>,
    ) -> Result<Response<LayoutPaxosReply>, Status> {
        let span = self.admit(&req, "layout_prepare")?;
        let msg = acceptor::prepare_msg(req.get_ref())
            .map_err(|e| GeokvError::InvalidArgument(e.to_string()))?;
        let reply = acceptor::serve(self.cluster.clone(), msg).instrument(span);
        Ok(Response::new(reply.await?))
    }

    async fn layout_accept(
        &self,
        req: Request<LayoutAcceptRequest>,
    ) -> Result<Response<LayoutPaxosReply>, Status> {
        let span = self.admit(&req, "layout_accept")?;
        let from = (req.metadata().get(FROM_HEADER))
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let msg = acceptor::accept_msg(&from, req.get_ref())
            .map_err(|e| GeokvError::InvalidArgument(e.to_string()))?;
        let reply = acceptor::serve(self.cluster.clone(), msg).instrument(span);
        Ok(Response::new(reply.await?))
    }

    async fn sync_auth(&self, req: Request<AuthMessage>) -> Result<Response<AuthMessage>, Status> {
        // When the offer arrived: its sender's clock is measured against
        // it, not against the end of the blocking pool's queue.
        let received = crate::security::auth::now_ms();
        let span = self.admit(&req, "sync_auth")?;
        // The install saves synced, under the auth's install lock: on the
        // blocking pool, never on an async worker (review-authq33 M1).
        let from = (req.metadata().get(FROM_HEADER))
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let (auth, msg) = (self.auth.clone(), req.into_inner());
        let serve = move || crate::security::auth::sync::serve_from(&auth, &from, received, &msg);
        let served = (crate::engine::CallSite::BlockingPool.run(serve))
            .instrument(span)
            .await
            .map_err(|e| GeokvError::Internal(e.to_string()))?;
        served
            .map(Response::new)
            .map_err(|e| GeokvError::from(e).into())
    }

    async fn sync_wal(
        &self,
        req: Request<SyncWalRequest>,
    ) -> Result<Response<SyncWalResponse>, Status> {
        let span = self.admit(&req, "sync_wal")?;
        // Through the replica's gate: refused once storage is closing.
        // The incarnation after the sync: what it covers was taken under it.
        let sync = self.replica.on_pool(|rep| {
            let _pass = rep.open()?;
            let engine = rep.gated();
            engine.flush()?;
            Ok(engine.incarnation().get())
        });
        let incarnation = sync.instrument(span).await?;
        Ok(Response::new(SyncWalResponse { incarnation }))
    }

    async fn merkle(
        &self,
        req: Request<MerkleRequest>,
    ) -> Result<Response<MerkleResponse>, Status> {
        repair::merkle(self, req).await
    }

    async fn range_scan(
        &self,
        req: Request<RangeScanRequest>,
    ) -> Result<Response<RangeScanResponse>, Status> {
        repair::range_scan(self, req).await
    }
}
