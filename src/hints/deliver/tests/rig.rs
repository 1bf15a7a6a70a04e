//! The driver tests' rig: an in-memory [`Link`] whose live nodes,
//! adopters and layout version a test sets, a pump over a memory engine
//! that counts the queue reads (and the rows of meta scans: anti-entropy
//! records), and helpers that queue entries.

pub(super) use super::super::*;
use crate::engine::testing::{Hooked, Hooks};
use crate::engine::Cf;
pub(super) use crate::engine::{Engine, WriteBatch};
pub(super) use crate::hints::{Awaited, Commit, HintsConfig};
pub(super) use crate::proto::v1::internode::{EntryAck, StreamAck, StreamBatch};
pub(super) use crate::topology::Topology;
pub(super) use crate::version::{ActorId, CausalContext, SiblingSet};
pub(super) use parking_lot::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
pub(super) use tokio::sync::mpsc;

/// One stream the driver opened: what it sends, and where to acknowledge.
pub(super) struct Opened {
    pub(super) at: Instant,
    pub(super) to: String,
    pub(super) adopt: bool,
    pub(super) batches: mpsc::UnboundedReceiver<StreamBatch>,
    pub(super) acks: mpsc::UnboundedSender<Result<StreamAck, TransportError>>,
}

/// An in-memory link to `dc2`, whose live nodes the test sets.
pub(super) struct FakeLink {
    pub(super) live: Mutex<Vec<String>>,
    /// When the driver asked who is live (once per attempt to open).
    pub(super) asked: Mutex<Vec<Instant>>,
    pub(super) opened: mpsc::UnboundedSender<Opened>,
    /// What `also_to` answers (the pending replicas of every key).
    pub(super) also: Vec<String>,
    /// What `adopters` answers.
    pub(super) adopters: Mutex<Vec<String>>,
    /// This node's layout version, and whose layouts it was asked to fetch.
    pub(super) view: Mutex<u64>,
    pub(super) caught_up: Mutex<Vec<String>>,
    /// Nodes up in gossip that cannot be reached from here: opening a
    /// stream to one fails.
    pub(super) unreachable: Mutex<Vec<String>>,
    /// When set, `adopters` answers as the real link does in this
    /// cluster's view in force (`link::offered`, every node up) instead of
    /// the list above.
    pub(super) offered_in: Mutex<Option<crate::view::Cluster>>,
}

impl FakeLink {
    /// A link whose live nodes are `live`, and where the streams it opens go.
    pub(super) fn new(
        live: &[&str],
        also: Vec<String>,
    ) -> (Arc<Self>, mpsc::UnboundedReceiver<Opened>) {
        let (tx, opened) = mpsc::unbounded_channel();
        let link = Arc::new(FakeLink {
            live: Mutex::new(live.iter().map(|s| s.to_string()).collect()),
            asked: Mutex::new(Vec::new()),
            opened: tx,
            also,
            adopters: Mutex::new(Vec::new()),
            view: Mutex::new(5),
            caught_up: Mutex::new(Vec::new()),
            unreachable: Mutex::new(Vec::new()),
            offered_in: Mutex::new(None),
        });
        (link, opened)
    }
}

pub(super) struct FakeWire {
    to: String,
    batches: mpsc::UnboundedSender<StreamBatch>,
    acks: mpsc::UnboundedReceiver<Result<StreamAck, TransportError>>,
}

impl Link for FakeLink {
    type Stream = FakeWire;

    async fn open(&self, to: &str, adopt: bool) -> Result<FakeWire, TransportError> {
        if self.unreachable.lock().iter().any(|n| n == to) {
            return Err(TransportError::NotSent {
                peer: to.to_string(),
                message: "connection refused".into(),
            });
        }
        let (btx, brx) = mpsc::unbounded_channel();
        let (atx, arx) = mpsc::unbounded_channel();
        let opened = Opened {
            at: Instant::now(),
            to: to.to_string(),
            adopt,
            batches: brx,
            acks: atx,
        };
        let _ = self.opened.send(opened);
        Ok(FakeWire {
            to: to.to_string(),
            batches: btx,
            acks: arx,
        })
    }

    fn is_up(&self, id: &str) -> bool {
        let adopter = self.adopters.lock().iter().any(|n| n == id);
        adopter || self.live.lock().iter().any(|n| n == id)
    }

    fn live(&self, _: &Dest) -> Vec<String> {
        self.asked.lock().push(Instant::now());
        self.live.lock().clone()
    }

    fn also_to(&self, _: &str, _: &str, _: &[u8]) -> Vec<String> {
        self.also.clone()
    }

    fn adopters(&self, dest: &Dest) -> Vec<String> {
        if let Some(c) = self.offered_in.lock().as_ref() {
            return crate::hints::link::offered(&c.current(), dest, |_| true);
        }
        self.adopters.lock().clone()
    }

    fn record_adopters(&self) -> Vec<String> {
        if let Some(c) = self.offered_in.lock().as_ref() {
            return crate::hints::link::offered_records(&c.current(), |_| true);
        }
        self.adopters.lock().clone()
    }

