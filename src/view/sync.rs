//! The network side of the layout: gossip digests carry the sender's layout
//! version and digest ([`LayoutSync::stamp`]); a node that sees a newer one
//! fetches it from the sender (`GetLayout`), stages it, and installs it
//! once the members' gossip backs it (`super::staging`: one peer's word
//! alone is not taken while a fork is in sight), and one of its own
//! version with another digest is fetched and refused as a fork
//! ([`LayoutSync::observe`]); a proposal is pushed to every member
//! best-effort (`PushLayout`, [`LayoutSync::push_hook`], with its lineage:
//! its predecessor and the ballot its proposer saw it chosen at,
//! `super::lineage`), installed unless the install guard refuses it
//! (`super::guard`). Gossip alone converges: pushes only make it faster. [`follow`] keeps the peer channels and the gossip
//! members on the view in force.
//!
//! Must not: decide what a layout contains, or merge layouts itself (that is
//! [`super::Cluster::install`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::catch_up::{LayoutSource, PeersSource};
use super::cluster::PushHook;
use super::lineage::Lineage;
use super::staging::{digest_of, Staging};
use super::{Cluster, Installed, Source};
use crate::layout::{Layout, SEED_VERSION};
use crate::membership::Gossiper;
use crate::proto::v1::internode::{GossipDigest, LayoutMessage};
use crate::tasks::Spawner;
use crate::transport::Peers;
use tokio::sync::watch;

/// Deadline of one `GetLayout` or `PushLayout` call.
const CALL_TIMEOUT: Duration = Duration::from_secs(3);

