//! The lane against a fake call that takes 10 ms (paused time): alone it
//! adds no wait; under concurrency it batches what queued behind the call
//! in flight; each caller gets its own outcome; a queued entry past its
//! deadline expires unsent; a task that dies is replaced, and what it held
//! settles truthfully.

use super::*;
use parking_lot::Mutex;
use std::time::Duration;

const RTT: Duration = Duration::from_millis(10);

/// A lane whose call echoes its items after [`RTT`], recording batch sizes.
fn echo_lane() -> (Lane<u32, u32>, Arc<Mutex<Vec<usize>>>) {
    echo_lane_on(&Spawner::detached())
}

/// [`echo_lane`] with its task spawned through `spawner`.
fn echo_lane_on(spawner: &Spawner) -> (Lane<u32, u32>, Arc<Mutex<Vec<usize>>>) {
    let sizes = Arc::new(Mutex::new(Vec::new()));
    let seen = sizes.clone();
    let call: CallFn<u32, u32> = Arc::new(move |items: Vec<(u32, Instant)>| {
        seen.lock().push(items.len());
        Box::pin(async move {
            tokio::time::sleep(RTT).await;
            items.into_iter().map(|(i, _)| i * 10).collect()
        })
    });
    (Lane::spawn(Limits::default(), call, None, spawner), sizes)
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
    // Its deadline passed before the lane took it: never sent.
    let soon = Instant::now();
    assert_eq!(lane.submit(2, 10, soon).await, Settled::Expired);
    assert_eq!(first.await.expect("join"), Settled::Answered(10));
    assert_eq!(*sizes.lock(), vec![1]);
}

#[tokio::test(start_paused = true)]
async fn a_short_answer_leaves_the_rest_lost_not_expired() {
    let call: CallFn<u32, u32> =
        Arc::new(|_items: Vec<(u32, Instant)>| Box::pin(async { Vec::new() }));
    let lane = Lane::spawn(Limits::default(), call, None, &Spawner::detached());
    let far = Instant::now() + Duration::from_secs(1);
    assert_eq!(lane.submit(1, 10, far).await, Settled::Lost);
}

/// Review of stop 22 (M3): a lane task that panics was never replaced, so
/// every later write to that peer timed out. Now the entries it held
/// settle truthfully (those handed to a call: lost, maybe applied; the
/// queued one: not sent) and the next submit gets a new task. The call
/// function itself panics here (the lane's own code, outside a call's
/// future, whose panic settles only that call's entries).
#[tokio::test(start_paused = true)]
async fn a_dead_task_is_replaced_and_its_entries_settle_truthfully() {
    let calls = Arc::new(Mutex::new(0usize));
    let seen = calls.clone();
    let call: CallFn<u32, u32> = Arc::new(move |items: Vec<(u32, Instant)>| {
        *seen.lock() += 1;
        if items.iter().any(|(i, _)| *i == 99) {
            panic!("the call function panics (test)");
        }
        Box::pin(async move {
            tokio::time::sleep(RTT).await;
            items.into_iter().map(|(i, _)| i * 10).collect()
        })
    });
    // Entries of 6 bytes, batches of at most 10: 99 goes out alone as soon
    // as 2 queues behind it, and 2 stays queued.
    let limits = Limits {
        max_bytes: 10,
        ..Limits::default()
    };
    let lane = Arc::new(Lane::spawn(limits, call, None, &Spawner::detached()));
    let far = Instant::now() + Duration::from_secs(5);
    let spawn = |i: u32| {
        let lane = lane.clone();
        tokio::spawn(async move { lane.submit(i, 6, far).await })
    };
    let in_flight = spawn(1);
    tokio::task::yield_now().await;
    let doomed = spawn(99);
    tokio::task::yield_now().await;
    let queued = spawn(2);
    assert_eq!(in_flight.await.expect("join"), Settled::Lost);
    assert_eq!(doomed.await.expect("join"), Settled::Lost);
    assert_eq!(queued.await.expect("join"), Settled::NotSent);
    assert_eq!(
        *calls.lock(),
        2,
        "the queued entry was never handed to a call"
    );
    let rec = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let mut next = std::pin::pin!(lane.submit(3, 6, far));
    // The replacement is made (and counted) on the submit's first poll.
    let first = metrics::with_local_recorder(&rec, || next.as_mut().now_or_never());
    assert_eq!(first, None, "the replacement answers after its call");
    assert_eq!(next.await, Settled::Answered(30));
    let text = rec.handle().render();
    assert!(
        text.contains("geokv_internode_lane_restarts_total 1"),
        "{text}"
    );
}