    fn view_version(&self) -> u64 {
        *self.view.lock()
    }

    async fn catch_up(&self, from: &str) {
        self.caught_up.lock().push(from.to_string());
    }
}

impl Wire for FakeWire {
    fn to(&self) -> &str {
        &self.to
    }

    async fn send(&mut self, batch: StreamBatch) -> Result<(), TransportError> {
        let _ = self.batches.send(batch);
        Ok(())
    }

    async fn next_ack(&mut self) -> Result<StreamAck, TransportError> {
        match self.acks.recv().await {
            Some(a) => a,
            None => std::future::pending().await,
        }
    }
}

pub(super) struct Rig {
    pub(super) hints: Arc<Hints>,
    pub(super) commit: Commit,
    pub(super) engine: Arc<dyn Engine>,
    pub(super) link: Arc<FakeLink>,
    pub(super) opened: mpsc::UnboundedReceiver<Opened>,
    pub(super) _stop: watch::Sender<bool>,
    /// Reads of the hints column family (pages of a queue) so far.
    pub(super) scans: Arc<AtomicUsize>,
}

pub(super) fn rig(live: &[&str]) -> Rig {
    rig_for(live, Dest::Dc("dc2".into()), Vec::new())
}

pub(super) fn rig_for(live: &[&str], dest: Dest, also: Vec<String>) -> Rig {
    let (engine, scans, _) = counting();
    let cluster = crate::view::Cluster::fixed(&Topology::dev(), "dc1-n1");
    let me = cluster.current().me().expect("dev topology").clone();
    let config = HintsConfig::default();
    let replica = Arc::new(crate::replica::Replica::new(engine.clone(), &me.id, 8));
    let hints = Hints::open(engine.clone(), cluster, me.clone(), config).expect("open");
    let hints = Arc::new(hints.with_replica(replica.clone()));
    let commit = Commit::new(replica, hints.clone());
    let (link, opened) = FakeLink::new(live, also);
    let (stop, shutdown) = watch::channel(false);
    let pump = Pump::new(hints.clone(), link.clone(), me, dest);
    tokio::spawn(pump.run(shutdown));
    Rig {
        hints,
        commit,
        engine,
        link,
        opened,
        _stop: stop,
        scans,
    }
}

/// Appends `key` to dc2's stream (urgent: a coordinator waits on it).
pub(super) fn append(
    r: &Rig,
    key: &[u8],
    urgent: bool,
) -> Option<crate::hints::waiters::StreamWait> {
    let mut set = SiblingSet::new();
    set.update(ActorId(1), &CausalContext::new(), Some("v".into()), 1, 8)
        .expect("one sibling");
    let dcs = vec!["dc2".to_string()];
    let wait: Vec<Awaited> = (urgent.then(|| Awaited {
        dc: "dc2".into(),
        need: 1,
        pending: None,
    }))
    .into_iter()
    .collect();
    let mut b = WriteBatch::new();
    let mut a = (r.commit)
        .stream_append(&dcs, &wait, "default", key, &set, &mut b)
        .expect("append");
    r.engine.write(b).expect("commit");
    r.commit.notify_appended(&dcs, &wait, &a.waits);
    a.waits.pop()
}

pub(super) fn durable(batch: &StreamBatch) -> StreamAck {
    StreamAck {
        batch_id: batch.batch_id,
        entries: (batch.entries.iter())
            .map(|e| EntryAck {
                seq: e.seq,
                replicas: 1,
                durable: true,
                refused: false,
                elsewhere_layout: None,
            })
            .collect(),
    }
}

pub(super) fn gaps_ms(at: &[Instant]) -> Vec<u128> {
    at.windows(2).map(|w| (w[1] - w[0]).as_millis()).collect()
}

pub(super) fn hint(r: &Rig, node: &str, key: &[u8]) -> impl std::future::Future<Output = ()> {
    let mut set = SiblingSet::new();
    set.update(ActorId(1), &CausalContext::new(), Some("v".into()), 1, 8)
        .expect("one sibling");
    let (hints, node, key) = (r.hints.clone(), node.to_string(), key.to_vec());
    async move {
        hints
            .hint_node(&node, "default", &key, &set)
            .await
            .expect("hint")
    }
}

/// A memory engine counting its reads of the hints column family, and
/// the rows its scans of the meta column family return.
pub(super) fn counting() -> (Arc<dyn Engine>, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let (scans, meta_rows) = (Arc::default(), Arc::<AtomicUsize>::default());
    let engine = Arc::new(Hooked::new(Counting {
        scans: Arc::clone(&scans),
        meta_rows: meta_rows.clone(),
    }));
    (engine, scans, meta_rows)
}

struct Counting {
    scans: Arc<AtomicUsize>,
    meta_rows: Arc<AtomicUsize>,
}

impl Hooks for Counting {
    fn after_scan(&self, cf: Cf, rows: usize) {
        match cf {
            Cf::Hints => self.scans.fetch_add(1, Ordering::Relaxed),
            Cf::Meta => self.meta_rows.fetch_add(rows, Ordering::Relaxed),
            _ => 0,
        };
    }
}
