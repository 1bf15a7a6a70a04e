//! Internode transport: one lazily connected tonic channel per peer (over
//! mutual TLS unless the node runs `--insecure`, see [`tls`]), the
//! metadata every internode call carries (sender id, W3C trace context), and
//! the **fault-injection seam** ([`faults`]) that tests and `geokv dev` use to
//! delay or cut links without kernel help. One unary call and what its
//! failure means are in `call.rs`; every one goes out behind a
//! first-read-wins [`gate`], so a call given up before its request was
//! read is "not sent".
//!
//! Owns: connections, per-call deadlines, fault checks. Must not: decide
//! placement, count acknowledgements, or touch storage.

pub mod admin_client;
pub mod batch;
mod call;
pub mod encoded;
mod error;
pub mod faults;
pub mod gate;
pub mod lane;
pub mod read_batch;
pub mod replica_batch;
pub mod stream;
pub mod support;
pub mod sync_wal;
#[cfg(test)]
pub(crate) mod testing;
pub mod tls;

pub use call::PeerChannel;
pub use error::{PeerCode, PeerVerdict, TransportError};
pub use stream::OutboundStream;

use crate::proto::v1::internode::*;
use crate::topology::NodeInfo;
use call::internode_client;
pub(crate) use error::status_error;
use faults::Faults;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::Channel;

/// Turns the read lane on (`1`), for the read batching A/B (issue 14).
pub const BATCH_READS_ENV: &str = "GEOKV_BATCH_READS";

/// gRPC metadata key naming the sending node of an internode call.
pub const FROM_HEADER: &str = "geokv-from";

/// One peer's connection: its address, the lazy channel, where the
/// channel's connections note a refused handshake, and the
/// `geokv_internode_call_seconds` histogram of its datacenter (registered
/// once per link, not per call: a labelled metric allocates its key on
/// every lookup).
#[derive(Clone)]
struct Link {
    addr: SocketAddr,
    channel: Channel,
    failure: tls::LastFailure,
    seconds: metrics::Histogram,
}

impl Link {
    fn dial(tls: &tls::Tls, to: &NodeInfo) -> Self {
        let (channel, failure) = tls.endpoint_noted(&to.id, to.peer_address);
        Link {
            addr: to.peer_address,
            channel,
            failure,
            seconds: metrics::histogram!("geokv_internode_call_seconds", "peer_dc" => to.dc.clone()),
        }
    }
}

/// Connections to the other members of the cluster, by node id: a lazy
/// channel is made the first time a member is called (or re-made when its
/// peer address changed) and dropped when it leaves the view
/// ([`Peers::retain`]). Callers name the peer by its [`NodeInfo`] from the
/// view their request loaded.
pub struct Peers {
    me: NodeInfo,
    channels: parking_lot::Mutex<HashMap<String, Link>>,
    /// Each peer's lane of batched replica writes ([`replica_batch`]).
    lanes: parking_lot::Mutex<HashMap<String, Arc<replica_batch::WriteLane>>>,
    /// Each peer's lane of batched replica reads ([`read_batch`]).
    read_lanes: parking_lot::Mutex<HashMap<String, Arc<read_batch::ReadLane>>>,
    /// Where the lanes' tasks run: the node's task set, as last tasks
    /// ([`Peers::lanes_in`]); detached without a node.
    lane_tasks: crate::tasks::Spawner,
    faults: Arc<Faults>,
    tls: tls::Tls,
    /// This node's id as the `geokv-from` value, parsed once.
    from: Option<tonic::metadata::AsciiMetadataValue>,
    /// Replica reads go through the per-peer read lane ([`read_batch`]):
    /// off unless the environment sets `GEOKV_BATCH_READS=1`, an
    /// experiment for the A/B of issue 14 (BENCHMARKS.md), not a setting.
    batch_reads: bool,
}

impl Peers {
    /// No connection yet; `me` is this node (its `idx` is not used). Every
    /// channel goes over mutual TLS when `tls` is on.
    pub fn new(me: NodeInfo, faults: Arc<Faults>, tls: &tls::Tls) -> Self {
        Peers {
            channels: parking_lot::Mutex::new(HashMap::new()),
            lanes: parking_lot::Mutex::new(HashMap::new()),
            read_lanes: parking_lot::Mutex::new(HashMap::new()),
            lane_tasks: crate::tasks::Spawner::detached(),
            from: me.id.parse().ok(),
            batch_reads: std::env::var_os(BATCH_READS_ENV).is_some_and(|v| v == "1"),
            me,
            faults,
            tls: tls.clone(),
        }
    }

    /// These peers, their batching lanes run by `spawner` (the node's task
    /// set: a lane carries requests through the stop's drain and ends
    /// after it).
    pub fn lanes_in(self, spawner: crate::tasks::Spawner) -> Self {
        Peers {
            lane_tasks: spawner,
            ..self
        }
    }

    /// Whether replica reads go through the per-peer read lane.
    pub fn batch_reads(&self) -> bool {
        self.batch_reads
    }

    /// The node's TLS state (also for its admin-port calls to peers).
    pub fn tls(&self) -> &tls::Tls {
        &self.tls
    }

    /// Drops the channels of nodes that are not members any more:
    /// `peer_address(id)` is a member's current peer address, `None` for a
    /// node that left the view (a changed address drops the channel too).
    pub fn retain(&self, peer_address: impl Fn(&str) -> Option<SocketAddr>) {
        self.channels
            .lock()
            .retain(|id, link| peer_address(id) == Some(link.addr));
        self.lanes
            .lock()
            .retain(|id, lane| peer_address(id) == Some(lane.addr));
        self.read_lanes
            .lock()
            .retain(|id, lane| peer_address(id) == Some(lane.addr));
    }

