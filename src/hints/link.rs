//! What the deliverer needs from the network, as traits, so its driver runs
//! in tests against an in-memory link (under `tokio::time::pause`): [`Link`]
//! opens a stream to a node and says which nodes are live, [`Wire`] is one
//! open stream. [`Net`] is the real one (`transport::Peers` and the
//! failure detector), which leaves out a node that gossiped it refuses
//! writes while another is there ([`prefer_ready`]).
//!
//! Must not: decide anything else.

use super::queue::Dest;
use crate::membership::Liveness;
use crate::proto::v1::internode::{StreamAck, StreamBatch};
use crate::transport::{OutboundStream, Peers, TransportError};
use crate::view::Cluster;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Opens streams and knows who is up.
pub trait Link: Send + Sync + 'static {
    type Stream: Wire;
    /// Opens a hinted stream to the node called `to`; with `adopt`, one
    /// that hands the queue over to it instead (see `adopt`).
    fn open(
        &self,
        to: &str,
        adopt: bool,
    ) -> impl Future<Output = Result<Self::Stream, TransportError>> + Send;
    /// Whether the node called `id` is believed up.
    fn is_up(&self, id: &str) -> bool;
    /// The ids of the live nodes `dest` may be delivered to.
    fn live(&self, dest: &Dest) -> Vec<String>;
    /// Who else must get a hint bound for `target` for `key`: the pending
    /// replicas of a moving range (see `moving`); none by default.
    fn also_to(&self, _target: &str, _keyspace: &str, _key: &[u8]) -> Vec<String> {
        Vec::new()
    }
    /// Who may adopt `dest`'s entries when no node of `dest` is live: the
    /// live Normal members of this node's datacenter once this node has
    /// left the cluster (see `adopt`); none while it is a member.
    fn adopters(&self, _dest: &Dest) -> Vec<String> {
        Vec::new()
    }
    /// Who may adopt this node's anti-entropy records once it has left:
    /// any live Normal member, its own datacenter's first (see
    /// `adopt::record_adopters`); none while it is a member.
    fn record_adopters(&self) -> Vec<String> {
        Vec::new()
    }
    /// The layout version of this node's view in force.
    fn view_version(&self) -> u64;
    /// Fetches the layout of the node called `from` and installs it, best
    /// effort (a receiver placed hints elsewhere in a newer view).
    fn catch_up(&self, from: &str) -> impl Future<Output = ()> + Send;
}

/// One open stream.
pub trait Wire: Send + 'static {
    /// The id of the node at the other end.
    fn to(&self) -> &str;
    /// Sends a batch.
    fn send(
        &mut self,
        batch: StreamBatch,
    ) -> impl Future<Output = Result<(), TransportError>> + Send;
    /// The next acknowledgement (cancel-safe).
    fn next_ack(&mut self) -> impl Future<Output = Result<StreamAck, TransportError>> + Send;
}

/// The network. Nodes are named by id, which names the same node in every
/// view (a ring index would not: indexes are per view, and one resolved in
/// a later view could name a node of another datacenter). An id that left
/// the view cannot be opened.
#[derive(Clone)]
pub struct Net {
    pub peers: Arc<Peers>,
    pub cluster: Cluster,
    pub liveness: Arc<dyn Liveness>,
}

impl Link for Net {
    type Stream = OutboundStream;

    async fn open(&self, to: &str, adopt: bool) -> Result<OutboundStream, TransportError> {
        let view = self.cluster.current();
        let Some(peer) = view.node(to) else {
            return Err(TransportError::NotSent {
                peer: to.to_string(),
                message: format!("not a member of layout v{}", view.version()),
            });
        };
        self.peers
            .open_stream(peer.idx, peer, Duration::from_secs(5), adopt)
            .await
    }

    fn is_up(&self, id: &str) -> bool {
        self.cluster.current().node(id).is_some() && self.liveness.is_up(id)
    }

