//! The lane against a fake call that takes 10 ms (paused time): alone it
//! adds no wait; under concurrency it batches what queued behind the call
//! in flight; each caller gets its own outcome; a queued entry past its
//! deadline expires unsent.

use super::*;
use parking_lot::Mutex;
use std::time::Duration;

const RTT: Duration = Duration::from_millis(10);

/// A lane whose call echoes its items after [`RTT`], recording batch sizes.
fn echo_lane() -> (Lane<u32, u32>, Arc<Mutex<Vec<usize>>>) {
    let sizes = Arc::new(Mutex::new(Vec::new()));
    let seen = sizes.clone();
    let call: CallFn<u32, u32> = Arc::new(move |items: Vec<(u32, Instant)>| {
        seen.lock().push(items.len());
        Box::pin(async move {
            tokio::time::sleep(RTT).await;
            items.into_iter().map(|(i, _)| i * 10).collect()
        })
    });
    (Lane::spawn(Limits::default(), call), sizes)
}

#[tokio::test(start_paused = true)]
async fn alone_an_entry_goes_at_once() {
    let (lane, sizes) = echo_lane();
    let far = Instant::now() + Duration::from_secs(5);
    for i in 0..3 {
        let t = Instant::now();
        assert_eq!(lane.submit(i, 10, far).await, Settled::Answered(i * 10));
        assert_eq!(t.elapsed(), RTT, "no wait beyond the call itself");
    }
    assert_eq!(*sizes.lock(), vec![1, 1, 1]);
}

#[tokio::test(start_paused = true)]
async fn under_concurrency_the_queue_goes_as_one_batch() {
    let (lane, sizes) = echo_lane();
    let lane = Arc::new(lane);
    let far = Instant::now() + Duration::from_secs(5);
    let t = Instant::now();
    let all = (0..10u32).map(|i| {
        let lane = lane.clone();
        async move { (i, lane.submit(i, 10, far).await) }
    });
    for (i, got) in futures::future::join_all(all).await {
        assert_eq!(got, Settled::Answered(i * 10));
    }
    // The first went alone; the nine queued behind it went together.
    assert_eq!(*sizes.lock(), vec![1, 9]);
    assert_eq!(t.elapsed(), RTT * 2);
}

#[tokio::test(start_paused = true)]
async fn a_queued_entry_past_its_deadline_expires_unsent() {
    let (lane, sizes) = echo_lane();
    let lane = Arc::new(lane);
    let first = {
        let lane = lane.clone();
        tokio::spawn(async move { lane.submit(1, 10, Instant::now() + RTT * 5).await })
    };
    tokio::task::yield_now().await;
    let soon = Instant::now() + Duration::from_millis(3);
    assert_eq!(lane.submit(2, 10, soon).await, Settled::Expired);
    assert_eq!(first.await.expect("join"), Settled::Answered(10));
    assert_eq!(*sizes.lock(), vec![1]);
}

#[tokio::test(start_paused = true)]
async fn a_short_answer_leaves_the_rest_lost_not_expired() {
    let call: CallFn<u32, u32> =
        Arc::new(|_items: Vec<(u32, Instant)>| Box::pin(async { Vec::new() }));
    let lane = Lane::spawn(Limits::default(), call);
    let far = Instant::now() + Duration::from_secs(1);
    assert_eq!(lane.submit(1, 10, far).await, Settled::Lost);
}