    /// Nodes with a channel now (tests, diagnostics).
    pub fn connected(&self) -> Vec<String> {
        let mut v: Vec<String> = self.channels.lock().keys().cloned().collect();
        v.sort();
        v
    }

    /// This node.
    pub fn me(&self) -> &NodeInfo {
        &self.me
    }

    /// The fault table shared with the server side and the admin port.
    pub fn faults(&self) -> &Arc<Faults> {
        &self.faults
    }

    /// `to`'s channel, where its connections note a refused handshake,
    /// and the histogram of calls to its datacenter. The peer is looked up
    /// by `&str`: no allocation per call once its link exists (issue 14).
    fn client_noted(&self, to: &NodeInfo) -> (Channel, tls::LastFailure, metrics::Histogram) {
        let link = {
            let mut channels = self.channels.lock();
            match channels.get_mut(to.id.as_str()) {
                Some(l) if l.addr == to.peer_address => l.clone(),
                Some(l) => {
                    *l = Link::dial(&self.tls, to);
                    l.clone()
                }
                None => (channels.entry(to.id.clone()))
                    .or_insert_with(|| Link::dial(&self.tls, to))
                    .clone(),
            }
        };
        (link.channel, link.failure, link.seconds)
    }

    /// Merges `record` (an encoded sibling set) into `to`'s copy of the key.
    pub async fn replica_write(
        &self,
        to: &NodeInfo,
        req: ReplicaWriteRequest,
        timeout: Duration,
    ) -> Result<(), TransportError> {
        encoded::within_limit(&to.id, prost::Message::encoded_len(&req))?;
        self.call_with(to, req, timeout, false, |mut c, r| async move {
            c.replica_write(r).await
        })
        .await
        .map(|_| ())
    }

    /// Hands a client write to `to`, a replica of its key, which coordinates
    /// it and answers with the outcome.
    pub async fn coordinate_write(
        &self,
        to: &NodeInfo,
        req: CoordinateWriteRequest,
        timeout: Duration,
    ) -> Result<CoordinateWriteResponse, TransportError> {
        self.call(to, req, timeout, |mut c, r| async move {
            c.coordinate_write(r).await
        })
        .await
    }

    /// Reads `to`'s copy of a key.
    pub async fn replica_read(
        &self,
        to: &NodeInfo,
        req: ReplicaReadRequest,
        timeout: Duration,
    ) -> Result<ReplicaReadResponse, TransportError> {
        self.call_with(to, req, timeout, false, |mut c, r| async move {
            c.replica_read(r).await
        })
        .await
    }

    /// The Merkle leaves of `to`'s copy of a token range (anti-entropy).
    pub async fn merkle(
        &self,
        to: &NodeInfo,
        req: MerkleRequest,
        timeout: Duration,
    ) -> Result<MerkleResponse, TransportError> {
        self.call(
            to,
            req,
            timeout,
            |mut c, r| async move { c.merkle(r).await },
        )
        .await
    }

    /// One page of `to`'s rows in a token range, after `req.after_key`.
    pub async fn range_scan(
        &self,
        to: &NodeInfo,
        req: RangeScanRequest,
        timeout: Duration,
    ) -> Result<RangeScanResponse, TransportError> {
        self.call(
            to,
            req,
            timeout,
            |mut c, r| async move { c.range_scan(r).await },
        )
        .await
    }

    /// One gossip exchange with `to`.
    pub async fn gossip(
        &self,
        to: &NodeInfo,
        digest: GossipDigest,
        timeout: Duration,
    ) -> Result<GossipDigest, TransportError> {
        self.call(
            to,
            digest,
            timeout,
            |mut c, r| async move { c.gossip(r).await },
        )
        .await
    }
}

impl Peers {
    /// `to`'s current cluster layout.
    pub async fn get_layout(
        &self,
        to: &NodeInfo,
        timeout: Duration,
    ) -> Result<LayoutMessage, TransportError> {
        self.call(to, GetLayoutRequest {}, timeout, |mut c, r| async move {
            c.get_layout(r).await
        })
        .await
    }

    /// Hands `to` a layout proposed here.
    pub async fn push_layout(
        &self,
        to: &NodeInfo,
        msg: LayoutMessage,
        timeout: Duration,
    ) -> Result<PushLayoutResponse, TransportError> {
        self.call(to, msg, timeout, |mut c, r| async move {
            c.push_layout(r).await
        })
        .await
    }

    /// Phase 1 of the layout CAS at acceptor `to`.
    pub async fn layout_prepare(
        &self,
        to: &NodeInfo,
        req: LayoutPrepareRequest,
        timeout: Duration,
    ) -> Result<LayoutPaxosReply, TransportError> {
        self.call(to, req, timeout, |mut c, r| async move {
            c.layout_prepare(r).await
        })
        .await
    }

    /// Phase 2 of the layout CAS at acceptor `to`.
    pub async fn layout_accept(
        &self,
        to: &NodeInfo,
        req: LayoutAcceptRequest,
        timeout: Duration,
    ) -> Result<LayoutPaxosReply, TransportError> {
        self.call(to, req, timeout, |mut c, r| async move {
            c.layout_accept(r).await
        })
        .await
    }

    /// Offers `to` our auth state; answers with its own (merged) one.
    pub async fn sync_auth(
        &self,
        to: &NodeInfo,
        msg: AuthMessage,
        timeout: Duration,
    ) -> Result<AuthMessage, TransportError> {
        self.call(
            to,
            msg,
            timeout,
            |mut c, r| async move { c.sync_auth(r).await },
        )
        .await
    }
}
