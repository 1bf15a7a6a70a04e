//! A leaver's anti-entropy records (`adopt::records`, review Lows of stop
//! 22): handed over a page a round, counted rather than rescanned, a key
//! that is not a record holding nothing up, the drain waiting for them,
//! and nothing recorded once everything was handed over.

use super::rig::*;
use crate::hints::adopt::records;
use crate::repair::plan::REPAIR_PREFIX;
use crate::repair::records::{load_records, QUARANTINE_PREFIX};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The hints of `d`, which has left (`testing::layouts`), on a counting
/// engine; the rows its meta scans returned so far.
fn leaver() -> (Arc<Hints>, Arc<dyn Engine>, Arc<AtomicUsize>, NodeInfo) {
    let (engine, _, meta_rows) = counting();
    let (_, left) = crate::hints::testing::layouts();
    let cluster = crate::view::Cluster::new(left, "d", None).expect("a view");
    let mut me = cluster.current().node("a").expect("a member").clone();
    me.id = "d".into();
    let hints = Hints::open(engine.clone(), cluster, me.clone(), HintsConfig::default());
    (Arc::new(hints.expect("open")), engine, meta_rows, me)
}

/// Records `n` keys for anti-entropy towards dc2.
fn record(hints: &Hints, engine: &Arc<dyn Engine>, n: u32) {
    let dc2 = Dest::Dc("dc2".into());
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let mut b = WriteBatch::new();
        for i in chunk {
            hints
                .store
                .needs_repair("ks", &i.to_be_bytes(), &dc2, &mut b);
        }
        engine.write(b).expect("recorded");
    }
}

