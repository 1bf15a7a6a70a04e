//! Callers of one batch that give up before, around and after the batch
//! body's first read, against a fake peer under paused time
//! (review-conn29 M1, issue 12): the last caller to give up before the
//! read is "not sent" and the body never yields the batch; any caller
//! giving up after the read may have been applied; a caller giving up
//! while others still wait is never "not sent".

use super::*;

/// The key of the entry whose call keeps the lane busy, so the others
/// queue into one batch behind it.
const BUSY: u8 = 255;

/// A peer that reads each batch's body `read_after` its call started and
/// records the keys of the batches whose body yielded them.
#[derive(Clone)]
struct Fake {
    read_after: Duration,
    delivered: Arc<Mutex<Vec<u8>>>,
    batches: Arc<Mutex<Vec<usize>>>,
}

impl Wire for Fake {
    fn peer(&self) -> &str {
        "slow-peer"
    }

    fn batch<'a>(
        &'a self,
        entries: Arc<Vec<Entry>>,
        timeout: Duration,
        gate: Gate,
    ) -> BoxFuture<'a, Result<ReplicaBatchResponse, TransportError>> {
        let keys: Vec<u8> = entries.iter().map(|e| e.write.key[0]).collect();
        Box::pin(async move {
            let ok = || entries.iter().map(|_| result_of(Ok(()))).collect();
            if keys == [BUSY] {
                tokio::time::sleep(Duration::from_secs(10)).await;
                return Ok(ReplicaBatchResponse { results: ok() });
            }
            self.batches.lock().push(keys.len());
            tokio::time::sleep(self.read_after).await;
            if gate.send() {
                self.delivered.lock().extend(&keys);
            }
            tokio::time::sleep(timeout.saturating_sub(self.read_after)).await;
            Ok(ReplicaBatchResponse { results: ok() })
        })
    }

    fn single<'a>(
        &'a self,
        _req: ReplicaWriteRequest,
        _timeout: Duration,
        _traceparent: &'a str,
    ) -> BoxFuture<'a, Result<(), TransportError>> {
        // None here: no peer marked single-only, no batch refused.
        Box::pin(std::future::ready(Err(not_sent("slow-peer", "unexpected"))))
    }
}

fn entry(key: u8) -> Entry {
    Entry {
        write: Arc::new(ReplicaWriteRequest {
            key: vec![key].into(),
            ..Default::default()
        }),
        ..Entry::default()
    }
}

const STEP: Duration = Duration::from_millis(100);

/// `k` entries queued behind a busy call go as one batch 50 ms later
/// (their hold); entry `i`'s caller gives up `(i + 1) × 100 ms` after it
/// submitted, the body is read `reads × 100 ms` after the call started
/// (after the first `reads` callers gave up). What each caller was told,
/// and the keys the body yielded.
async fn give_ups_around_the_read(k: u8, reads: u32) -> (Vec<TransportError>, Vec<u8>) {
    let fake = Fake {
        read_after: STEP * reads,
        delivered: Arc::default(),
        batches: Arc::default(),
    };
    let spawner = crate::tasks::Spawner::detached();
    let (lane, _) = lane_over(fake.clone(), Limits::default(), &spawner);
    let busy = lane.submit(entry(BUSY), 10, Instant::now() + Duration::from_secs(60));
    let writes = async {
        tokio::time::sleep(Duration::from_millis(1)).await;
        let writes = (0..k).map(|i| {
            let timeout = STEP * (u32::from(i) + 1);
            submit_within(&lane, "slow-peer", entry(i), timeout)
        });
        futures::future::join_all(writes).await
    };
    let (busy, told) = futures::join!(busy, writes);
    assert!(matches!(busy, Settled::Answered(Ok(()))), "{busy:?}");
    assert_eq!(*fake.batches.lock(), vec![usize::from(k)], "one batch");
    let told = told.into_iter().map(|r| r.expect_err("gave up")).collect();
    let delivered = fake.delivered.lock().clone();
    (told, delivered)
}

#[tokio::test(start_paused = true)]
async fn the_last_caller_to_give_up_before_the_read_is_not_sent() {
    for k in 1..=4u8 {
        for reads in 0..=u32::from(k) {
            let (told, delivered) = give_ups_around_the_read(k, reads).await;
            let not_sent: Vec<bool> = told.iter().map(|e| e.nothing_applied()).collect();
            let all_before_the_read = reads == u32::from(k);
            if all_before_the_read {
                assert!(delivered.is_empty(), "{k}/{reads}: {delivered:?}");
                // The last one abandons the batch; those before it gave up
                // while it still waited (it might have gone out).
                let last = usize::from(k) - 1;
                assert!(not_sent[last], "{k}/{reads}: {told:?}");
                assert!(
                    matches!(told[last], TransportError::NotSent { .. }),
                    "{k}/{reads}: {told:?}"
                );
                assert!(not_sent[..last].iter().all(|n| !n), "{k}/{reads}: {told:?}");
            } else {
                assert_eq!(delivered, (0..k).collect::<Vec<_>>(), "{k}/{reads}");
                assert!(not_sent.iter().all(|n| !n), "{k}/{reads}: {told:?}");
            }
            for e in &told {
                let kind = matches!(e, TransportError::NotSent { .. })
                    || matches!(e, TransportError::Timeout { .. });
                assert!(kind, "{k}/{reads}: {e:?}");
            }
        }
    }
}
