//! The delivery driver's timing, under `tokio::time::pause` (no sleeps, no
//! sockets): back-off after a stall and an urgent entry cutting it short,
//! the backlog's linger, a batch given up after its timeout and resent, and
//! an urgent entry sent while the backlog's window is full.

use super::*;
use crate::engine::memory::MemoryEngine;
use crate::engine::{Engine, Limits, WriteBatch};
use crate::hints::{Awaited, Commit, HintsConfig};
use crate::proto::v1::internode::{EntryAck, StreamAck, StreamBatch};
use crate::topology::Topology;
use crate::version::{ActorId, CausalContext, SiblingSet};
use parking_lot::Mutex;
use tokio::sync::mpsc;

/// One stream the driver opened: what it sends, and where to acknowledge.
struct Opened {
    at: Instant,
    to: String,
    adopt: bool,
    batches: mpsc::UnboundedReceiver<StreamBatch>,
    acks: mpsc::UnboundedSender<Result<StreamAck, TransportError>>,
}

/// An in-memory link to `dc2`, whose live nodes the test sets.
struct FakeLink {
    live: Mutex<Vec<String>>,
    /// When the driver asked who is live (once per attempt to open).
    asked: Mutex<Vec<Instant>>,
    opened: mpsc::UnboundedSender<Opened>,
    /// What `also_to` answers (the pending replicas of every key).
    also: Vec<String>,
    /// What `adopters` answers.
    adopters: Mutex<Vec<String>>,
    /// This node's layout version, and whose layouts it was asked to fetch.
    view: Mutex<u64>,
    caught_up: Mutex<Vec<String>>,
}

struct FakeWire {
    to: String,
    batches: mpsc::UnboundedSender<StreamBatch>,
    acks: mpsc::UnboundedReceiver<Result<StreamAck, TransportError>>,
}

impl Link for FakeLink {
    type Stream = FakeWire;

