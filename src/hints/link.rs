//! What the deliverer needs from the network, as traits, so its driver runs
//! in tests against an in-memory link (under `tokio::time::pause`): [`Link`]
//! opens a stream to a node and says which nodes are live, [`Wire`] is one
//! open stream. [`Net`] is the real one (`transport::Peers` and the
//! failure detector).
//!
//! Must not: decide anything.

use super::queue::Dest;
use crate::membership::Liveness;
use crate::proto::v1::internode::{StreamAck, StreamBatch};
use crate::ring::Ring;
use crate::topology::NodeIdx;
use crate::transport::{OutboundStream, Peers, TransportError};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Opens streams and knows who is up.
pub trait Link: Send + Sync + 'static {
    type Stream: Wire;
    /// Opens a hinted stream to `to`.
    fn open(
        &self,
        to: NodeIdx,
    ) -> impl Future<Output = Result<Self::Stream, TransportError>> + Send;
    /// Whether `n` is believed up.
    fn is_up(&self, n: NodeIdx) -> bool;
    /// The live nodes `dest` may be delivered to.
    fn live(&self, dest: &Dest) -> Vec<NodeIdx>;
}

/// One open stream.
pub trait Wire: Send + 'static {
    /// The node at the other end.
    fn to(&self) -> NodeIdx;
    /// Sends a batch.
    fn send(
        &mut self,
        batch: StreamBatch,
    ) -> impl Future<Output = Result<(), TransportError>> + Send;
    /// The next acknowledgement (cancel-safe).
    fn next_ack(&mut self) -> impl Future<Output = Result<StreamAck, TransportError>> + Send;
}

/// The network.
#[derive(Clone)]
pub struct Net {
    pub peers: Arc<Peers>,
    pub ring: Arc<Ring>,
    pub liveness: Arc<dyn Liveness>,
}

impl Link for Net {
    type Stream = OutboundStream;

    async fn open(&self, to: NodeIdx) -> Result<OutboundStream, TransportError> {
        self.peers.open_stream(to, Duration::from_secs(5)).await
    }

    fn is_up(&self, n: NodeIdx) -> bool {
        self.liveness.is_up(n)
    }

    fn live(&self, dest: &Dest) -> Vec<NodeIdx> {
        match dest {
            Dest::Node(id) => (self.ring.node_by_id(id).map(|n| n.idx))
                .filter(|&n| self.is_up(n))
                .into_iter()
                .collect(),
            Dest::Dc(dc) => (self.ring.nodes().iter())
                .filter(|n| &n.dc == dc && self.is_up(n.idx))
                .map(|n| n.idx)
                .collect(),
        }
    }
}

impl Wire for OutboundStream {
    fn to(&self) -> NodeIdx {
        self.to
    }

    async fn send(&mut self, batch: StreamBatch) -> Result<(), TransportError> {
        OutboundStream::send(self, batch).await
    }

    async fn next_ack(&mut self) -> Result<StreamAck, TransportError> {
        OutboundStream::next_ack(self).await
    }
}
