//! `POST /cleanup` on the node's [`Control`]: drop the ranges the node
//! no longer replicates, once every live member reports the view in force.
//! The automatic cleanup after a movement is `cleanup_follow`'s.
//!
//! Must not run while a movement is in progress, nor change the layout.

use crate::engine::CallSite;
use crate::movement::cleanup::{Cleaned, CleanupError};

use super::Control;

impl Control {
    /// `POST /cleanup`: like the automatic cleanup, only once every live
    /// member reports the view in force (a coordinator on an older view
    /// still reads and writes the old owners). Members that are down are
    /// not waited for: when one comes back on an older view, its reads and
    /// writes carry that view, and an old owner that no longer replicates
    /// the key refuses them (`view::stale_view`), so it re-plans on
    /// the newer view instead of reading what was cleaned up.
    pub async fn cleanup_announced(&self) -> Result<Cleaned, CleanupError> {
        let view = self.cluster.current();
        if let Some(m) = view.layout.movements.values().next() {
            return Err(CleanupError::MovementInProgress(m.clone()));
        }
        self.announce(view.version())
            .await
            .map_err(CleanupError::NotAnnounced)?;
        self.cleanup().await
    }

    /// Drops the ranges this node no longer replicates (refused while a
    /// movement is in progress).
    pub async fn cleanup(&self) -> Result<Cleaned, CleanupError> {
        let (engine, cluster) = (self.engine.clone(), self.cluster.clone());
        // Scans and range deletions: on the blocking pool, in this span.
        CallSite::BlockingPool
            .run(move || crate::movement::cleanup::cleanup_current(&*engine, &cluster))
            .await
            .map_err(|e| CleanupError::Task(e.to_string()))?
    }
}
