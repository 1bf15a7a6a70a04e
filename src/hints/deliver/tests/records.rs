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

/// An adopter that takes every batch it is sent (`take`), or none.
fn adopter(mut opened: mpsc::UnboundedReceiver<Opened>, take: Arc<Mutex<bool>>) {
    tokio::spawn(async move {
        while let Some(mut s) = opened.recv().await {
            let take = take.clone();
            tokio::spawn(async move {
                while let Some(b) = s.batches.recv().await {
                    let mut ack = durable(&b);
                    let took = *take.lock();
                    ack.entries.iter_mut().for_each(|e| e.durable = took);
                    let _ = s.acks.send(Ok(ack));
                }
            });
        }
    });
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
    adopter(opened, take.clone());
    let (_stop, shutdown) = watch::channel(false);
    tokio::spawn(records::run(hints.clone(), link, me, shutdown));
    tokio::time::sleep(Duration::from_millis(500)).await;
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
