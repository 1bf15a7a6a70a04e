//! Mixed versions (review of stop 22, M1) against a fake peer under paused
//! time: a peer that answers UNIMPLEMENTED ran nothing, so the refused
//! batch's entries and every entry queued behind it are resent as single
//! writes, each with its own deadline and trace context, and none is
//! reported "maybe applied"; the single-only mark expires, so an upgraded
//! peer gets batches again.

use super::*;
use crate::transport::support::SINGLE_ONLY_FOR;

const RTT: Duration = Duration::from_millis(10);

/// A single write as the fake saw it: key, timeout, traceparent.
type SingleSeen = (Vec<u8>, Duration, String);

/// A peer that answers `ReplicaBatch` with UNIMPLEMENTED while `old`, and
/// records every call.
#[derive(Clone, Default)]
struct Fake {
    old: Arc<Mutex<bool>>,
    /// Entries per batch call.
    batches: Arc<Mutex<Vec<usize>>>,
    /// Single writes: (key, timeout, traceparent).
    singles: Arc<Mutex<Vec<SingleSeen>>>,
}

impl Wire for Fake {
    fn peer(&self) -> &str {
        "old-peer"
    }

    fn batch<'a>(
        &'a self,
        entries: Arc<Vec<Entry>>,
        _timeout: Duration,
        _gate: Gate,
    ) -> BoxFuture<'a, Result<ReplicaBatchResponse, TransportError>> {
        self.batches.lock().push(entries.len());
        let old = *self.old.lock();
        Box::pin(async move {
            tokio::time::sleep(RTT).await;
            if old {
                let s = tonic::Status::unimplemented("unknown method ReplicaBatch");
                return Err(status_error("old-peer", s, 5));
            }
            let results = entries.iter().map(|_| result_of(Ok(()))).collect();
            Ok(ReplicaBatchResponse { results })
        })
    }

    fn single<'a>(
        &'a self,
        req: ReplicaWriteRequest,
        timeout: Duration,
        traceparent: &'a str,
    ) -> BoxFuture<'a, Result<(), TransportError>> {
        self.singles
            .lock()
            .push((req.key.to_vec(), timeout, traceparent.to_string()));
        Box::pin(async move {
            tokio::time::sleep(RTT).await;
            Ok(())
        })
    }
}

fn entry(key: u8) -> Entry {
    Entry {
        write: Arc::new(ReplicaWriteRequest {
            key: vec![key].into(),
            ..Default::default()
        }),
        timeout_ms: 0,
        traceparent: format!("tp-{key}"),
        claim: Claim::default(),
    }
}

#[tokio::test(start_paused = true)]
async fn an_old_peer_gets_every_entry_as_a_single_write_until_the_mark_expires() {
    let fake = Fake::default();
    *fake.old.lock() = true;
    let (lane, support) = lane_over(
        fake.clone(),
        Limits::default(),
        &crate::tasks::Spawner::detached(),
    );
    let lane = Arc::new(lane);
    let deadline = Instant::now() + Duration::from_secs(1);
    // The first goes alone (a batch the peer refuses); the others queue
    // behind it and go when it is done.
    let submits = (0..4u8).map(|k| {
        let lane = lane.clone();
        async move { lane.submit(entry(k), 10, deadline).await }
    });
    for got in futures::future::join_all(submits).await {
        assert!(
            matches!(got, Settled::Answered(Ok(()))),
            "{got:?}: none maybe applied"
        );
    }
    assert_eq!(
        *fake.batches.lock(),
        vec![1],
        "one batch refused, then singles"
    );
    let singles = fake.singles.lock().clone();
    let mut keys: Vec<u8> = singles.iter().map(|(k, _, _)| k[0]).collect();
    keys.sort_unstable();
    assert_eq!(keys, vec![0, 1, 2, 3], "every entry resent once");
    for (k, timeout, tp) in &singles {
        assert_eq!(tp, &format!("tp-{}", k[0]), "its own trace context");
        assert!(*timeout <= Duration::from_secs(1) && !timeout.is_zero());
    }
    assert!(support.single_only(Instant::now()));

    // Upgraded meanwhile: once the mark expired, batches again.
    *fake.old.lock() = false;
    tokio::time::advance(SINGLE_ONLY_FOR).await;
    let deadline = Instant::now() + Duration::from_secs(1);
    let got = lane.submit(entry(9), 10, deadline).await;
    assert!(matches!(got, Settled::Answered(Ok(()))), "{got:?}");
    assert_eq!(*fake.batches.lock(), vec![1, 1]);
    assert_eq!(fake.singles.lock().len(), 4);
    assert!(!support.single_only(Instant::now()));
}

/// A resent entry whose deadline passed before it could go is not sent,
/// and says so (never "maybe applied").
#[tokio::test(start_paused = true)]
async fn a_resend_past_the_entrys_deadline_is_not_sent() {
    let fake = Fake::default();
    *fake.old.lock() = true;
    let (lane, _support) = lane_over(
        fake.clone(),
        Limits::default(),
        &crate::tasks::Spawner::detached(),
    );
    // Shorter than the refused batch's round trip.
    let deadline = Instant::now() + RTT / 2;
    match lane.submit(entry(1), 10, deadline).await {
        Settled::Answered(Err(e)) => assert!(e.nothing_applied(), "{e:?}"),
        other => panic!("{other:?}"),
    }
    assert!(fake.singles.lock().is_empty());
}

/// A peer that has answered a batch and then refuses one all the same
/// (downgraded in place) ran nothing for it: that batch's entries are
/// resent as single writes (the copy for a resend is always kept: a
/// reference count of the key and record), never "not sent" nor "maybe
/// applied"; later writes go single.
#[tokio::test(start_paused = true)]
async fn a_peer_downgraded_in_place_gets_its_refused_batch_resent_as_single_writes() {
    let fake = Fake::default();
    let (lane, support) = lane_over(
        fake.clone(),
        Limits::default(),
        &crate::tasks::Spawner::detached(),
    );
    let deadline = Instant::now() + Duration::from_secs(1);
    let got = lane.submit(entry(1), 10, deadline).await;
    assert!(matches!(got, Settled::Answered(Ok(()))), "{got:?}");
    *fake.old.lock() = true;
    let got = lane.submit(entry(2), 10, deadline).await;
    assert!(matches!(got, Settled::Answered(Ok(()))), "{got:?}: resent");
    let keys: Vec<(u8, String)> = (fake.singles.lock().iter())
        .map(|(k, _, tp)| (k[0], tp.clone()))
        .collect();
    assert_eq!(
        keys,
        vec![(2, "tp-2".to_string())],
        "resent once, in its trace"
    );
    assert!(support.single_only(Instant::now()));
    let got = lane.submit(entry(3), 10, deadline).await;
    assert!(matches!(got, Settled::Answered(Ok(()))), "{got:?}");
    assert_eq!(fake.singles.lock().len(), 2, "single from then on");
    assert_eq!(*fake.batches.lock(), vec![1, 1]);
}