/// A layout received from a peer could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("layout from {from} does not decode: {source}")]
    Decode {
        from: String,
        source: serde_json::Error,
    },
    #[error(transparent)]
    Transport(#[from] crate::transport::TransportError),
    #[error("layout from {from} not fetched: {source}")]
    Fetch {
        from: String,
        source: super::catch_up::FetchError,
    },
    #[error(transparent)]
    View(#[from] super::ViewError),
}

/// The answer of `PushLayout` to a layout it did not take: "nothing
/// applied" for one that does not decode or derive, "maybe" for one whose
/// saving failed (the engine may have written it, and it loads on the next
/// start: review-fix-types T2, it said "no").
impl From<SyncError> for crate::error::GeokvError {
    fn from(e: SyncError) -> Self {
        use crate::error::GeokvError;
        match e {
            SyncError::View(super::ViewError::Persist { .. }) => {
                GeokvError::Internal(format!("{e}; it may have been saved"))
            }
            SyncError::Decode { .. } | SyncError::View(_) => {
                GeokvError::LayoutRefused(e.to_string())
            }
            SyncError::Transport(_) | SyncError::Fetch { .. } => {
                GeokvError::Internal(e.to_string())
            }
        }
    }
}

/// Spreads and fetches layouts for one node.
pub struct LayoutSync {
    cluster: Cluster,
    peers: Arc<Peers>,
    /// A fetch is under way (one at a time; the next digest retries).
    fetching: AtomicBool,
    /// A peer seeded from another topology file was reported (once).
    seed_conflict_reported: AtomicBool,
    /// Where fetches and pushes run: the node's task set.
    spawner: Spawner,
    /// How gossip's fetches reach a member (the transport but in tests).
    source: Arc<dyn LayoutSource>,
    /// What gossip showed, and the newer layouts not installed yet.
    staging: Mutex<Staging>,
}

/// A layout as sent on the wire.
pub fn to_message(layout: &Layout) -> LayoutMessage {
    LayoutMessage {
        version: layout.version,
        json: serde_json::to_vec(layout).expect("a layout always serialises"),
        ..Default::default()
    }
}

/// [`to_message`] with what this node knows of its lineage.
pub fn to_message_with(layout: &Layout, lineage: &Lineage) -> LayoutMessage {
    let mut msg = to_message(layout);
    lineage.to_message(&mut msg);
    msg
}

/// A layout received from `from`.
pub fn from_message(from: &str, msg: &LayoutMessage) -> Result<Layout, SyncError> {
    decode(msg).map_err(|source| SyncError::Decode {
        from: from.to_string(),
        source,
    })
}

/// The layout of `msg`, or why it does not decode.
pub(super) fn decode(msg: &LayoutMessage) -> Result<Layout, serde_json::Error> {
    serde_json::from_slice(&msg.json)
}

impl LayoutSync {
    pub fn new(cluster: Cluster, peers: Arc<Peers>, spawner: Spawner) -> Arc<LayoutSync> {
        let source = Arc::new(PeersSource(peers.clone()));
        LayoutSync::with_source(cluster, peers, spawner, source)
    }

    /// [`LayoutSync::new`] whose gossip fetches go through `source`.
    pub fn with_source(
        cluster: Cluster,
        peers: Arc<Peers>,
        spawner: Spawner,
        source: Arc<dyn LayoutSource>,
    ) -> Arc<LayoutSync> {
        Arc::new(LayoutSync {
            cluster,
            peers,
            fetching: AtomicBool::new(false),
            seed_conflict_reported: AtomicBool::new(false),
            spawner,
            source,
            staging: Mutex::default(),
        })
    }

    /// Puts our layout version and digest on an outgoing digest.
    pub fn stamp(&self, digest: &mut GossipDigest) {
        let view = self.cluster.current();
        digest.layout_version = view.version();
        digest.layout_digest = view.layout.digest().to_be_bytes().to_vec();
    }

    /// Whether `digest` names a layout we should fetch: a newer version, or
    /// our version with another digest (a conflict the merge resolves).
    ///
    /// Except between two seed layouts (version 1): those come from each
    /// node's own topology file, and converging them by digest would let a
    /// node still running an old file take an edited file's layout back on
    /// every node of a rolling restart. Each node keeps its own seed, the
    /// difference is logged (once) and makes the node not ready
    /// ([`Cluster::serving`]) until a layout change; changes are proposals.
    pub fn is_behind(&self, digest: &GossipDigest) -> bool {
        let view = self.cluster.current();
        let theirs = digest.layout_version;
        let differs = !digest.layout_digest.is_empty()
            && digest.layout_digest != view.layout.digest().to_be_bytes();
        if theirs == SEED_VERSION && view.version() == SEED_VERSION && differs {
            self.cluster.report_seed_mismatch(&digest.from);
            if !self.seed_conflict_reported.swap(true, Ordering::Relaxed) {
                tracing::warn!(peer = %digest.from,
                    "layout: this peer was seeded from another topology file; each node keeps its own seed (v1) until a layout change is proposed");
            }
            return false;
        }
        theirs > view.version() || (theirs == view.version() && differs)
    }

    /// Looks at a digest received from `digest.from`: notes the layout it
    /// advertises; when it is newer (or conflicting), fetches it in the
    /// background unless staged already, and installs the newest staged
    /// layout the members back (`super::staging`).
    pub fn observe(self: &Arc<Self>, digest: &GossipDigest) {
        if self.peers.faults().holds_layouts() {
            return;
        }
        let advertised = digest_of(&digest.layout_digest);
        if let Some(d) = advertised {
            let mut staging = self.staging.lock();
            staging.heard(&digest.from, digest.layout_version, d);
        }
        if !self.is_behind(digest) || self.fetching.swap(true, Ordering::AcqRel) {
            return;
        }
        let staged = advertised.is_some_and(|d| self.staging.lock().has(d));
        let (this, from) = (self.clone(), digest.from.clone());
        self.spawner.spawn("layout fetch", async move {
            let fetched = if staged {
                Ok(None)
            } else {
                this.fetch(&from).await
            };
            let done = fetched.and_then(|f| this.install_backed(f));
            match done {
                Ok(Installed::Swapped { from: a, to, .. }) => {
                    tracing::info!(peer = %from, from = a, to, "layout: caught up by gossip")
                }
                Ok(Installed::Unchanged { .. }) => {}
                // Logged by the guard (once at warn).
                Err(SyncError::View(super::ViewError::Unbacked { .. })) => {}
                Err(e) => tracing::warn!(peer = %from, error = %e, "layout: fetch failed"),
            }
            this.fetching.store(false, Ordering::Release);
        });
    }

    /// Fetches `from`'s layout (`None` when `from` is not a member here:
    /// another member will tell us).
    pub async fn fetch(&self, from: &str) -> Result<Option<(Layout, Lineage)>, SyncError> {
        let Some(peer) = self.cluster.current().node(from).cloned() else {
            return Ok(None);
        };
        let fetched = self.source.layout_with_lineage(&peer, CALL_TIMEOUT).await;
        let layout = fetched.map_err(|source| SyncError::Fetch {
            from: from.to_string(),
            source,
        })?;
        Ok(Some(layout))
    }

    /// Stages `fetched` when newer than the layout in force (one of the
    /// same or an older version is installed at once: merged, or refused
    /// as a fork), then installs the newest staged layout the members
    /// back, if any.
    fn install_backed(&self, fetched: Option<(Layout, Lineage)>) -> Result<Installed, SyncError> {
        let installed = self.cluster.current().version();
        let now = tokio::time::Instant::now();
        match fetched {
            Some((l, lineage)) if l.version <= installed => {
                let peer = super::Source::Peer;
                return Ok(self.cluster.install_from(l, lineage, peer)?);
            }
            Some((l, lineage)) => self.staging.lock().stage_with(l, lineage, now),
            None => {}
        }
        let ready = (self.staging.lock()).ready(installed, tokio::time::Instant::now());
        let Some((layout, how)) = ready else {
            return Ok(Installed::Unchanged { version: installed });
        };
        // Only a quorum of its voters outweighs the install guard's
        // objections (`super::guard`); the rest is one peer's word.
        let source = match how {
            super::staging::Backing::Voters => Source::Voters,
            _ => Source::Peer,
        };
        let lineage = self.staging.lock().take_lineage(layout.digest());
        let version = layout.version;
        let done = (self.cluster).install_from(layout.clone(), lineage.clone(), source);
        match &done {
            Ok(_) => {
                tracing::info!(version, backing = ?how, "layout: a staged layout is backed by the members' gossip")
            }
            // Kept until a quorum of its voters shows it.
            Err(super::ViewError::Unbacked { .. }) => {
                (self.staging.lock()).stage_with(layout, lineage, tokio::time::Instant::now())
            }
            Err(_) => {}
        }
        Ok(done?)
    }

    /// What `GetLayout` answers: the layout in force and its lineage.
    pub fn serve_get(&self) -> LayoutMessage {
        let (layout, lineage) = self.cluster.current_with_lineage();
        to_message_with(&layout, &lineage)
    }

    /// What `PushLayout` does: install, answer our version after it.
    pub fn serve_push(&self, from: &str, msg: &LayoutMessage) -> Result<u64, SyncError> {
        let layout = from_message(from, msg)?;
        if self.peers.faults().holds_layouts() {
            return Ok(self.cluster.current().version());
        }
        let lineage = Lineage::from_message(msg);
        (self.cluster).install_from(layout, lineage, Source::Peer)?;
        Ok(self.cluster.current().version())
    }

    /// The hook [`Cluster::propose`] pushes with: every other member of the
    /// new layout gets it, concurrently, best-effort.
    pub fn push_hook(self: &Arc<Self>) -> PushHook {
        let this = Arc::downgrade(self);
        Arc::new(move |layout: Arc<Layout>| {
            let Some(this) = this.upgrade() else { return };
            let msg = to_message_with(&layout, &this.cluster.lineage_of(&layout));
            let view = this.cluster.current();
            for peer in view.members().iter().filter(|n| n.id != view.me_id()) {
                let (peers, peer, msg) = (this.peers.clone(), peer.clone(), msg.clone());
                this.spawner.spawn("layout push", async move {
                    if let Err(e) = peers.push_layout(&peer, msg, CALL_TIMEOUT).await {
                        tracing::debug!(peer = %peer.id, error = %e, "layout: push failed; gossip will carry it");
                    }
                });
            }
        })
    }
}

/// Fetches `from`'s layout and installs it into `cluster`: gossip's
/// catch-up ([`LayoutSync::fetch`]), and the hint deliverer's when a
/// receiver placed a hint's key elsewhere in a newer view
/// (`hints::schedule::park`). Nothing when `from` is not a member here.
pub async fn fetch_from(
    cluster: &Cluster,
    peers: &Peers,
    from: &str,
) -> Result<Installed, SyncError> {
    let Some(peer) = cluster.current().node(from).cloned() else {
        // Not a member of our view: another member will tell us.
        return Ok(Installed::Unchanged {
            version: cluster.current().version(),
        });
    };
    let msg = peers.get_layout(&peer, CALL_TIMEOUT).await?;
    let layout = from_message(from, &msg)?;
    let lineage = Lineage::from_message(&msg);
    Ok(cluster.install_from(layout, lineage, Source::Peer)?)
}

/// Keeps the peer channels and the gossip members on the view in force.
/// It applies the view in force first, so a view installed between the
/// start of the servers and this task is not missed.
pub async fn follow(
    cluster: Cluster,
    peers: Arc<Peers>,
    gossiper: Gossiper,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut views = cluster.subscribe();
    loop {
        let view = views.borrow_and_update().clone();
        peers.retain(|id| view.node(id).map(|n| n.peer_address));
        gossiper.set_members(view.members());
        tokio::select! {
            changed = views.changed() => if changed.is_err() { return },
            _ = shutdown.wait_for(|v| *v) => return,
        }
    }
}

#[cfg(test)]
mod refusal_tests {
    use super::*;
    use crate::error::GeokvError;

    fn applied(e: SyncError) -> (tonic::Code, String) {
        let status = tonic::Status::from(GeokvError::from(e));
        let applied = status.metadata().get(crate::proto::APPLIED_METADATA);
        let applied = applied
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        (status.code(), applied)
    }

    /// A push whose saving failed may have been saved: "maybe", INTERNAL.
    #[test]
    fn a_layout_push_that_failed_to_save_may_have_been_applied() {
        let io = crate::engine::EngineError::SyncFailed("disk gone".into());
        let persist = SyncError::View(super::super::ViewError::Persist {
            version: 2,
            source: super::super::store::StoreError::Engine(io),
        });
        assert_eq!(applied(persist), (tonic::Code::Internal, "maybe".into()));
        let undecodable = LayoutMessage {
            version: 2,
            json: b"{".to_vec(),
            ..Default::default()
        };
        let decode = from_message("n2", &undecodable).expect_err("does not decode");
        let refused = (tonic::Code::FailedPrecondition, "no".to_string());
        assert_eq!(applied(decode), refused);
    }
}
