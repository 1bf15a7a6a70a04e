//! The delivery driver's timing, under `tokio::time::pause` (no sleeps, no
//! sockets): back-off after a stall and an urgent entry cutting it short,
//! the backlog's linger, a batch given up after its timeout and resent, and
//! an urgent entry sent while the backlog's window is full.

use rig::*;

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
    let none = crate::hints::waiters::StreamFailure::NoLiveNode { dc: "dc2".into() };
    assert_eq!(outcome, Err(none));
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
mod fork;
mod handover;
mod parked;
mod records;
mod rig;
