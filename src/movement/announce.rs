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
//! re-plans the same record on the newer view (`view::stale_view`).
//!
//! Versions alone do not say a member is on our layout: two proposals of
//! one version (made concurrently) resolve by digest, and a member on the
//! losing one must not count (review finding 2). A member reporting
//! `version` itself counts only with the digest of ours, while we are on
//! it.
//!
//! Owns that wait. Must not change the layout.

use crate::proto::v1::internode::LayoutMessage;
use crate::transport::Peers;
use crate::view::{Cluster, ClusterView};
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
/// version of at least `version` (asked with `GetLayout`; at `version`
/// itself, with our digest while we are on it: [`reports`]), or `timeout`.
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
                Ok(m) if reports(&m, version, &view) => {}
                Ok(m) if m.version == version => {
                    behind.push(format!("{} (v{}, another digest)", n.id, m.version))
                }
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

/// Whether a member that answered `m` is on the layout the wait is for: a
/// version above `version`, or `version` itself with the digest of `ours`
/// when `ours` is that version (once we are past it, any layout of
/// `version` is superseded by ours for every member alike).
pub fn reports(m: &LayoutMessage, version: u64, ours: &ClusterView) -> bool {
    if m.version != version || ours.version() != version {
        return m.version >= version;
    }
    crate::view::sync::from_message("", m).is_ok_and(|l| l.digest() == ours.digest())
}

#[cfg(test)]
mod tests {
    use super::reports;
    use crate::layout::Layout;
    use crate::view::ClusterView;

    /// Review finding 2: of two proposals of v2, a member on the other one
    /// is not on our layout; the same one, a newer version, or any v2 once
    /// we are past it, is.
    #[test]
    fn a_member_on_another_layout_of_the_same_version_is_behind() {
        let (seed, a, b) = crate::layout::testing::concurrent_joins();
        let ours = ClusterView::derive(a.clone(), "dc1-n1").expect("view");
        let msg = |l: &Layout| crate::view::sync::to_message(l);
        assert!(reports(&msg(&a), 2, &ours));
        assert!(!reports(&msg(&b), 2, &ours), "the other v2 is not ours");
        assert!(!reports(&msg(&seed), 2, &ours));
        let v3 = Layout {
            version: 3,
            ..b.clone()
        };
        assert!(reports(&msg(&v3), 2, &ours));
        let past = ClusterView::derive(v3, "dc1-n1").expect("view");
        assert!(reports(&msg(&b), 2, &past));
    }
}
