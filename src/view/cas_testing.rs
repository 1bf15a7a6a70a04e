//! Test support for the layout CAS: a group of in-process [`Cluster`]s,
//! one per member of a layout, whose acceptors reach each other by direct
//! calls (a node can be cut off), and whose proposals are pushed to every
//! node as `PushLayout` would.
//! Must not: be used outside tests.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use tokio::sync::{watch, Notify};

use super::cas::{AcceptorNet, CallResult};
use super::Cluster;
use crate::engine::Engine;
use crate::layout::consensus::Msg;
use crate::layout::Layout;
use crate::topology::{NodeInfo, Topology};

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
            let group = group.ok_or("the group is gone")?;
            if group.cut.lock().contains(&to) {
                return Err(format!("{to} is cut off"));
            }
            let node = group.nodes.lock().get(&to).cloned();
            let node = node.ok_or_else(|| format!("{to} is not in the group"))?;
            // Lets the other proposer run in between, as a network would.
            tokio::task::yield_now().await;
            if matches!(msg, Msg::Accept { .. }) && group.holding.load(Ordering::SeqCst) {
                let mut release = group.release.subscribe();
                group.held.fetch_add(1, Ordering::SeqCst);
                group.arrived.notify_waiters();
                let _ = release.wait_for(|r| *r).await;
            }
            node.accept(&msg).map_err(|e| e.to_string())
        })
    }
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
            let weak = Arc::downgrade(&group);
            c.set_push(Arc::new(move |l: Arc<Layout>| {
                let Some(group) = weak.upgrade() else { return };
                for (id, node) in group.nodes.lock().iter() {
                    if !group.cut.lock().contains(id) {
                        node.install((*l).clone())
                            .expect("a chosen layout installs");
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
