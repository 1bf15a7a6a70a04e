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

use tokio::sync::watch;
use tokio::time::{Duration, Instant};

use super::Coordinator;
use crate::topology::NodeInfo;
use crate::transport::Peers;
use crate::view::{Cluster, ClusterView};

/// The first replica that refused a request as planned on an older view,
/// and its layout version (filled by the tasks sending the request).
pub(super) type StaleSlot = Arc<parking_lot::Mutex<Option<(NodeInfo, u64)>>>;

/// A replica's refusal of a request planned on an older view: the
/// replica, and the layout version it refused on.
#[derive(Clone, Copy, Debug)]
pub(super) struct Refusal<'a> {
    pub peer: &'a NodeInfo,
    pub version: u64,
}

/// The `(peer, version)` a [`StaleSlot`] holds.
impl<'a> From<(&'a NodeInfo, u64)> for Refusal<'a> {
    fn from((peer, version): (&'a NodeInfo, u64)) -> Self {
        Refusal { peer, version }
    }
}

/// How long a finished fetch from one peer of one version stands for
/// every later refusal of the same: a fetch that could not install
/// (a fork, a peer unreachable) is not repeated by every request.
const FETCH_STANDS_FOR: Duration = Duration::from_secs(1);

/// A fetch from one peer of one version: `Some(when it finished)` once it
/// did (a closed channel: its task ended without saying so).
type Fetch = watch::Receiver<Option<Instant>>;

/// Layout fetches after refusals, one per (peer, version) at a time, each
/// run detached from the requests that wait on it (review-lead27 L1: one
/// cancelled with the request that started it was started again by the
/// next, so a peer slower than the requests' deadlines was never heard).
#[derive(Default)]
pub struct LayoutFetches {
    /// Each fetch under way or finished less than [`FETCH_STANDS_FOR`]
    /// ago; every fetch ends within its own bound ([`FETCH_WITHIN`]), so
    /// none is kept for good (review-lead27 L3).
    fetches: parking_lot::Mutex<HashMap<(String, u64), Fetch>>,
}

impl LayoutFetches {
    /// Starts `fetch` for `peer`'s layout `version` in a task of its own,
    /// bounded by [`FETCH_WITHIN`], unless one is under way or finished
    /// less than [`FETCH_STANDS_FOR`] ago; returns what to wait on.
    pub fn start<F>(&self, peer: &str, version: u64, fetch: F) -> Fetch
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let mut fetches = self.fetches.lock();
        let now = Instant::now();
        fetches.retain(|_, f| match *f.borrow() {
            Some(done) => now - done < FETCH_STANDS_FOR,
            None => f.has_changed().is_ok(),
        });
        let key = (peer.to_string(), version);
        if let Some(f) = fetches.get(&key) {
            return f.clone();
        }
        let (tx, rx) = watch::channel(None);
        // Bounded (FETCH_WITHIN) and holding nothing the node's stop waits on.
        tokio::spawn(async move {
            let _ = tokio::time::timeout(FETCH_WITHIN, fetch).await;
            tx.send_replace(Some(Instant::now()));
        });
        fetches.insert(key, rx.clone());
        rx
    }

    /// [`Self::start`], then waits for that fetch to end (a waiter given
    /// up drops only its wait, not the fetch).
    pub async fn once<F>(&self, peer: &str, version: u64, fetch: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let mut done = self.start(peer, version, fetch);
        let _ = done.wait_for(Option::is_some).await;
    }

    /// How many fetches are kept (under way or standing).
    #[cfg(test)]
    fn kept(&self) -> usize {
        self.fetches.lock().len()
    }
}