/// An adopter that takes every batch it is sent (`take`), or none; how
/// many batches it answered so far.
fn adopter(
    mut opened: mpsc::UnboundedReceiver<Opened>,
    take: Arc<Mutex<bool>>,
) -> Arc<AtomicUsize> {
    let answered = Arc::new(AtomicUsize::new(0));
    let n = answered.clone();
    tokio::spawn(async move {
        while let Some(mut s) = opened.recv().await {
            let (take, n) = (take.clone(), n.clone());
            tokio::spawn(async move {
                while let Some(b) = s.batches.recv().await {
                    let mut ack = durable(&b);
                    let took = *take.lock();
                    ack.entries.iter_mut().for_each(|e| e.durable = took);
                    let _ = s.acks.send(Ok(ack));
                    n.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
    });
    answered
}

/// Waits (real time, at most 20 s) until nothing is left to hand over.
async fn drained(hints: &Hints) {
    for _ in 0..400 {
        if hints.left_to_hand_over().await == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("still {} left", hints.left_to_hand_over().await);
}

/// Handing over 10,000 records reads each about once (before: each round
/// loaded every record left to keep 1000, about 55,000 rows in all), and
/// the drain's polls of what is left read none (before: up to 1000 keys
/// every 200 ms).
#[tokio::test]
async fn handing_over_many_records_reads_each_about_once() {
    let (hints, engine, meta_rows, me) = leaver();
    const N: u32 = 10_000;
    record(&hints, &engine, N);
    for _ in 0..100 {
        assert!(hints.left_to_hand_over().await > 0);
    }
    assert_eq!(meta_rows.load(Ordering::Relaxed), 0, "polls read nothing");
    let (link, opened) = FakeLink::new(&[], Vec::new());
    *link.adopters.lock() = vec!["a".into()];
    adopter(opened, Arc::new(Mutex::new(true)));
    let (_stop, shutdown) = watch::channel(false);
    tokio::spawn(records::run(hints.clone(), link, me, shutdown));
    drained(&hints).await;
    assert!(load_records(&*engine).expect("load").is_empty());
    let read = meta_rows.load(Ordering::Relaxed);
    // One count, one pass handing them over (and the final empty reads).
    assert!(
        read <= 2 * N as usize + 10,
        "{read} rows read for {N} records"
    );
}

/// A key under the records' prefix that is not a record is set aside
/// (logged) and counted by nobody, so it does not hold the leave forever
/// (before: `left_to_hand_over` counted raw keys).
#[tokio::test]
async fn a_record_key_that_does_not_parse_holds_no_leave() {
    let (hints, engine, _, me) = leaver();
    record(&hints, &engine, 2);
    let bad = [REPAIR_PREFIX, &[200, 1, 2]].concat();
    let mut b = WriteBatch::new();
    b.put_raw(crate::engine::Cf::Meta, &bad, b"dc:dc2");
    engine.write(b).expect("written");
    let (link, opened) = FakeLink::new(&[], Vec::new());
    *link.adopters.lock() = vec!["a".into()];
    adopter(opened, Arc::new(Mutex::new(true)));
    let (_stop, shutdown) = watch::channel(false);
    tokio::spawn(records::run(hints.clone(), link, me, shutdown));
    drained(&hints).await;
    let aside = [QUARANTINE_PREFIX, &[200, 1, 2]].concat();
    let meta = crate::engine::Cf::Meta;
    assert_eq!(engine.get_raw(meta, &bad).expect("read"), None);
    assert_eq!(
        engine.get_raw(meta, &aside).expect("read").as_deref(),
        Some(&b"dc:dc2"[..]),
        "kept aside, not lost"
    );
}

/// A node that has left with only records to hand over (no queued entry)
/// is not done, nor sealed, until an adopter took them; its progress line
/// names them (review Lows of stop 22).
#[tokio::test]
async fn a_leaver_with_only_records_left_waits_for_them_and_names_them() {
    let (hints, engine, _, me) = leaver();
    record(&hints, &engine, 3);
    assert_eq!(hints.total_backlog(), 0, "no entry queued");
    let (link, opened) = FakeLink::new(&[], Vec::new());
    *link.adopters.lock() = vec!["a".into()];
    let take = Arc::new(Mutex::new(false));
    let answered = adopter(opened, take.clone());
    let (_stop, shutdown) = watch::channel(false);
    tokio::spawn(records::run(hints.clone(), link, me, shutdown));
    // Offered twice and refused twice (no fixed sleep: review Low of stop 24).
    for _ in 0..400 {
        if answered.load(Ordering::SeqCst) >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(answered.load(Ordering::SeqCst) >= 2, "never offered twice");
    assert_eq!(hints.left_to_hand_over().await, 3, "counted, not handed");
    assert_eq!(hints.seal_if_handed_over().await, 3);
    let per = hints.left_per_queue();
    assert!(per.contains(&(records::LABEL.to_string(), 3)), "{per:?}");
    let dc2 = Dest::Dc("dc2".into());
    (hints.record_for_repair("ks", b"more", &dc2).await).expect("not sealed: recorded");
    *take.lock() = true;
    drained(&hints).await;
    assert!(load_records(&*engine).expect("load").is_empty());
}

/// Once a node that has left handed everything over, a record or a node
/// hint that a request still in flight writes is refused, not left behind
/// in a store nobody drains any more (review Low of stop 22).
#[tokio::test]
async fn once_everything_is_handed_over_later_records_and_hints_are_refused() {
    let (hints, engine, _, me) = leaver();
    record(&hints, &engine, 1);
    let (link, opened) = FakeLink::new(&[], Vec::new());
    *link.adopters.lock() = vec!["a".into()];
    adopter(opened, Arc::new(Mutex::new(true)));
    let (_stop, shutdown) = watch::channel(false);
    tokio::spawn(records::run(hints.clone(), link, me, shutdown));
    drained(&hints).await;
    assert_eq!(hints.seal_if_handed_over().await, 0);
    let dc2 = Dest::Dc("dc2".into());
    let refused = hints.record_for_repair("ks", b"late", &dc2).await;
    assert!(
        matches!(refused, Err(crate::error::GeokvError::HintsSealed)),
        "{refused:?}"
    );
    let mut set = SiblingSet::new();
    set.update(ActorId(1), &CausalContext::new(), Some("v".into()), 1, 8)
        .expect("one sibling");
    assert!(hints.hint_node("b", "ks", b"late", &set).await.is_err());
    assert!(load_records(&*engine).expect("load").is_empty());
    assert_eq!(hints.left_to_hand_over().await, 0);
}

/// The last node of a coordinator-only datacenter (dc3: no keyspace has a
/// replica there) hands its records to a live Normal member of another
/// datacenter once it has left (review M3 of stop 23: they were offered to
/// the members of its own datacenter only, none, and its drain waited
/// forever). The link answers as the real one does (`offered_in`).
#[tokio::test]
async fn the_last_node_of_a_coordinator_only_datacenter_hands_its_records_elsewhere() {
    let dcs: [(&str, &[&str]); 3] = [("dc1", &["a", "b", "c"]), ("dc2", &["x"]), ("dc3", &["z"])];
    let topo = crate::topology::testing::yaml(&dcs, &[("dc1", 3), ("dc2", 1)]);
    let parsed = Topology::parse("t.yaml", &topo).expect("parses");
    let seed = crate::layout::Layout::seed(&parsed);
    let member = crate::view::Cluster::new(seed.clone(), "z", None).expect("a view");
    let me = member.current().node("z").expect("a member").clone();
    let left = seed.begin_leave("z").unwrap().finish_leave("z").unwrap();
    let cluster = crate::view::Cluster::new(left, "z", None).expect("a view");
    let (engine, _, _) = counting();
    let hints = Hints::open(
        engine.clone(),
        cluster.clone(),
        me.clone(),
        HintsConfig::default(),
    );
    let hints = Arc::new(hints.expect("open"));
    record(&hints, &engine, 3);
    let (link, opened) = FakeLink::new(&[], Vec::new());
    *link.offered_in.lock() = Some(cluster);
    adopter(opened, Arc::new(Mutex::new(true)));
    let (_stop, shutdown) = watch::channel(false);
    tokio::spawn(records::run(hints.clone(), link, me, shutdown));
    drained(&hints).await;
    assert!(load_records(&*engine).expect("load").is_empty());
}

/// Only `x` is believed up: every session of its recorded pass is skipped.
struct OnlyX;
impl crate::membership::Liveness for OnlyX {
    fn is_up(&self, n: &str) -> bool {
        n == "x"
    }
}

/// A leaver's records go first to an adopter that replicates their ranges
/// (before: to the first member listed, dc1's `a`, which replicates about
/// a third of them: its recorded pass would run a session between the
/// other replicas, peer against peer, across the WAN), and that adopter's
/// recorded pass plans every one of those ranges, one session each (its
/// own copy against the range's dc1 replica).
#[tokio::test]
async fn records_go_to_an_adopter_replicating_their_ranges_whose_pass_covers_them() {
    use crate::repair::{plan::sweep_plan, Repair, RepairConfig, SessionIo, SessionLimits};
    let dcs: [(&str, &[&str]); 3] = [("dc1", &["a", "b", "c"]), ("dc2", &["x"]), ("dc3", &["z"])];
    let topo = crate::topology::testing::yaml(&dcs, &[("dc1", 1), ("dc2", 1)]);
    let seed = crate::layout::Layout::seed(&Topology::parse("t.yaml", &topo).expect("parses"));
    let me = (crate::view::Cluster::new(seed.clone(), "z", None).expect("a view"))
        .current()
        .node("z")
        .expect("a member")
        .clone();
    let left = seed.begin_leave("z").unwrap().finish_leave("z").unwrap();
    let cluster = crate::view::Cluster::new(left.clone(), "z", None).expect("a view");
    let (engine, _, _) = counting();
    let hints = Hints::open(
        engine.clone(),
        cluster.clone(),
        me.clone(),
        HintsConfig::default(),
    );
    let hints = Arc::new(hints.expect("open"));
    const N: u32 = 20;
    record(&hints, &engine, N);
    let tokens: Vec<u64> = (load_records(&*engine).expect("load").iter())
        .map(|r| r.token)
        .collect();
    let (link, mut opened) = FakeLink::new(&[], Vec::new());
    *link.offered_in.lock() = Some(cluster);
    let (_stop, shutdown) = watch::channel(false);
    tokio::spawn(records::run(hints.clone(), link, me, shutdown));

    // x adopts what it is offered into its own store.
    let x_engine: Arc<dyn Engine> = Arc::new(crate::engine::memory::MemoryEngine::new(
        crate::engine::Limits::default(),
    ));
    let x_cluster = crate::view::Cluster::new(left, "x", None).expect("a view");
    let x = x_cluster.current().node("x").expect("a member").clone();
    let x_hints = Hints::open(
        x_engine.clone(),
        x_cluster.clone(),
        x.clone(),
        HintsConfig::default(),
    );
    let x_hints = Arc::new(x_hints.expect("open"));
    let mut s = opened.recv().await.expect("a stream");
    assert_eq!(s.to, "x", "the adopter replicating every range comes first");
    let b = s.batches.recv().await.expect("a batch");
    let _ = s.acks.send(Ok(records::adopt(&x_hints, b).await));
    drained(&hints).await;

    // Its recorded pass: every record's range planned, one session each.
    let ring = x_cluster.current().ring.clone();
    let sweep = sweep_plan(&ring, "ks", x.idx).expect("a plan");
    let ranges: std::collections::BTreeSet<usize> = (tokens.iter())
        .map(|t| (sweep.iter().position(|p| p.range.contains(*t))).expect("x replicates it"))
        .collect();
    let tls = crate::transport::tls::Tls::insecure();
    let faults = Arc::new(crate::transport::faults::Faults::new(false));
    let io = SessionIo::new(
        x_cluster,
        Arc::new(crate::replica::Replica::new(x_engine.clone(), "x", 64)),
        Arc::new(crate::transport::Peers::new(x, faults, &tls)),
        SessionLimits::default(),
    );
    let repair = Repair::new(io, x_engine, Arc::new(OnlyX), RepairConfig::default());
    let summary = repair.recorded().await.expect("a pass");
    assert_eq!(summary.ranges, ranges.len() as u64, "{summary:?}");
    assert_eq!(summary.peers_skipped, summary.ranges, "{summary:?}");
    assert_eq!(summary.recorded_pending, N as u64, "kept until repaired");
}
