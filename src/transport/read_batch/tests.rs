//! Read lanes against a fake peer under paused time: reads queued behind a
//! call in flight go out as one batch, each entry with its own outcome
//! (found, not found, refused on a stale view); a stalled call holds a
//! queued read no longer than its hold; a peer from before
//! `ReplicaReadBatch` (UNIMPLEMENTED) gets every entry as a single read,
//! until the mark expires.

use super::*;
use crate::transport::replica_batch::result_of;
use crate::transport::status_error;
use crate::transport::support::SINGLE_ONLY_FOR;
use parking_lot::Mutex;

mod socket;

const RTT: Duration = Duration::from_millis(10);

/// A peer that answers `ReplicaReadBatch` UNIMPLEMENTED while `old`, never
/// answers its first batch when `stall_first`, and records every call.
#[derive(Clone, Default)]
struct Fake {
    old: Arc<Mutex<bool>>,
    stall_first: bool,
    /// Fails every batch call as too large (OUT_OF_RANGE).
    too_large: bool,
    /// Keys per batch call.
    batches: Arc<Mutex<Vec<Vec<u8>>>>,
    /// The trace context current when each batch call was made.
    batch_traces: Arc<Mutex<Vec<String>>>,
    /// Single reads: (key, traceparent).
    singles: Arc<Mutex<Vec<(u8, String)>>>,
}

/// The fake's answer for key `k`: found (record `[k]`) when even, not
/// found when odd, refused as on a stale view (v9) when 99.
fn answer(k: u8) -> Result<ReplicaReadResponse, tonic::Status> {
    if k == 99 {
        let stale = crate::error::GeokvError::StaleView {
            planned_on: 1,
            replica_version: 9,
        };
        return Err(stale.into());
    }
    Ok(ReplicaReadResponse {
        record: if k % 2 == 0 { vec![k] } else { Vec::new() },
        found: k % 2 == 0,
    })
}

/// In a batch, key 78 is over the batch's answer budget (refused
/// RESOURCE_EXHAUSTED, nothing read); read alone it is found.
fn batched_answer(k: u8) -> Result<ReplicaReadResponse, tonic::Status> {
    if k == 78 {
        return Err(tonic::Status::resource_exhausted(
            "over the batch's answer budget",
        ));
    }
    answer(k)
}

impl ReadWire for Fake {
    fn peer(&self) -> &str {
        "peer"
    }

    fn batch(
        &self,
        req: ReplicaReadBatchRequest,
        _timeout: Duration,
    ) -> BoxFuture<'_, Result<ReplicaReadBatchResponse, TransportError>> {
        let keys: Vec<u8> = (req.entries.iter())
            .map(|e| e.read.as_ref().map_or(0, |r| r.key[0]))
            .collect();
        let stall = self.stall_first && self.batches.lock().is_empty();
        (self.batch_traces.lock()).push(crate::telemetry::current_traceparent());
        self.batches.lock().push(keys.clone());
        let (old, too_large) = (*self.old.lock(), self.too_large);
        Box::pin(async move {
            tokio::time::sleep(RTT).await;
            if stall {
                std::future::pending::<()>().await;
            }
            if old {
                let s = tonic::Status::unimplemented("unknown method ReplicaReadBatch");
                return Err(status_error("peer", s, 5));
            }
            if too_large {
                let s = tonic::Status::out_of_range("message too large");
                return Err(status_error("peer", s, 5));
            }
            let results = (keys.into_iter())
                .map(|k| match batched_answer(k) {
                    _ if k == 55 || k == 56 => answered_nothing(k),
                    Ok(read) => ReplicaReadBatchResult {
                        status: None,
                        read: Some(read),
                    },
                    Err(s) => ReplicaReadBatchResult {
                        status: Some(result_of(Err(s))),
                        read: None,
                    },
                })
                .collect();
            Ok(ReplicaReadBatchResponse { results })
        })
    }

    fn single<'a>(
        &'a self,
        req: ReplicaReadRequest,
        _timeout: Duration,
        traceparent: &'a str,
    ) -> BoxFuture<'a, ReadOutcome> {
        let k = req.key[0];
        self.singles.lock().push((k, traceparent.to_string()));
        Box::pin(async move {
            tokio::time::sleep(RTT).await;
            answer(k).map_err(|s| status_error("peer", s, 5))
        })
    }
}

/// In a batch, key 55 is answered with neither a status nor a read, and
/// key 56 with an OK status but no read: the peer answered nothing for it.
fn answered_nothing(k: u8) -> ReplicaReadBatchResult {
    ReplicaReadBatchResult {
        status: (k == 56).then(|| result_of(Ok(()))),
        read: None,
    }
}

fn entry(key: u8) -> ReplicaReadBatchEntry {
    ReplicaReadBatchEntry {
        read: Some(ReplicaReadRequest {
            key: vec![key],
            ..Default::default()
        }),
        timeout_ms: 0,
        traceparent: format!("tp-{key}"),
    }
}

