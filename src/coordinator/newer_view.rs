//! A replica refused a request as planned on an older view
//! (`stale_view`, typed as `TransportError::StaleView`): the coordinator
//! fetches that replica's layout and installs it, then plans the request
//! again on the newer view. Shared by the write path (the same record is
//! sent again) and the read path (the read is asked again).
//!
//! Owns that fetch and install. Must not plan or send the request itself.

use super::Coordinator;
use crate::topology::NodeInfo;
use crate::view::ClusterView;
use std::sync::Arc;
use tokio::time::Instant;

/// The first replica that refused a request as planned on an older view,
/// and its layout version (filled by the tasks sending the request).
pub(super) type StaleSlot = Arc<parking_lot::Mutex<Option<(NodeInfo, u64)>>>;

impl Coordinator {
    /// The view in force once `peer`'s layout is installed here, when it
    /// ranks above `planned` (a higher version, or the same one with the
    /// winning digest: [`ClusterView::rank`]); `None` when that did not
    /// happen before the deadline. Nothing is fetched when this node is
    /// already past `planned`.
    pub(super) async fn newer_view(
        &self,
        peer: &NodeInfo,
        planned: (u64, u128),
        deadline: Instant,
    ) -> Option<Arc<ClusterView>> {
        if self.cluster.current().rank() <= planned {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.peers.get_layout(peer, left).await {
                Ok(msg) => match crate::view::sync::from_message(&peer.id, &msg) {
                    Ok(layout) => {
                        if let Err(e) = self.cluster.install(layout) {
                            tracing::warn!(peer = %peer.id, error = %e, "layout of a refusing replica not installed");
                        }
                    }
                    Err(e) => tracing::warn!(peer = %peer.id, error = %e, "bad layout"),
                },
                Err(e) => tracing::warn!(peer = %peer.id, error = %e, "layout fetch failed"),
            }
        }
        let now = self.cluster.current();
        (now.rank() > planned).then_some(now)
    }
}
