//! A replica refused a request as planned on an older view
//! (`stale_view`, typed as `TransportError::StaleView`): the coordinator
//! fetches that replica's layout and installs it, then plans the request
//! again on the newer view. Shared by the write path (the same record is
//! sent again) and the read path (the read is asked again). A request
//! that met its level despite a refusal still refreshes the view, in the
//! background ([`Coordinator::refresh_after_refusal`]: review-fix26 M1),
//! and the fetches are shared: one per refusing peer and layout version
//! at a time, which every request refused meanwhile waits on
//! ([`LayoutFetches`]: review-fix26 M2, no storm of `GetLayout`s at the
//! node moving data during a switch).
//!
//! Owns that fetch and install. Must not plan or send the request itself.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use tokio::sync::OnceCell;
use tokio::time::{Duration, Instant};

use super::Coordinator;
use crate::topology::NodeInfo;
use crate::transport::Peers;
use crate::view::{Cluster, ClusterView};

/// The first replica that refused a request as planned on an older view,
/// and its layout version (filled by the tasks sending the request).
pub(super) type StaleSlot = Arc<parking_lot::Mutex<Option<(NodeInfo, u64)>>>;

/// How long a finished fetch from one peer of one version stands for
/// every later refusal of the same: a fetch that could not install
/// (a fork, a peer unreachable) is not repeated by every request.
const FETCH_STANDS_FOR: Duration = Duration::from_secs(1);

/// The background refresh's bound (a request that met its level does not
/// wait for it).
const REFRESH_WITHIN: Duration = Duration::from_secs(3);

/// A fetch from one peer of one version: set to when it finished.
type Fetch = Arc<OnceCell<Instant>>;

/// Layout fetches after refusals, one per (peer, version) at a time.
#[derive(Default)]
pub struct LayoutFetches {
    /// Each fetch under way or finished less than [`FETCH_STANDS_FOR`]
    /// ago.
    fetches: parking_lot::Mutex<HashMap<(String, u64), Fetch>>,
}

impl LayoutFetches {
    /// Runs `fetch` for `peer`'s layout `version`, unless one is under way
    /// (then waits for that one) or finished less than
    /// [`FETCH_STANDS_FOR`] ago (then returns at once). A waiter dropped
    /// while its fetch runs lets the next waiter run its own.
    pub async fn once<F: Future<Output = ()>>(&self, peer: &str, version: u64, fetch: F) {
        let cell = {
            let mut fetches = self.fetches.lock();
            let now = Instant::now();
            fetches.retain(|_, c| c.get().is_none_or(|done| now - *done < FETCH_STANDS_FOR));
            let key = (peer.to_string(), version);
            fetches.entry(key).or_default().clone()
        };
        cell.get_or_init(|| async {
            fetch.await;
            Instant::now()
        })
        .await;
    }
}

impl Coordinator {
    /// The view in force once `peer`'s layout is installed here, when it
    /// ranks above `planned` (a higher version, or the same one with the
    /// winning digest: [`ClusterView::rank`]); `None` when that did not
    /// happen before the deadline. Nothing is fetched once this node has
    /// `version`, the one `peer` refused with ([`fetch_is_due`]).
    pub(super) async fn newer_view(
        &self,
        (peer, version): (&NodeInfo, u64),
        planned: (u64, u128),
        deadline: Instant,
    ) -> Option<Arc<ClusterView>> {
        let fetch = fetch_layout(&self.cluster, &self.peers, peer, planned, version);
        let wait = self.fetches.once(&peer.id, version, fetch);
        let _ = tokio::time::timeout_at(deadline, wait).await;
        let now = self.cluster.current();
        (now.rank() > planned).then_some(now)
    }

    /// A request planned on a view ranked `planned` met its level although
    /// `peer` refused it on layout `version`: the view is refreshed in the
    /// background (shared with any request that waits on the same fetch),
    /// so the next requests are not refused again.
    pub(super) fn refresh_after_refusal(&self, peer: NodeInfo, version: u64, planned: (u64, u128)) {
        if self.cluster.current().rank() > planned {
            return;
        }
        let (cluster, peers) = (self.cluster.clone(), self.peers.clone());
        let fetches = self.fetches.clone();
        // Bounded (REFRESH_WITHIN) and holding nothing the node's stop waits on.
        tokio::spawn(async move {
            let deadline = Instant::now() + REFRESH_WITHIN;
            let fetch = fetch_layout(&cluster, &peers, &peer, planned, version);
            let _ = tokio::time::timeout_at(deadline, fetches.once(&peer.id, version, fetch)).await;
        });
    }
}

