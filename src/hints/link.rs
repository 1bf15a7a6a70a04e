//! What the deliverer needs from the network, as traits, so its driver runs
//! in tests against an in-memory link (under `tokio::time::pause`): [`Link`]
//! opens a stream to a node and says which nodes are live, [`Wire`] is one
//! open stream. [`Net`] is the real one (`transport::Peers` and the
//! failure detector).
//!
//! Must not: decide anything.

use super::queue::Dest;
use crate::coordinator::Liveness;
use crate::proto::v1::internode::{StreamAck, StreamBatch};
use crate::topology::NodeIdx;
use crate::transport::{OutboundStream, Peers, TransportError};
use crate::view::Cluster;
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

/// The network. A [`NodeIdx`] here is resolved in the view in force at
/// each call (a stream whose index names another node after a membership
/// change is reopened when that node looks down).
#[derive(Clone)]
pub struct Net {
    pub peers: Arc<Peers>,
    pub cluster: Cluster,
    pub liveness: Arc<dyn Liveness>,
}

impl Link for Net {
    type Stream = OutboundStream;

    async fn open(&self, to: NodeIdx) -> Result<OutboundStream, TransportError> {
        let view = self.cluster.current();
        let Some(peer) = view.members().get(to.0 as usize) else {
            return Err(TransportError::NotSent {
                peer: to.to_string(),
                message: format!("not a member of layout v{}", view.version()),
            });
        };
        self.peers
            .open_stream(to, peer, Duration::from_secs(5))
            .await
    }

    fn is_up(&self, n: NodeIdx) -> bool {
        let view = self.cluster.current();
        (view.members().get(n.0 as usize)).is_some_and(|p| self.liveness.is_up(&p.id))
    }

    fn live(&self, dest: &Dest) -> Vec<NodeIdx> {
        let view = self.cluster.current();
        match dest {
            Dest::Node(id) => (view.node(id))
                .filter(|n| self.liveness.is_up(&n.id))
                .map(|n| n.idx)
                .into_iter()
                .collect(),
            Dest::Dc(dc) => (view.members().iter())
                .filter(|n| &n.dc == dc && self.liveness.is_up(&n.id))
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
