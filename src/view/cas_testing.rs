//! Test support for the layout CAS: a group of in-process [`Cluster`]s,
//! one per member of a layout, whose acceptors reach each other by direct
//! calls (a node can be cut off), and whose proposals are pushed to every
//! node as `PushLayout` would; and acceptors behind a scripted network
//! ([`ScriptedNet`]).
//! Must not: be used outside tests.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use tokio::sync::{watch, Notify};

use super::cas::{AcceptorNet, CallError, CallResult};
use super::lineage::Lineage;
use super::{Cluster, Source};
use crate::engine::Engine;
use crate::layout::consensus::{Ballot, Msg, Reply};
use crate::layout::Layout;
use crate::topology::{NodeInfo, Topology};
use crate::transport::TransportError;

/// The dev seed cut down to dc1's three nodes (rf 1).
pub fn three_nodes() -> Layout {
    let mut l = Layout::seed(&Topology::dev());
    l.datacenters.retain(|d| d.name == "dc1");
    for spec in l.keyspaces.values_mut() {
        spec.replication = [("dc1".to_string(), 1)].into_iter().collect();
    }
    l
}

/// `l` + keyspace `name`, as the next version.
pub fn with_keyspace(l: &Layout, name: &str) -> Layout {
    let mut next = l.clone();
    next.version += 1;
    let spec = (next.keyspaces.values().next()).expect("one keyspace");
    next.keyspaces.insert(name.to_string(), spec.clone());
    next
}

/// The nodes of a group, by id, the ones cut off, and the accepts held
/// back ([`Group::hold_accepts`]).
pub struct Group {
    nodes: Mutex<BTreeMap<String, Cluster>>,
    cut: Mutex<BTreeSet<String>>,
    holding: AtomicBool,
    held: AtomicUsize,
    arrived: Notify,
    release: watch::Sender<bool>,
}

struct Net(Weak<Group>);

impl AcceptorNet for Net {
    fn call(
        &self,
        to: &NodeInfo,
        msg: Msg<Layout>,
    ) -> Pin<Box<dyn Future<Output = CallResult> + Send>> {
        let group = self.0.upgrade();
        let to = to.id.clone();
        Box::pin(async move {
            let group = group.ok_or_else(|| cut(&to))?;
            if group.cut.lock().contains(&to) {
                return Err(cut(&to));
            }
            let node = group.nodes.lock().get(&to).cloned();
            let node = node.ok_or_else(|| cut(&to))?;
            // Lets the other proposer run in between, as a network would.
            tokio::task::yield_now().await;
            if matches!(msg, Msg::Accept { .. }) && group.holding.load(Ordering::SeqCst) {
                let mut release = group.release.subscribe();
                group.held.fetch_add(1, Ordering::SeqCst);
                group.arrived.notify_waiters();
                let _ = release.wait_for(|r| *r).await;
            }
            Ok(node.answer(&msg)?)
        })
    }
}

/// A call to `to` that cannot reach it (gone, cut off, not a member).
fn cut(to: &str) -> CallError {
    CallError::Transport(TransportError::Cut { peer: to.into() })
}

impl Group {
    /// One cluster per member of `layout`, each with its own engine from
    /// `engine` (none when it gives `None`).
    pub fn new(layout: &Layout, engine: impl Fn() -> Option<Arc<dyn Engine>>) -> Arc<Group> {
        let group = Arc::new(Group {
            nodes: Mutex::default(),
            cut: Mutex::default(),
            holding: AtomicBool::new(false),
            held: AtomicUsize::new(0),
            arrived: Notify::new(),
            release: watch::channel(false).0,
        });
        for (_, _, n) in layout.nodes().filter(|(_, _, n)| n.state.is_member()) {
            let c = Cluster::new(layout.clone(), &n.id, engine()).expect("a member's view");
            c.set_net(Arc::new(Net(Arc::downgrade(&group))));
            let (weak, me) = (Arc::downgrade(&group), n.id.clone());
            c.set_push(Arc::new(move |l: Arc<Layout>| {
                let Some(group) = weak.upgrade() else { return };
                let proposer = group.nodes.lock().get(&me).cloned();
                let lineage = proposer.map(|p| p.lineage_of(&l)).unwrap_or_default();
                for (id, node) in group.nodes.lock().iter() {
                    if group.cut.lock().contains(id) {
                        continue;
                    }
                    // As `PushLayout`: one peer's word with its lineage,
                    // which the install guard checks (`view::guard`).
                    let pushed = (*l).clone();
                    match node.install_from(pushed, lineage.clone(), super::Source::Peer) {
                        Ok(_) | Err(super::ViewError::Unbacked { .. }) => {}
                        Err(e) => panic!("a chosen layout installs: {e}"),
                    }
                }
            }));
            group.nodes.lock().insert(n.id.clone(), c);
        }
        group
    }

    /// A proposer's way to this group's acceptors (for one outside it).
    pub fn net(self: &Arc<Self>) -> Arc<dyn AcceptorNet> {
        Arc::new(Net(Arc::downgrade(self)))
    }