    async fn open(&self, to: &str, adopt: bool) -> Result<FakeWire, TransportError> {
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

    fn adopters(&self, _: &Dest) -> Vec<String> {
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

struct Rig {
    hints: Arc<Hints>,
    commit: Commit,
    engine: Arc<dyn Engine>,
    link: Arc<FakeLink>,
    opened: mpsc::UnboundedReceiver<Opened>,
    _stop: watch::Sender<bool>,
}

fn rig(live: &[&str]) -> Rig {
    rig_for(live, Dest::Dc("dc2".into()), Vec::new())
}

fn rig_for(live: &[&str], dest: Dest, also: Vec<String>) -> Rig {
    let engine: Arc<dyn Engine> = Arc::new(MemoryEngine::new(Limits::default()));
    let cluster = crate::view::Cluster::fixed(&Topology::dev(), "dc1-n1");
    let me = cluster.current().me().expect("dev topology").clone();
    let config = HintsConfig::default();
    let hints = Arc::new(Hints::open(engine.clone(), cluster, me.clone(), config).expect("open"));
    let replica = Arc::new(crate::replica::Replica::new(engine.clone(), &me.id, 8));
    let commit = Commit::new(replica, hints.clone());
    let (tx, opened) = mpsc::unbounded_channel();
    let link = Arc::new(FakeLink {
        live: Mutex::new(live.iter().map(|s| s.to_string()).collect()),
        asked: Mutex::new(Vec::new()),
        opened: tx,
        also,
        adopters: Mutex::new(Vec::new()),
        view: Mutex::new(5),
        caught_up: Mutex::new(Vec::new()),
    });
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
    }
}

/// Appends `key` to dc2's stream (urgent: a coordinator waits on it).
fn append(r: &Rig, key: &[u8], urgent: bool) -> Option<crate::hints::waiters::StreamWait> {
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

fn durable(batch: &StreamBatch) -> StreamAck {
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

fn gaps_ms(at: &[Instant]) -> Vec<u128> {
    at.windows(2).map(|w| (w[1] - w[0]).as_millis()).collect()
}

#[tokio::test(start_paused = true)]
async fn with_no_live_node_it_backs_off_doubling_and_an_urgent_entry_cuts_it_short() {
    let r = rig(&[]);
    append(&r, b"k", false);
    tokio::time::sleep(Duration::from_millis(6000)).await;
    let asked = r.link.asked.lock().clone();
    assert_eq!(gaps_ms(&asked)[..7], [50, 100, 200, 400, 800, 1600, 2000]);
    // A client now waits: it learns at once that nothing can be streamed to
    // (not at its deadline), and the retry does not wait for the timer.
    let before = r.link.asked.lock().len();
    let t = Instant::now();
    let wait = append(&r, b"u", true).expect("a wait");
    let outcome = wait.outcome().await;
    assert_eq!(outcome, Err("no live node in dc2 to stream to".to_string()));
    assert_eq!(Instant::now(), t, "failed without waiting");
    assert!(r.link.asked.lock().len() > before);
}

#[tokio::test(start_paused = true)]
async fn backlog_appends_linger_into_one_batch() {
    let mut r = rig(&["dc2-n1"]);
    tokio::time::sleep(Duration::from_millis(10)).await; // the first, empty fill
    let t0 = Instant::now();
    append(&r, b"a", false);
    tokio::time::sleep(Duration::from_millis(1)).await;
    append(&r, b"b", false);
    let mut s = r.opened.recv().await.expect("a stream");
    let batch = s.batches.recv().await.expect("a batch");
    assert_eq!(s.at - t0, LINGER, "sent after the linger, not before");
    assert_eq!(batch.entries.len(), 2, "both writes share the batch");
    assert!(!batch.urgent);
    assert!(
        batch.adopt_for.is_empty() && !s.adopt,
        "delivered, not handed over"
    );
}

/// A node that has left, finding no live node of the destination, hands
/// its queue to an adopter of its datacenter (see `adopt`): the batch
/// names the queue, and its entries leave once the adopter has them.
#[tokio::test(start_paused = true)]
async fn with_no_live_destination_a_leaver_hands_its_queue_to_an_adopter() {
    let mut r = rig(&[]);
    *r.link.adopters.lock() = vec!["dc1-n2".into()];
    append(&r, b"a", false);
    append(&r, b"b", true);
    let mut s = r.opened.recv().await.expect("a stream");
    assert_eq!((s.to.as_str(), s.adopt), ("dc1-n2", true));
    let dc2 = Dest::Dc("dc2".into());
    let mut handed = 0;
    while handed < 2 {
        let batch = s.batches.recv().await.expect("a batch");
        assert_eq!(batch.adopt_for, "dc:dc2");
        handed += batch.entries.len();
        s.acks.send(Ok(durable(&batch))).expect("the pump listens");
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(r.hints.backlog_entries(&dc2), 0, "both left the queue");
}

/// An adopter that does not take the batch (refusing it, or too old to
/// know the call) leaves the entries queued, and the next reopen asks the
/// next adopter.
#[tokio::test(start_paused = true)]
async fn entries_an_adopter_does_not_take_stay_and_the_next_adopter_is_asked() {
    let mut r = rig(&[]);
    *r.link.adopters.lock() = vec!["dc1-n2".into(), "dc1-n3".into()];
    append(&r, b"a", false);
    let dc2 = Dest::Dc("dc2".into());
    let mut first = r.opened.recv().await.expect("a stream");
    assert_eq!(first.to, "dc1-n2");
    let batch = first.batches.recv().await.expect("a batch");
    let kept = StreamAck {
        batch_id: batch.batch_id,
        entries: (batch.entries.iter())
            .map(|e| EntryAck {
                seq: e.seq,
                ..Default::default()
            })
            .collect(),
    };
    first.acks.send(Ok(kept)).expect("the pump listens");
    let mut second = r.opened.recv().await.expect("a second stream");
    assert_eq!((second.to.as_str(), second.adopt), ("dc1-n3", true));
    assert_eq!(r.hints.backlog_entries(&dc2), 1, "kept until adopted");
    let again = second.batches.recv().await.expect("resent");
    assert_eq!(again.entries, batch.entries);
    second.acks.send(Ok(durable(&again))).expect("ack");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(r.hints.backlog_entries(&dc2), 0);
}

#[tokio::test(start_paused = true)]
async fn a_batch_not_acknowledged_in_time_is_resent_and_deleted_once_durable() {
    let mut r = rig(&["dc2-n1", "dc2-n2"]);
    let t0 = Instant::now();
    append(&r, b"a", false);
    let mut first = r.opened.recv().await.expect("a stream");
    let sent = first.batches.recv().await.expect("a batch");
    // Never acknowledged: given up after the timeout, sent again on a new
    // stream (to the other live node) after the first back-off.
    let mut second = r.opened.recv().await.expect("a second stream");
    assert_eq!(
        second.at - first.at,
        BATCH_TIMEOUT + super::super::schedule::BACKOFF_MIN
    );
    let again = second.batches.recv().await.expect("resent");
    assert_eq!(again.entries, sent.entries);
    assert!(second.at - t0 >= BATCH_TIMEOUT);
    assert_eq!(
        r.hints.backlog_entries(&Dest::Dc("dc2".into())),
        1,
        "kept until durable"
    );
    second.acks.send(Ok(durable(&again))).expect("ack");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(r.hints.backlog_entries(&Dest::Dc("dc2".into())), 0);
}

#[tokio::test(start_paused = true)]
async fn an_urgent_entry_is_sent_while_the_backlog_window_is_full() {
    let mut r = rig(&["dc2-n1"]);
    for i in 0..400u32 {
        append(&r, &i.to_be_bytes(), false);
    }
    let mut s = r.opened.recv().await.expect("a stream");
    let mut backlog = 0;
    while backlog < BACKLOG_WINDOW_FOR_TEST {
        let b = s.batches.recv().await.expect("backlog batch");
        assert!(!b.urgent);
        backlog += 1;
    }
    let t = Instant::now();
    let _wait = append(&r, b"urgent", true).expect("a wait");
    let b = s.batches.recv().await.expect("urgent batch");
    assert!(b.urgent && b.entries.len() == 1, "the urgent entry alone");
    assert_eq!(
        Instant::now(),
        t,
        "sent at once, no backlog batch acknowledged"
    );
}

const BACKLOG_WINDOW_FOR_TEST: usize = super::super::schedule::BACKLOG_WINDOW;

/// A hint for an owner of a moving range (a strict stream source) reaches
/// the range's pending replica too: it is queued for it before the hint
/// is sent, and only once, though the batch is sent twice.
#[tokio::test(start_paused = true)]
async fn a_hint_for_an_owner_of_a_moving_range_is_copied_to_the_pending_replica_first() {
    let c = Dest::Node("dc1-n2".into());
    let mut r = rig_for(&["dc1-n2"], c.clone(), vec!["dc1-n3".into()]);
    let mut set = SiblingSet::new();
    set.update(ActorId(1), &CausalContext::new(), Some("v".into()), 1, 8)
        .expect("one sibling");
    r.hints
        .hint_node("dc1-n2", "default", b"k", &set)
        .await
        .expect("hint");
    let pending = Dest::Node("dc1-n3".into());
    let mut first = r.opened.recv().await.expect("a stream");
    let sent = first.batches.recv().await.expect("a batch");
    assert_eq!(sent.entries.len(), 1);
    assert_eq!(
        r.hints.backlog_entries(&pending),
        1,
        "queued before the send"
    );
    // Not acknowledged: resent, not copied again.
    let mut second = r.opened.recv().await.expect("a second stream");
    let again = second.batches.recv().await.expect("resent");
    assert_eq!(again.entries.len(), 1);
    assert_eq!(r.hints.backlog_entries(&pending), 1);
    second.acks.send(Ok(durable(&again))).expect("ack");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(r.hints.backlog_entries(&c), 0);
    assert_eq!(
        r.hints.backlog_entries(&pending),
        1,
        "the copy stays for dc1-n3"
    );
}

fn hint(r: &Rig, node: &str, key: &[u8]) -> impl std::future::Future<Output = ()> {
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

/// A node hint its receiver places elsewhere in a newer layout (v7; this
/// node is on v5): this node fetches that layout, the rest of the queue
/// goes on at once on the same stream, and the entry is sent again once
/// this node's view is v7, not before (review Medium of stop 20: it used
/// to back the whole queue off until the view caught up).
#[tokio::test(start_paused = true)]
async fn a_hint_placed_elsewhere_waits_for_the_newer_view_and_the_queue_goes_on() {
    let n2 = Dest::Node("dc1-n2".into());
    let mut r = rig_for(&["dc1-n2"], n2.clone(), Vec::new());
    hint(&r, "dc1-n2", b"k2").await;
    let mut s = r.opened.recv().await.expect("a stream");
    let b = s.batches.recv().await.expect("a batch");
    let seqs: Vec<u64> = b.entries.iter().map(|e| e.seq).collect();
    assert_eq!(seqs.len(), 1);
    let mut a = durable(&b);
    a.entries[0] = EntryAck {
        seq: seqs[0],
        replicas: 0,
        durable: false,
        refused: false,
        elsewhere_layout: Some(7),
    };
    s.acks.send(Ok(a)).expect("ack");
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(*r.link.caught_up.lock(), vec!["dc1-n2".to_string()]);
    assert_eq!(
        r.hints.backlog_entries(&n2),
        1,
        "the entry placed elsewhere is kept"
    );
    // A new hint goes at once, alone, on the same stream: no back-off.
    let t = Instant::now();
    hint(&r, "dc1-n2", b"k3").await;
    let b3 = s.batches.recv().await.expect("the next batch");
    assert!(Instant::now() - t <= LINGER * 2, "not backed off");
    assert_eq!(b3.entries.len(), 1);
    assert_ne!(b3.entries[0].seq, seqs[0]);
    s.acks.send(Ok(durable(&b3))).expect("ack");
    // Not sent again while this node is on v5 (within the park)...
    let held = tokio::time::timeout(Duration::from_millis(1500), s.batches.recv()).await;
    assert!(
        held.is_err(),
        "sent again before the view caught up: {held:?}"
    );
    // ...but once it is on v7, at the next fill.
    *r.link.view.lock() = 7;
    let again = tokio::time::timeout(IDLE_POLL * 2, s.batches.recv()).await;
    let again = again.expect("sent again on v7").expect("a batch");
    assert_eq!(
        again.entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![seqs[0]]
    );
    assert!(r.opened.try_recv().is_err(), "one stream throughout");
}
