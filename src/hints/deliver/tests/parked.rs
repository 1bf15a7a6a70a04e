//! Node hints placed elsewhere (`schedule::park`): the rest of the queue
//! goes on, and a queue of only parked entries is not read again before
//! one is released.

use super::rig::*;

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

/// A queue whose only entry is parked is not read again before the park
/// ends (review Medium of stop 21: it was read in full every idle poll,
/// 250 ms), and it is sent again once released by its retry.
#[tokio::test(start_paused = true)]
async fn a_queue_of_only_parked_entries_is_not_read_before_a_release() {
    use crate::hints::schedule::PARK_RETRY;
    use std::sync::atomic::Ordering;
    let n2 = Dest::Node("dc1-n2".into());
    let mut r = rig_for(&["dc1-n2"], n2.clone(), Vec::new());
    hint(&r, "dc1-n2", b"k2").await;
    let mut s = r.opened.recv().await.expect("a stream");
    let b = s.batches.recv().await.expect("a batch");
    let parked_at = Instant::now();
    let mut a = durable(&b);
    a.entries[0].durable = false;
    a.entries[0].replicas = 0;
    a.entries[0].elsewhere_layout = Some(5); // the receiver is behind
    s.acks.send(Ok(a)).expect("ack");
    tokio::time::sleep(Duration::from_millis(10)).await; // the fill after it
    let scans = r.scans.load(Ordering::Relaxed);
    tokio::time::sleep(PARK_RETRY - Duration::from_millis(100)).await;
    assert_eq!(
        r.scans.load(Ordering::Relaxed),
        scans,
        "read again while parked"
    );
    let again = tokio::time::timeout(PARK_RETRY, s.batches.recv()).await;
    let again = again.expect("sent again").expect("a batch");
    assert_eq!(again.entries[0].seq, b.entries[0].seq);
    assert!(Instant::now() - parked_at >= PARK_RETRY, "not before");
    assert_eq!(r.hints.backlog_entries(&n2), 1, "kept until durable");
}