    /// Node `id`'s cluster.
    pub fn node(&self, id: &str) -> Cluster {
        self.nodes.lock()[id].clone()
    }

    /// Every node's layout, by id.
    pub fn layouts(&self) -> BTreeMap<String, Arc<Layout>> {
        (self.nodes.lock().iter())
            .map(|(id, c)| (id.clone(), c.current().layout.clone()))
            .collect()
    }

    /// Accepts sent to other nodes wait until [`Group::release`].
    pub fn hold_accepts(&self) {
        self.holding.store(true, Ordering::SeqCst);
    }

    /// Waits until at least `n` accepts are held back.
    pub async fn held(&self, n: usize) {
        loop {
            let arrived = self.arrived.notified();
            if self.held.load(Ordering::SeqCst) >= n {
                return;
            }
            arrived.await;
        }
    }

    /// Lets every held accept (and later ones) through.
    pub fn release(&self) {
        self.holding.store(false, Ordering::SeqCst);
        self.release.send_replace(true);
    }

    /// Node `id` no longer answers nor receives pushes.
    pub fn cut(&self, id: &str) {
        self.cut.lock().insert(id.to_string());
    }
}

/// An in-memory engine (the acceptor state is persisted in it).
pub fn engine() -> Option<Arc<dyn Engine>> {
    use crate::engine::{memory::MemoryEngine, Limits};
    Some(Arc::new(MemoryEngine::new(Limits::default())))
}

/// An acceptor holding `layouts` installed in order.
pub fn acceptor(id: &str, layouts: &[&Layout]) -> Cluster {
    let c = Cluster::new(layouts[0].clone(), id, engine()).expect("a view");
    for l in &layouts[1..] {
        c.install((*l).clone()).expect("install");
    }
    c
}

/// Acceptors by id (absent: unreachable), reached by direct calls; a
/// push is installed as `PushLayout` would (one peer's word);
/// `catch_up`: an acceptor that installs a layout once the (paused) clock
/// passed an instant.
pub struct ScriptedNet {
    pub nodes: BTreeMap<String, Cluster>,
    pub catch_up: Option<(String, tokio::time::Instant, Layout)>,
}

impl AcceptorNet for ScriptedNet {
    fn call(
        &self,
        to: &NodeInfo,
        msg: Msg<Layout>,
    ) -> Pin<Box<dyn Future<Output = CallResult> + Send>> {
        let Some(node) = self.nodes.get(&to.id) else {
            let unreachable = cut(&to.id);
            return Box::pin(async { Err(unreachable) });
        };
        if let Some((id, at, layout)) = &self.catch_up {
            if *id == to.id
                && tokio::time::Instant::now() >= *at
                && node.current().layout.version < layout.version
            {
                node.install(layout.clone()).expect("catch up");
            }
        }
        let reply = node.answer(&msg).map_err(CallError::from);
        Box::pin(async move { reply })
    }

    fn push(&self, to: &NodeInfo, layout: &Layout, lineage: &Lineage) -> super::cas::PushFuture {
        let done = match self.nodes.get(&to.id) {
            Some(node) => (node.install_from(layout.clone(), lineage.clone(), Source::Peer))
                .map(drop)
                .map_err(|e| {
                    let (peer, message) = (to.id.clone(), e.to_string());
                    CallError::Transport(TransportError::NotSent { peer, message })
                }),
            None => Err(cut(&to.id)),
        };
        Box::pin(async move { done })
    }
}

/// `node` promises and accepts `value` (of version `base.version + 1`)
/// at round `round` of proposer `by`.
pub fn accept_in(node: &Cluster, base: &Layout, value: &Layout, round: u64, by: &str) {
    let ballot = Ballot {
        round,
        node: by.to_string(),
    };
    let (slot, base) = (value.version, base.digest());
    let prepare = Msg::Prepare {
        slot,
        ballot: ballot.clone(),
        base,
    };
    let promised = node.accept(&prepare).expect("answered");
    assert!(matches!(promised, Reply::Promise { .. }), "{promised:?}");
    let value = value.clone();
    let accept = Msg::Accept {
        slot,
        ballot,
        base,
        value,
    };
    let accepted = node.accept(&accept).expect("answered");
    assert!(matches!(accepted, Reply::Accepted { .. }), "{accepted:?}");
}

/// A scripted network whose proposer knows its base's lineage (as
/// `LocalFirst` knows it from its cluster).
pub struct Knowing(pub ScriptedNet, pub Lineage);

impl AcceptorNet for Knowing {
    fn call(
        &self,
        to: &NodeInfo,
        msg: Msg<Layout>,
    ) -> Pin<Box<dyn Future<Output = CallResult> + Send>> {
        self.0.call(to, msg)
    }

    fn push(&self, to: &NodeInfo, layout: &Layout, lineage: &Lineage) -> super::cas::PushFuture {
        self.0.push(to, layout, lineage)
    }

    fn lineage(&self, _: &Layout) -> Lineage {
        self.1.clone()
    }
}
