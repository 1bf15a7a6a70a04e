//! A leaver handing its queue to an adopter of its datacenter (`adopt`):
//! when no node of the destination is live, and when delivering to one
//! that is up keeps stalling.

use super::rig::*;

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

/// A node that has left, whose destination is up in gossip but cannot be
/// reached from it alone, hands the queue over after
/// [`HAND_OVER_AFTER`](crate::hints::adopt::HAND_OVER_AFTER) failed
/// attempts in a row, instead of retrying it for as long as that lasts
/// (review Medium of stop 21: the leave waited forever).
#[tokio::test(start_paused = true)]
async fn a_leaver_hands_over_a_queue_whose_live_destination_it_cannot_reach() {
    use crate::hints::adopt::HAND_OVER_AFTER;
    let mut r = rig(&["dc2-n1"]);
    *r.link.unreachable.lock() = vec!["dc2-n1".into()];
    *r.link.adopters.lock() = vec!["dc1-n2".into()];
    append(&r, b"a", false);
    let opened = tokio::time::timeout(Duration::from_secs(120), r.opened.recv()).await;
    let mut s = opened.expect("handed over in time").expect("a stream");
    assert_eq!((s.to.as_str(), s.adopt), ("dc1-n2", true));
    let attempts = r.link.asked.lock().len() as u32;
    assert_eq!(attempts, HAND_OVER_AFTER + 1, "the destination first");
    let batch = s.batches.recv().await.expect("a batch");
    assert_eq!(batch.adopt_for, "dc:dc2");
    s.acks.send(Ok(durable(&batch))).expect("the pump listens");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(r.hints.backlog_entries(&Dest::Dc("dc2".into())), 0);
}

/// A member keeps retrying its destination, however often that fails:
/// the link offers it no adopter while it has not left (`link::offered`,
/// what the real link answers), although the other members of its
/// datacenter are up and would be offered once it has left. Without that
/// guard the pump would hand the queue over after
/// [`HAND_OVER_AFTER`](crate::hints::adopt::HAND_OVER_AFTER) stalls.
#[tokio::test(start_paused = true)]
async fn a_member_never_hands_over_a_queue() {
    let mut r = rig(&["dc2-n1"]);
    *r.link.unreachable.lock() = vec!["dc2-n1".into()];
    *r.link.offered_in.lock() = Some(r.hints.cluster.clone());
    let dc2 = Dest::Dc("dc2".into());
    assert!(r.link.adopters(&dc2).is_empty(), "a member: none offered");
    // The same rule offers the live members once a node has left.
    let (_, left) = crate::hints::testing::layouts();
    let d = crate::view::Cluster::new(left, "d", None).expect("a view");
    let offered = crate::hints::link::offered(&d.current(), &Dest::Dc("dc2".into()), |_| true);
    assert_eq!(offered, ["a", "b", "c"]);
    append(&r, b"a", false);
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(r.link.asked.lock().len() as u32 > 2 * crate::hints::adopt::HAND_OVER_AFTER);
    assert!(r.opened.try_recv().is_err(), "nothing opened elsewhere");
    assert_eq!(r.hints.backlog_entries(&dc2), 1);
}

/// A client waiting on an urgent entry of a node that has left, whose
/// entry an adopter took, learns that it was handed over and is applied
/// nowhere yet, not a count of zero replicas (issue 11, left at stop 22).
#[tokio::test(start_paused = true)]
async fn a_client_waiting_on_an_adopted_urgent_entry_learns_it_was_handed_over() {
    let mut r = rig(&[]);
    *r.link.adopters.lock() = vec!["dc1-n2".into()];
    let wait = append(&r, b"u", true).expect("a wait");
    let mut s = r.opened.recv().await.expect("a stream");
    assert!(s.adopt);
    let batch = s.batches.recv().await.expect("a batch");
    s.acks.send(Ok(durable(&batch))).expect("the pump listens");
    let outcome = wait.outcome().await;
    let why = outcome.expect_err("not a count");
    assert_eq!(
        why,
        crate::hints::waiters::StreamFailure::HandedOver {
            to: "dc1-n2".into(),
            dest: "dc2".into()
        }
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(r.hints.backlog_entries(&Dest::Dc("dc2".into())), 0);
}

/// A leaver's anti-entropy records go to an adopter (`adopt::records`):
/// kept while an adopter does not take them, deleted here once one has.
#[tokio::test(start_paused = true)]
async fn a_leavers_anti_entropy_records_are_handed_to_an_adopter() {
    use crate::hints::adopt::records;
    use crate::repair::records::load_records;
    let mut r = rig(&[]);
    *r.link.adopters.lock() = vec!["dc1-n2".into(), "dc1-n3".into()];
    let mut b = WriteBatch::new();
    let dc2 = Dest::Dc("dc2".into());
    r.hints.store.needs_repair("default", b"k", &dc2, &mut b);
    r.engine.write(b).expect("recorded");
    let me = r.hints.cluster.current().me().expect("a member").clone();
    let (_stop, shutdown) = watch::channel(false);
    tokio::spawn(records::run(r.hints.clone(), r.link.clone(), me, shutdown));
    let mut first = r.opened.recv().await.expect("a stream");
    assert_eq!((first.to.as_str(), first.adopt), ("dc1-n2", true));
    let batch = first.batches.recv().await.expect("a batch");
    assert_eq!(
        (batch.adopt_for.as_str(), batch.entries.len()),
        (records::LABEL, 1)
    );
    let mut kept = durable(&batch);
    kept.entries[0].durable = false;
    first.acks.send(Ok(kept)).expect("listening");
    let mut second = r.opened.recv().await.expect("the next adopter");
    assert_eq!(second.to, "dc1-n3");
    assert_eq!(load_records(&*r.engine).expect("load").len(), 1, "kept");
    let again = second.batches.recv().await.expect("a batch");
    assert_eq!(again.entries, batch.entries);
    second.acks.send(Ok(durable(&again))).expect("listening");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(load_records(&*r.engine).expect("load").is_empty());
}
