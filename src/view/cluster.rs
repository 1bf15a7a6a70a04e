//! [`Cluster`]: the handle on the view in force (see the module docs of
//! [`crate::view`]).
//! Must not: build views (that is `ClusterView`), decide movements, or hold
//! request logic.

use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;
use parking_lot::RwLock;
use tokio::sync::watch;

use super::acceptor::{Acceptor, AcceptorError};
use super::cas::{self, AcceptorNet};
use super::errors::{NotServing, ProposeError, ViewError};
use super::ClusterView;
use crate::engine::Engine;
use crate::layout::consensus::{Msg, Reply};
use crate::layout::{Layout, NodeState, VersionConflict};

/// How long [`Cluster::propose`] tries to get its change decided.
pub const PROPOSE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

/// What [`Cluster::install`] did.
#[derive(Debug)]
pub enum Installed {
    /// The layout was not newer than the current one (or equal to it).
    Unchanged { version: u64 },
    /// A new view is in force.
    Swapped {
        from: u64,
        to: u64,
        conflict: Option<VersionConflict>,
    },
}

/// Pushes a freshly proposed layout to peers (best effort).
pub type PushHook = Arc<dyn Fn(Arc<Layout>) + Send + Sync>;

/// The node's handle on the cluster view in force. Clones share it.
///
/// API (kept stable for the movement code built on it):
/// - [`Cluster::current`]: the view in force, lock-free; a request loads it
///   once and uses that view from start to end.
/// - [`Cluster::subscribe`]: a `watch` of views, for loops that follow
///   changes (peers, gossip members, hint destinations, movements).
/// - [`Cluster::install`]: a layout learned from elsewhere (gossip, a push,
///   a fetch); merged with the current one by [`Layout::merge`], and if that
///   changes anything persisted, then swapped, then subscribers notified.
/// - [`Cluster::propose`]: a change made here; it must be exactly the
///   current version + 1 ([`ProposeError::NotNext`] names the current one),
///   and is a compare-and-set on the cluster ([`super::cas`]): a majority
///   of the current members must accept it for that version, else it is
///   refused ([`ProposeError::Concurrent`], the winner installed here) or
///   undecided ([`ProposeError::Cas`]). Only chosen layouts are installed
///   as above, then pushed to peers best-effort (gossip of layout
///   versions guarantees convergence).
/// - [`Cluster::accept`]: this node as an acceptor of those CASes.
#[derive(Clone)]
pub struct Cluster {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) me: String,
    pub(super) view: ArcSwap<ClusterView>,
    pub(super) tx: watch::Sender<Arc<ClusterView>>,
    /// Where layouts are persisted; `None` in tests of a fixed view.
    pub(super) engine: Option<Arc<dyn Engine>>,
    /// Serialises merge → persist → swap (written); held read by
    /// [`Cluster::while_current`] and [`Cluster::with_current`] to keep a
    /// view in force.
    pub(super) install: RwLock<()>,
    /// The lineage of the layout in force (`super::lineage`); written
    /// with the install lock held (written).
    pub(super) lineage: parking_lot::Mutex<super::lineage::Lineage>,
    /// The last layout the install guard refused (version, digest): a
    /// repeat is logged at debug only (`super::guard`).
    pub(super) last_refused: parking_lot::Mutex<Option<(u64, u128)>>,
    push: OnceLock<PushHook>,
    /// Reaches the other acceptors of a change; without it only this node
    /// answers (a single-member cluster, tests).
    net: OnceLock<Arc<dyn AcceptorNet>>,
    pub(super) acceptor: Acceptor,
    /// A peer whose seed layout (v1) differs from ours: set by gossip.
    seed_mismatch: parking_lot::Mutex<Option<String>>,
    /// The newest layout version a replica write sent here was planned on
    /// ([`Cluster::note_planned`]).
    newest_planned: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("me", &self.inner.me)
            .field("version", &self.current().version())
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// A handle on `layout` as seen by node `me`, persisting later changes
    /// in `engine` (if any). The caller has persisted `layout` itself
    /// (see [`super::store::open`]).
    pub fn new(
        layout: Layout,
        me: &str,
        engine: Option<Arc<dyn Engine>>,
    ) -> Result<Cluster, ViewError> {
        let version = layout.version;
        let view = Arc::new(
            ClusterView::derive(layout, me)
                .map_err(|source| ViewError::Derive { version, source })?,
        );
        publish_gauges(&view);
        let (tx, _) = watch::channel(view.clone());
        let acceptor = Acceptor::new(engine.clone());
        let lineage = (engine.as_deref()).map(|e| super::lineage::load(e, &view.layout));
        Ok(Cluster {
            inner: Arc::new(Inner {
                me: me.to_string(),
                view: ArcSwap::new(view),
                tx,
                engine,
                install: RwLock::new(()),
                lineage: parking_lot::Mutex::new(lineage.unwrap_or_default()),
                last_refused: parking_lot::Mutex::new(None),
                push: OnceLock::new(),
                net: OnceLock::new(),
                acceptor,
                seed_mismatch: parking_lot::Mutex::new(None),
                newest_planned: std::sync::atomic::AtomicU64::new(0),
            }),
        })
    }

    /// A fixed, unpersisted view of `topology`'s seed layout (tests, tools).
    pub fn fixed(topology: &crate::topology::Topology, me: &str) -> Cluster {
        Cluster::new(Layout::seed(topology), me, None).expect("a seed layout has no movement")
    }

    /// This node's id.
    pub fn me(&self) -> &str {
        &self.inner.me
    }

    /// The view in force.
    pub fn current(&self) -> Arc<ClusterView> {
        self.inner.view.load_full()
    }

    /// Records that `peer` advertises a seed layout (v1) other than ours:
    /// the two were started from different topology files, and their
    /// quorums need not intersect.
    pub fn report_seed_mismatch(&self, peer: &str) {
        let mut m = self.inner.seed_mismatch.lock();
        if m.is_none() {
            *m = Some(peer.to_string());
        }
    }

    /// Whether this node may serve: not once its storage refuses writes
    /// after a failed WAL fsync (until a restart: every write it
    /// coordinated would fail, and it could not install layouts), nor once
    /// it has left the cluster (decommissioned or removed: clients go to
    /// another node while it drains its queues), nor while it is on its
    /// seed layout and a peer advertised another seed (until a layout
    /// change, v2 or later, supersedes both). The error says why. The one
    /// answer to "may this node serve": the client port and `/health`.
    pub fn serving(&self) -> Result<(), NotServing> {
        let refused = self.inner.engine.as_ref().and_then(|e| e.writes_refused());
        if let Some(reason) = refused {
            return Err(NotServing::WritesRefused { reason });
        }
        let view = self.current();
        let state = view.layout.node(view.me_id()).map(|(_, _, n)| n.state);
        if let Some(state @ (NodeState::Left | NodeState::Removed)) = state {
            let node = view.me_id().to_string();
            return Err(NotServing::Left { node, state });
        }
        if view.version() != crate::layout::SEED_VERSION {
            return Ok(());
        }
        match &*self.inner.seed_mismatch.lock() {
            None => Ok(()),
            Some(peer) => Err(NotServing::SeedMismatch { peer: peer.clone() }),
        }
    }

    /// A receiver that sees every view swapped in from now on.
    pub fn subscribe(&self) -> watch::Receiver<Arc<ClusterView>> {
        self.inner.tx.subscribe()
    }

    /// Sets the hook [`Cluster::propose`] pushes new layouts with (once).
    pub fn set_push(&self, hook: PushHook) {
        let _ = self.inner.push.set(hook);
    }

    /// Sets how [`Cluster::propose`] reaches the other acceptors (once).
    pub fn set_net(&self, net: Arc<dyn AcceptorNet>) {
        let _ = self.inner.net.set(net);
    }

    /// Answers a layout CAS message as an acceptor; the new acceptor
    /// state is durable first. Blocking (an fsync). Holds the install lock
    /// (read) throughout, so that no install checks this acceptor's state
    /// in between (`super::guard`); an install waits for the fsync.
    pub fn accept(&self, msg: &Msg<Layout>) -> Result<Reply<Layout>, AcceptorError> {
        let _guard = crate::blocking::read(&self.inner.install);
        self.inner.acceptor.handle(&self.current().layout, msg)
    }

    /// [`Self::accept`], with the lineage of the layout a DECIDED or
    /// WRONG_BASE reply names (the one installed here, read under the same
    /// lock): the holder's proof of choice goes to the proposer
    /// (`cas::Answer`, review-layout31 H1).
    pub fn answer(&self, msg: &Msg<Layout>) -> Result<cas::Answer, AcceptorError> {
        let _guard = crate::blocking::read(&self.inner.install);
        let reply = self.inner.acceptor.handle(&self.current().layout, msg)?;
        let lineage = match &reply {
            Reply::Decided { .. } | Reply::WrongBase { .. } => self.inner.lineage.lock().clone(),
            _ => Default::default(),
        };
        Ok(cas::Answer { reply, lineage })
    }

    /// Records that a write planned on layout `version` reached this node,
    /// *before* it is applied: a coordinator already on a newer layout may
    /// send this node writes for ranges it gains there, and nothing may
    /// drop those ranges (cleanup) until this node has that layout too.
    pub fn note_planned(&self, version: u64) {
        (self.inner.newest_planned).fetch_max(version, std::sync::atomic::Ordering::SeqCst);
    }

    /// The newest version [`Cluster::note_planned`] saw.
    pub fn newest_planned(&self) -> u64 {
        (self.inner.newest_planned).load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Runs `f` only if `view` is still the view in force, and keeps it in
    /// force until `f` returns: installs wait on the same lock, so no view
    /// is swapped in between the check and the end of `f`. `None` (and `f`
    /// not run) when another view is in force. For short decisions that
    /// are only valid in one view (repair deleting its records); `f` must
    /// not install a view itself.
    pub fn while_current<T>(&self, view: &Arc<ClusterView>, f: impl FnOnce() -> T) -> Option<T> {
        let _guard = crate::blocking::read(&self.inner.install);
        Arc::ptr_eq(view, &self.current()).then(f)
    }

    /// [`Self::while_current`], and also with no replica write between its
    /// check and its apply ([`Self::with_current`] holds the same lock for
    /// reading): every such write is entirely before `f` or entirely after
    /// it. For deletes that must not race an apply (cleanup dropping
    /// ranges after checking that no write planned on a newer layout
    /// arrived; repair deleting its records). Replica writes wait meanwhile
    /// (off the async workers), so `f` should be short: a write in it goes
    /// through [`Self::write_exclusive`], which never waits out a write
    /// stall with the lock held.
    pub fn while_current_exclusive<T>(
        &self,
        view: &Arc<ClusterView>,
        f: impl FnOnce() -> T,
    ) -> Option<T> {
        let _guard = crate::blocking::write(&self.inner.install);
        Arc::ptr_eq(view, &self.current()).then(f)
    }

    /// Writes `batch` as [`Self::while_current_exclusive`] runs `f`: only
    /// while `view` is in force, after `check` passes, with no replica
    /// apply or install in between; `None` (nothing written) once another
    /// view is in force. But never across a write stall, which can last
    /// seconds while every apply and install waits on this lock: the
    /// batch is tried without waiting ([`Engine::write_unless_stalled`]);
    /// when writes are stopped, the lock is let go, the stall waited out
    /// ([`Engine::wait_while_stalled`]), and the check and the write are
    /// tried again. Blocking. For cleanup's and repair's deletes.
    pub fn write_exclusive<E: From<crate::engine::EngineError>>(
        &self,
        view: &Arc<ClusterView>,
        engine: &dyn Engine,
        batch: &crate::engine::WriteBatch,
        check: impl Fn() -> Result<(), E>,
    ) -> Option<Result<(), E>> {
        loop {
            let written = self.while_current_exclusive(view, || {
                check()?;
                Ok::<_, E>(engine.write_unless_stalled(batch)?)
            })?;
            match written {
                Ok(true) => return Some(Ok(())),
                Err(e) => return Some(Err(e)),
                Ok(false) => {}
            }
            if let Err(e) = engine.wait_while_stalled() {
                return Some(Err(e.into()));
            }
        }
    }

    /// Runs `f` on the view in force and keeps it in force until `f`
    /// returns (installs wait; other readers do not). For a check and the
    /// local apply it allows (a replica write: `view::stale_view`);
    /// `f` must not install a view, take this lock again, or wait on the
    /// network.
    pub fn with_current<T>(&self, f: impl FnOnce(&Arc<ClusterView>) -> T) -> T {
        let _guard = crate::blocking::read(&self.inner.install);
        f(&self.current())
    }

    /// Installs a layout learned from elsewhere on one peer's word, its
    /// lineage unknown: [`Cluster::install_from`].
    pub fn install(&self, incoming: Layout) -> Result<Installed, ViewError> {
        self.install_from(incoming, Default::default(), super::Source::Peer)
    }

    /// Proposes the next layout: exactly the current version + 1, decided
    /// by a majority of the current members (see the type's docs); the
    /// chosen layout is installed here, then pushed to peers best-effort.
    pub async fn propose(&self, next: Layout) -> Result<Arc<ClusterView>, ProposeError> {
        let base = self.current();
        if next.version != base.version() + 1 {
            return Err(ProposeError::NotNext {
                current: base.version(),
                proposed: next.version,
            });
        }
        let net = cas::LocalFirst {
            cluster: self.clone(),
            remote: self.inner.net.get().cloned(),
        };
        let decided = match cas::decide(&net, self.me(), &base.layout, next, PROPOSE_DEADLINE).await
        {
            Err(cas::CasError::WrongBase {
                held,
                lineages,
                maybe_applied,
                ..
            }) => return Err(self.on_wrong_base(&base.layout, &held, &lineages, maybe_applied)),
            Err(cas::CasError::Superseded {
                slot,
                layout,
                lineage,
            }) => {
                // Decided and newer than the slot: one holder's word, with
                // the lineage its holders' answers carried.
                let (peer, known) = (super::Source::Peer, lineage.clone());
                if let Err(e) = self.install_from((*layout).clone(), known, peer) {
                    tracing::warn!(version = layout.version, error = %e, "layout: a newer layout learned while proposing not installed");
                }
                let e = cas::CasError::Superseded {
                    slot,
                    layout,
                    lineage,
                };
                return Err(e.into());
            }
            decided => decided?,
        };
        let chosen = Arc::new(decided.layout);
        let (lineage, backed) = (decided.lineage, decided.source);
        if let Err(source) = self.install_from((*chosen).clone(), lineage, backed) {
            return Err(ProposeError::NotInstalled {
                version: chosen.version,
                ours: decided.ours,
                source,
            });
        }
        tracing::info!(
            version = chosen.version,
            ours = decided.ours,
            "layout: decided"
        );
        if let Some(push) = self.inner.push.get() {
            push(chosen.clone());
        }
        if !decided.ours {
            return Err(ProposeError::Concurrent {
                version: chosen.version,
                now: cas::describe(&chosen),
            });
        }
        Ok(self.current())
    }
}

/// `geokv_layout_version` and `geokv_pending_ranges` of the view in force.
pub(super) fn publish_gauges(view: &ClusterView) {
    metrics::gauge!("geokv_layout_version").set(view.version() as f64);
    let pending: usize = view
        .layout
        .keyspaces
        .keys()
        .map(|ks| view.pending.ranges(ks).count())
        .sum();
    metrics::gauge!("geokv_pending_ranges").set(pending as f64);
}