/// Reads `keys` through `lane` all at once, each with a deadline of
/// `timeout`: the first goes alone, the others queue behind it.
async fn read_all(
    lane: &Lane<ReplicaReadBatchEntry, ReadOutcome>,
    keys: &[u8],
    timeout: Duration,
) -> Vec<Settled<ReadOutcome>> {
    let deadline = Instant::now() + timeout;
    let calls = (keys.iter()).map(|k| lane.submit(entry(*k), 8, deadline));
    futures::future::join_all(calls).await
}

fn found(s: &Settled<ReadOutcome>) -> Option<bool> {
    match s {
        Settled::Answered(Ok(r)) => Some(r.found),
        _ => None,
    }
}

#[tokio::test(start_paused = true)]
async fn reads_queued_behind_a_call_go_as_one_batch_each_with_its_own_outcome() {
    let fake = Fake::default();
    let (lane, support) = read_lane_over(
        fake.clone(),
        Limits::default(),
        &crate::tasks::Spawner::detached(),
    );
    let got = read_all(&lane, &[2, 4, 5, 99, 6], Duration::from_secs(1)).await;
    assert_eq!(*fake.batches.lock(), vec![vec![2], vec![4, 5, 99, 6]]);
    let founds: Vec<Option<bool>> = got.iter().map(found).collect();
    assert_eq!(
        founds,
        [Some(true), Some(true), Some(false), None, Some(true)]
    );
    let Settled::Answered(Ok(r)) = &got[4] else {
        panic!("{:?}", got[4]);
    };
    assert_eq!(r.record, vec![6], "its own record");
    let stale = matches!(
        got[3],
        Settled::Answered(Err(TransportError::StaleView { version: 9, .. }))
    );
    assert!(stale, "{:?}", got[3]);
    assert!(fake.singles.lock().is_empty());
    assert!(!support.single_only(Instant::now()));
}

#[tokio::test(start_paused = true)]
async fn a_stalled_call_holds_a_queued_read_no_longer_than_its_hold() {
    let fake = Fake {
        stall_first: true,
        ..Fake::default()
    };
    let limits = Limits::default();
    let (lane, _) = read_lane_over(fake.clone(), limits, &crate::tasks::Spawner::detached());
    let deadline = Instant::now() + Duration::from_secs(1);
    let first = lane.submit(entry(2), 8, deadline);
    let started = Instant::now();
    let second = async {
        tokio::task::yield_now().await;
        let got = lane.submit(entry(4), 8, deadline).await;
        (got, started.elapsed())
    };
    let (first, (second, waited)) = tokio::join!(
        tokio::time::timeout(Duration::from_millis(900), first),
        second
    );
    assert!(first.is_err(), "the stalled call never answers");
    assert_eq!(found(&second), Some(true), "{second:?}");
    assert!(waited <= limits.max_hold + 2 * RTT, "waited {waited:?}");
    assert_eq!(*fake.batches.lock(), vec![vec![2], vec![4]]);
}

#[tokio::test(start_paused = true)]
async fn an_old_peer_gets_every_read_single_until_the_mark_expires() {
    let fake = Fake::default();
    *fake.old.lock() = true;
    let (lane, support) = read_lane_over(
        fake.clone(),
        Limits::default(),
        &crate::tasks::Spawner::detached(),
    );
    let got = read_all(&lane, &[2, 4, 5], Duration::from_secs(1)).await;
    let founds: Vec<Option<bool>> = got.iter().map(found).collect();
    assert_eq!(founds, [Some(true), Some(true), Some(false)], "{got:?}");
    let mut singles = fake.singles.lock().clone();
    singles.sort();
    let want: Vec<(u8, String)> = [2, 4, 5].map(|k| (k, format!("tp-{k}"))).into();
    assert_eq!(singles, want, "each resent once, in its own trace");
    assert!(support.single_only(Instant::now()), "marked single-only");
    let tried = fake.batches.lock().len();
    read_all(&lane, &[6], Duration::from_secs(1)).await;
    assert_eq!(fake.batches.lock().len(), tried, "no batch tried meanwhile");
    tokio::time::advance(SINGLE_ONLY_FOR).await;
    *fake.old.lock() = false;
    let got = read_all(&lane, &[8], Duration::from_secs(1)).await;
    assert_eq!(found(&got[0]), Some(true));
    assert_eq!(fake.batches.lock().len(), tried + 1, "batches again");
}

/// Review of stop 25 (M2): a read queued behind a stalled call waited up
/// to 50 ms, past the coordinator's read speculation (20 ms by default),
/// which then asked another replica exactly when a peer was slow. With
/// the read lane's bounds it goes out well before that point.
#[tokio::test(start_paused = true)]
async fn a_read_queued_behind_a_stalled_call_goes_out_before_the_speculation_point() {
    let fake = Fake {
        stall_first: true,
        ..Fake::default()
    };
    let (lane, _) = read_lane_over(
        fake.clone(),
        read_limits(),
        &crate::tasks::Spawner::detached(),
    );
    let lane = Arc::new(lane);
    let deadline = Instant::now() + Duration::from_secs(2);
    let submit = |k: u8| {
        let lane = lane.clone();
        tokio::spawn(async move { lane.submit(entry(k), 8, deadline).await })
    };
    let _stalled = submit(2);
    tokio::task::yield_now().await;
    let queued = submit(4);
    // Twice the hold: at most half the coordinator's default speculation
    // (`coordinator::read::tests` checks that side, above the transport).
    tokio::time::sleep(READ_HOLD * 2).await;
    assert_eq!(
        *fake.batches.lock(),
        vec![vec![2], vec![4]],
        "sent by twice the read lane's hold"
    );
    assert_eq!(found(&queued.await.expect("join")), Some(true));
}