    fn live(&self, dest: &Dest) -> Vec<String> {
        let view = self.cluster.current();
        match dest {
            Dest::Node(id) => (view.node(id))
                .filter(|n| self.liveness.is_up(&n.id))
                .map(|n| n.id.clone())
                .into_iter()
                .collect(),
            Dest::Dc(dc) => prefer_ready(
                (view.members().iter())
                    .filter(|n| &n.dc == dc && self.liveness.is_up(&n.id))
                    .map(|n| n.id.clone())
                    .collect(),
                |id| self.liveness.is_ready(id),
            ),
        }
    }

    fn also_to(&self, target: &str, keyspace: &str, key: &[u8]) -> Vec<String> {
        super::moving::also_to(&self.cluster.current(), target, keyspace, key)
    }

    fn adopters(&self, dest: &Dest) -> Vec<String> {
        let offered = offered(&self.cluster.current(), dest, |id| self.liveness.is_up(id));
        prefer_ready(offered, |id| self.liveness.is_ready(id))
    }

    fn record_adopters(&self) -> Vec<String> {
        let offered = offered_records(&self.cluster.current(), |id| self.liveness.is_up(id));
        prefer_ready(offered, |id| self.liveness.is_ready(id))
    }

    fn view_version(&self) -> u64 {
        self.cluster.current().version()
    }

    async fn catch_up(&self, from: &str) {
        if self.peers.faults().holds_layouts() {
            return; // a test keeps this node on its layout
        }
        match crate::view::sync::fetch_from(&self.cluster, &self.peers, from).await {
            Ok(installed) => {
                tracing::debug!(peer = %from, ?installed, "hints: caught up with a receiver's layout")
            }
            Err(e) => {
                tracing::debug!(peer = %from, error = %e, "hints: fetching a receiver's layout failed")
            }
        }
    }
}

/// `ids` without the nodes `is_ready` says refuse writes (their storage
/// latched a failed sync: the gossip's not-ready bit), unless every one
/// does, in the order given. Such a node applies no stream batch or
/// adopted queue (its engine refuses the writes): chosen as a receiver
/// (round-robin, `schedule::pick_target`) or an adopter, its batch stalls
/// and urgent waits time out before the stream moves on (review-write35
/// L2, review-tidy35 L1). When none is ready all are kept, as before.
pub(crate) fn prefer_ready(ids: Vec<String>, is_ready: impl Fn(&str) -> bool) -> Vec<String> {
    let ready: Vec<String> = ids.iter().filter(|id| is_ready(id)).cloned().collect();
    match ready.is_empty() {
        true => ids,
        false => ready,
    }
}

/// The adopters [`Link::adopters`] offers in `view`: none while this node
/// is a member (it delivers its queues itself, however long that takes);
/// once it has left, the live Normal members of its datacenter
/// (`adopt::adopters`).
pub(crate) fn offered(
    view: &crate::view::ClusterView,
    dest: &Dest,
    is_up: impl Fn(&str) -> bool,
) -> Vec<String> {
    let Some((me, dc)) = left_from(view) else {
        return Vec::new();
    };
    super::adopt::adopters(view, me, dc, dest, is_up)
}

/// This node's id and datacenter once it has left (it offers adopters
/// only then).
fn left_from(view: &crate::view::ClusterView) -> Option<(&str, &str)> {
    let me = view.me_id();
    let (dc, _, _) = view.layout.node(me).filter(|_| view.has_left())?;
    Some((me, dc))
}

/// The adopters [`Link::record_adopters`] offers in `view`: none while this
/// node is a member; once it has left, every live Normal member, those of
/// its datacenter first (`adopt::record_adopters`).
pub(crate) fn offered_records(
    view: &crate::view::ClusterView,
    is_up: impl Fn(&str) -> bool,
) -> Vec<String> {
    let Some((me, dc)) = left_from(view) else {
        return Vec::new();
    };
    super::adopt::record_adopters(view, me, dc, is_up)
}

impl Wire for OutboundStream {
    fn to(&self) -> &str {
        self.peer_id()
    }

    async fn send(&mut self, batch: StreamBatch) -> Result<(), TransportError> {
        OutboundStream::send(self, batch).await
    }

    async fn next_ack(&mut self) -> Result<StreamAck, TransportError> {
        OutboundStream::next_ack(self).await
    }
}

#[cfg(test)]
#[path = "link_tests.rs"]
mod tests;