/// Whether a fetch of the layout `refused` (the version a peer refused a
/// request with) is still due when the view in force ranks `now`: while
/// this node has not reached that version, whatever the first request
/// sharing the fetch was planned on (review-layout27 M1: a fetch skipped
/// because that request was planned on an older view stood for a second
/// and every request refused meanwhile failed).
fn fetch_is_due(now: (u64, u128), planned: (u64, u128), refused: u64) -> bool {
    now <= planned || now.0 < refused
}

/// How long a shared fetch may take, whatever the deadline of the request
/// that runs it: a request that gives up first drops the fetch (then not
/// kept, the next waiter runs its own), so only a fetch that really ended
/// stands for [`FETCH_STANDS_FOR`] (review-layout27 M1: one cut short by a
/// nearly spent deadline stood as failed).
const FETCH_WITHIN: Duration = Duration::from_secs(2);

/// Fetches `peer`'s layout and installs it, unless no longer due
/// ([`fetch_is_due`]); failures are logged.
async fn fetch_layout(
    cluster: &Cluster,
    peers: &Peers,
    peer: &NodeInfo,
    planned: (u64, u128),
    refused: u64,
) {
    if !fetch_is_due(cluster.current().rank(), planned, refused) {
        return;
    }
    let left = FETCH_WITHIN;
    metrics::counter!("geokv_stale_view_layout_fetches_total").increment(1);
    match peers.get_layout(peer, left).await {
        Ok(msg) => match crate::view::sync::from_message(&peer.id, &msg) {
            Ok(layout) => {
                if let Err(e) = cluster.install(layout) {
                    tracing::warn!(peer = %peer.id, error = %e, "layout of a refusing replica not installed");
                }
            }
            Err(e) => tracing::warn!(peer = %peer.id, error = %e, "bad layout"),
        },
        Err(e) => tracing::warn!(peer = %peer.id, error = %e, "layout fetch failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// review-fix26 M2: requests refused together by one peer on one
    /// version share one layout fetch (before, each refused request that
    /// failed fetched the full layout from the peer moving data).
    #[tokio::test(start_paused = true)]
    async fn concurrent_refusals_by_one_peer_and_version_share_one_fetch() {
        let fetches = LayoutFetches::default();
        let count = AtomicUsize::new(0);
        let fetch = || async {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let waits = (0..16).map(|_| fetches.once("dc1-n2", 7, fetch()));
        futures::future::join_all(waits).await;
        assert_eq!(count.load(Ordering::SeqCst), 1, "one fetch for 16 refusals");
        // Another version, or another peer, is another fetch.
        fetches.once("dc1-n2", 8, fetch()).await;
        fetches.once("dc1-n3", 7, fetch()).await;
        assert_eq!(count.load(Ordering::SeqCst), 3);
        // A finished fetch stands for a while, then may run again.
        fetches.once("dc1-n2", 7, fetch()).await;
        assert_eq!(count.load(Ordering::SeqCst), 3, "within the second");
        tokio::time::sleep(FETCH_STANDS_FOR).await;
        fetches.once("dc1-n2", 7, fetch()).await;
        assert_eq!(count.load(Ordering::SeqCst), 4, "after it");
    }

    /// review-layout27 M1: the fetch shared by one (peer, version) must not
    /// be skipped because the first request that ran it was planned on an
    /// older view than the node now has: the node at v5, a peer refusing
    /// with v6, the first request planned on v4 — the fetch of v6 is still
    /// due (skipped, it stood for a second and every request planned on v5
    /// that the peer refused failed meanwhile).
    #[test]
    fn a_fetch_is_due_until_the_node_has_the_refused_version() {
        let (v4, v5, v6) = ((4, 0), (5, 0), (6, 0));
        assert!(fetch_is_due(v5, v4, 6), "v5 here, v6 refused, v4 planned");
        assert!(fetch_is_due(v4, v4, 6));
        assert!(!fetch_is_due(v6, v4, 6), "the refused version is here");
        assert!(!fetch_is_due((7, 0), v5, 6));
    }
}