/// Review of stop 25 (M1): an entry the peer left out of a batch's answer
/// (over its byte budget) is read again alone, and gets that read's answer.
#[tokio::test(start_paused = true)]
async fn a_read_over_the_batch_answer_budget_is_read_again_alone() {
    let fake = Fake::default();
    let (lane, _) = read_lane_over(
        fake.clone(),
        read_limits(),
        &crate::tasks::Spawner::detached(),
    );
    let got = read_all(&lane, &[2, 78, 4], Duration::from_secs(1)).await;
    let founds: Vec<Option<bool>> = got.iter().map(found).collect();
    assert_eq!(founds, [Some(true), Some(true), Some(true)], "{got:?}");
    assert_eq!(*fake.batches.lock(), vec![vec![2], vec![78, 4]]);
    let singles: Vec<u8> = fake.singles.lock().iter().map(|s| s.0).collect();
    assert_eq!(singles, vec![78], "only the one left out, once");
}

/// Review of stop 25 (M1): a batch whose answer was too large for a
/// message failed every read in it; now each is read again alone.
#[tokio::test(start_paused = true)]
async fn a_batch_too_large_to_answer_has_each_read_sent_alone() {
    let fake = Fake {
        too_large: true,
        ..Fake::default()
    };
    let (lane, support) = read_lane_over(
        fake.clone(),
        read_limits(),
        &crate::tasks::Spawner::detached(),
    );
    let got = read_all(&lane, &[2, 4, 5], Duration::from_secs(1)).await;
    let founds: Vec<Option<bool>> = got.iter().map(found).collect();
    assert_eq!(founds, [Some(true), Some(true), Some(false)], "{got:?}");
    let mut singles: Vec<u8> = fake.singles.lock().iter().map(|s| s.0).collect();
    singles.sort();
    assert_eq!(singles, vec![2, 4, 5]);
    assert!(!support.single_only(Instant::now()), "not an old peer");
}

/// Review of stop 25 (L3): a batch call ran in no span, so the peer's
/// batch span was a root of its own. Now it joins its first entry's
/// trace (and links the others').
#[tokio::test(start_paused = true)]
async fn a_batch_call_joins_its_first_entrys_trace() {
    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("test"));
    let _default = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
    let fake = Fake::default();
    let (lane, _) = read_lane_over(
        fake.clone(),
        read_limits(),
        &crate::tasks::Spawner::detached(),
    );
    let traced = |k: u8| {
        let span = tracing::info_span!("get", key = k);
        let mut e = entry(k);
        e.traceparent = span.in_scope(crate::telemetry::current_traceparent);
        e
    };
    let entries = [traced(2), traced(4), traced(6)];
    let trace_id = |tp: &str| tp.split('-').nth(1).unwrap_or("none").to_string();
    let firsts = [
        trace_id(&entries[0].traceparent),
        trace_id(&entries[1].traceparent),
    ];
    let deadline = Instant::now() + Duration::from_secs(1);
    let calls = entries.map(|e| lane.submit(e, 8, deadline));
    futures::future::join_all(calls).await;
    assert_eq!(*fake.batches.lock(), vec![vec![2], vec![4, 6]]);
    let got: Vec<String> = fake
        .batch_traces
        .lock()
        .iter()
        .map(|t| trace_id(t))
        .collect();
    assert_eq!(got, firsts, "each batch call in its first entry's trace");
}

/// Review of stop 31 (final L2): an entry answered with no read (no status,
/// or an OK one) is that replica not answering, never an empty "not found"
/// that could count toward R and hide a write; a not-found answer still
/// reads as one.
#[tokio::test(start_paused = true)]
async fn an_entry_answered_without_a_read_fails_instead_of_reading_as_not_found() {
    let fake = Fake::default();
    let spawner = crate::tasks::Spawner::detached();
    let (lane, _) = read_lane_over(fake.clone(), read_limits(), &spawner);
    let got = read_all(&lane, &[2, 55, 56, 5], Duration::from_secs(1)).await;
    assert_eq!(*fake.batches.lock(), vec![vec![2], vec![55, 56, 5]]);
    let founds: Vec<Option<bool>> = got.iter().map(found).collect();
    assert_eq!(founds, [Some(true), None, None, Some(false)], "{got:?}");
    for g in &got[1..3] {
        let failed = matches!(g, Settled::Answered(Err(TransportError::Rpc { code, .. }))
            if code.grpc() == tonic::Code::Internal);
        assert!(failed, "{g:?}");
    }
    assert!(
        fake.singles.lock().is_empty(),
        "an answered entry is not resent"
    );
}
