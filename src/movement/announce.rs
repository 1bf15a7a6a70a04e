//! The wait before a joining node streams: every live member must be on a
//! layout that makes it a pending replica. A coordinator still on an older
//! view sends a write to the old owners only, and if the stream has
//! already passed that key, the joiner never gets it and the write has one
//! replica fewer once the joiner owns the range (Cassandra waits
//! `RING_DELAY` for the same reason; here each member is asked).
//!
//! What the wait does not prove, and what covers it: a member skipped as
//! down, and a write planned on the older view before a member answered,
//! may still send a write to the old owners only. Replica writes carry the
//! coordinator's layout version and targets, and a replica already on the
//! joining view refuses one that misses a replica of it; the coordinator
//! re-plans the same record on the newer view (`coordinator::stale_view`).
//!
//! Owns that wait. Must not change the layout.

use crate::transport::Peers;
use crate::view::Cluster;
use std::time::{Duration, Instant};

/// Some live members were not on the layout in time.
#[derive(Debug, thiserror::Error)]
#[error("not every live member is on layout v{version} after {waited_ms} ms: {behind}")]
pub struct NotAnnounced {
    pub version: u64,
    pub waited_ms: u64,
    /// `id (vN)` or `id (error)` of each member still behind.
    pub behind: String,
}

/// Waits until every live member other than this node reports a layout
/// version of at least `version` (asked with `GetLayout`), or `timeout`.
pub async fn until_announced(
    cluster: &Cluster,
    peers: &Peers,
    is_up: &(dyn Fn(&str) -> bool + Send + Sync),
    version: u64,
    timeout: Duration,
) -> Result<(), NotAnnounced> {
    let began = Instant::now();
    loop {
        let view = cluster.current();
        let mut behind = Vec::new();
        for n in view.members() {
            if n.id == view.me_id() || !is_up(&n.id) {
                continue;
            }
            match peers.get_layout(n, Duration::from_secs(2)).await {
                Ok(m) if m.version >= version => {}
                Ok(m) => behind.push(format!("{} (v{})", n.id, m.version)),
                Err(e) => behind.push(format!("{} ({e})", n.id)),
            }
        }
        if behind.is_empty() {
            return Ok(());
        }
        if began.elapsed() >= timeout {
            return Err(NotAnnounced {
                version,
                waited_ms: began.elapsed().as_millis() as u64,
                behind: behind.join(", "),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