/// Note 28 (issue 10): a lane whose task ended on purpose, told to by the
/// node after the stop's drain, was taken for dead: the next submit logged
/// "task died; replaced", counted a restart and started a new task. Now
/// it stays ended: the submit is not sent, nothing is counted or started.
#[tokio::test(start_paused = true)]
async fn a_lane_ended_after_the_drain_is_not_replaced() {
    let (owner, mut handed) = Spawner::channel();
    let (late, told) = tokio::sync::watch::channel(false);
    let started = Arc::new(Mutex::new(0usize));
    let count = started.clone();
    tokio::spawn(async move {
        while let Some(s) = handed.recv().await {
            *count.lock() += 1;
            tokio::spawn(s.task);
        }
    });
    let (lane, _) = echo_lane_on(&owner.with_late(told));
    let far = Instant::now() + Duration::from_secs(5);
    assert_eq!(lane.submit(1, 10, far).await, Settled::Answered(10));
    late.send_replace(true);
    tokio::time::sleep(RTT).await;
    let rec = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let mut after = std::pin::pin!(lane.submit(2, 10, far));
    let first = metrics::with_local_recorder(&rec, || after.as_mut().now_or_never());
    let got = match first {
        Some(s) => s,
        None => after.await,
    };
    assert_eq!(got, Settled::NotSent, "the lane ended with the drain");
    assert_eq!(*started.lock(), 1, "no task started after the drain");
    let text = rec.handle().render();
    assert!(
        !text.contains("geokv_internode_lane_restarts_total"),
        "{text}"
    );
}

/// A call answering for fewer entries than it was given leaves every one
/// of them lost (maybe applied), never another entry's outcome.
#[tokio::test(start_paused = true)]
async fn a_misaligned_answer_is_lost_for_every_entry() {
    let call: CallFn<u32, u32> = Arc::new(|items: Vec<(u32, Instant)>| {
        Box::pin(async move {
            tokio::time::sleep(RTT).await;
            items.into_iter().skip(1).map(|(i, _)| i * 10).collect()
        })
    });
    let lane = Arc::new(Lane::spawn(
        Limits::default(),
        call,
        None,
        &Spawner::detached(),
    ));
    let far = Instant::now() + Duration::from_secs(5);
    let all = (0..4u32).map(|i| {
        let lane = lane.clone();
        async move { lane.submit(i, 10, far).await }
    });
    for got in futures::future::join_all(all).await {
        assert_eq!(got, Settled::Lost);
    }
}

/// Past the lane's cap a submit settles at once as shed, never sent.
#[tokio::test(start_paused = true)]
async fn past_the_cap_a_submit_is_shed_at_once() {
    let sizes = Arc::new(Mutex::new(Vec::new()));
    let log = sizes.clone();
    let call: CallFn<u32, u32> = Arc::new(move |items: Vec<(u32, Instant)>| {
        log.lock().push(items.len());
        Box::pin(async move {
            tokio::time::sleep(RTT).await;
            items.into_iter().map(|(i, _)| i).collect()
        })
    });
    let limits = Limits {
        max_held_entries: 2,
        ..Limits::default()
    };
    let lane = Arc::new(Lane::spawn(limits, call, None, &Spawner::detached()));
    let far = Instant::now() + Duration::from_secs(5);
    let spawn = |i: u32| {
        let lane = lane.clone();
        tokio::spawn(async move { lane.submit(i, 10, far).await })
    };
    let (a, b) = (spawn(1), spawn(2));
    tokio::task::yield_now().await;
    let t = Instant::now();
    assert_eq!(lane.submit(3, 10, far).await, Settled::Shed);
    assert_eq!(t.elapsed(), Duration::ZERO, "shed at once");
    assert_eq!(a.await.expect("join"), Settled::Answered(1));
    assert_eq!(b.await.expect("join"), Settled::Answered(2));
    assert_eq!(*sizes.lock(), vec![1, 1]);
}

/// Review of stop 25 (read batching): a panic inside one call's future
/// took the lane's task down with it, so every other call in flight lost
/// its answers (settled lost, maybe applied). Now only the panicking
/// call's entries are lost; the others get their own answers.
#[tokio::test(start_paused = true)]
async fn a_panic_in_one_call_leaves_the_other_calls_answered() {
    let call: CallFn<u32, u32> = Arc::new(|items: Vec<(u32, Instant)>| {
        Box::pin(async move {
            if items.iter().any(|(i, _)| *i == 99) {
                tokio::time::sleep(RTT).await;
                panic!("one call panics (test)");
            }
            tokio::time::sleep(RTT * 3).await;
            items.into_iter().map(|(i, _)| i * 10).collect()
        })
    });
    // One entry per call: all three are in flight together.
    let limits = Limits {
        max_entries: 1,
        ..Limits::default()
    };
    let lane = Arc::new(Lane::spawn(limits, call, None, &Spawner::detached()));
    let far = Instant::now() + Duration::from_secs(5);
    let all = [1u32, 99, 2].map(|i| {
        let lane = lane.clone();
        async move { lane.submit(i, 10, far).await }
    });
    let got = futures::future::join_all(all).await;
    let want = [Settled::Answered(10), Settled::Lost, Settled::Answered(20)];
    assert_eq!(got, want);
}