impl Coordinator {
    /// The view in force once `peer`'s layout is installed here, when it
    /// ranks above `planned` (a higher version, or the same one with the
    /// winning digest: [`ClusterView::rank`]); `None` when that did not
    /// happen before the deadline. Nothing is fetched once this node has
    /// `version`, the one `peer` refused with ([`fetch_is_due`]).
    pub(super) async fn newer_view<'a>(
        &self,
        refusal: impl Into<Refusal<'a>>,
        planned: (u64, u128),
        deadline: Instant,
    ) -> Option<Arc<ClusterView>> {
        let Refusal { peer, version } = refusal.into();
        let fetch = self.fetch_layout(peer, planned, version);
        let wait = self.fetches.once(&peer.id, version, fetch);
        let _ = tokio::time::timeout_at(deadline, wait).await;
        let now = self.cluster.current();
        (now.rank() > planned).then_some(now)
    }

    /// A request planned on a view ranked `planned` met its level although
    /// `peer` refused it on layout `version`: the view is refreshed in the
    /// background when a fetch is due ([`fetch_is_due`], review-lead27
    /// L2), by the one fetch shared per peer and version (review-layout27
    /// L5: no task per request), so the next requests are not refused
    /// again.
    pub(super) fn refresh_after_refusal(&self, peer: NodeInfo, version: u64, planned: (u64, u128)) {
        if !fetch_is_due(self.cluster.current().rank(), planned, version) {
            return;
        }
        let fetch = self.fetch_layout(&peer, planned, version);
        self.fetches.start(&peer.id, version, fetch);
    }

    /// [`fetch_layout`] of `peer`'s layout, owning what it uses (run only
    /// if no fetch of it is shared already).
    fn fetch_layout(
        &self,
        peer: &NodeInfo,
        planned: (u64, u128),
        refused: u64,
    ) -> impl Future<Output = ()> + Send + 'static {
        let (cluster, peers, peer) = (self.cluster.clone(), self.peers.clone(), peer.clone());
        async move { fetch_layout(&cluster, &peers, &peer, planned, refused).await }
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

/// How long a shared fetch may take, whatever the deadlines of the
/// requests waiting on it (review-layout27 M1: one cut short by a nearly
/// spent deadline stood as failed).
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
                // One peer's word, with its lineage (`view::guard`).
                let lineage = crate::view::lineage::Lineage::from_message(&msg);
                let source = crate::view::Source::Peer;
                if let Err(e) = cluster.install_from(layout, lineage, source) {
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
        let count = Arc::new(AtomicUsize::new(0));
        let fetch = || {
            let count = count.clone();
            async move {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
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
    /// review-lead27 L1, L3: a shared fetch outlives the request that
    /// started it. That request gives up at 500 ms; the fetch (800 ms)
    /// goes on, and a request refused meanwhile waits on it rather than
    /// starting another; a fetch whose only request gave up still ends,
    /// and is no longer kept once it stood (failed before: the fetch was
    /// cancelled with its first waiter and started again by the next, so
    /// a peer slower than the requests' deadlines was never heard; a
    /// cancelled one was kept for good).
    #[tokio::test(start_paused = true)]
    async fn a_shared_fetch_outlives_the_request_that_started_it() {
        let fetches = LayoutFetches::default();
        let (started, ended) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let fetch = || {
            let (started, ended) = (started.clone(), ended.clone());
            async move {
                started.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(800)).await;
                ended.fetch_add(1, Ordering::SeqCst);
            }
        };
        let within = |ms| Duration::from_millis(ms);
        let first = tokio::time::timeout(within(500), fetches.once("dc1-n2", 7, fetch())).await;
        assert!(first.is_err(), "the first request gives up");
        let second = tokio::time::timeout(within(500), fetches.once("dc1-n2", 7, fetch())).await;
        second.expect("the fetch under way ends within the second request's deadline");
        let counts = (started.load(Ordering::SeqCst), ended.load(Ordering::SeqCst));
        assert_eq!(counts, (1, 1), "one fetch, ended");
        let lone = tokio::time::timeout(within(100), fetches.once("dc1-n2", 8, fetch())).await;
        assert!(lone.is_err());
        tokio::time::sleep(FETCH_WITHIN + FETCH_STANDS_FOR).await;
        assert_eq!(ended.load(Ordering::SeqCst), 2, "the lone fetch ended too");
        fetches.once("dc1-n3", 7, async {}).await;
        assert_eq!(fetches.kept(), 1, "only the last fetch is kept");
    }
}
