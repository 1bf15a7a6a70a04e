//! The shutdown order of the node's task set, under paused time.

use super::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::time::Instant;

const G: Grace = Grace {
    drain: Duration::from_secs(5),
    linger: Duration::from_secs(1),
};

async fn until_stop(mut sd: watch::Receiver<bool>) {
    let _ = sd.wait_for(|v| *v).await;
}

#[tokio::test(start_paused = true)]
async fn a_panicking_task_stops_the_node_and_is_reported() {
    let (stop, sd) = watch::channel(false);
    let mut tasks = TaskSet::default();
    tasks.spawn_loop("gossip", until_stop(sd.clone()));
    tasks.spawn_loop("repair", async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        panic!("boom");
    });
    let out = tasks.run(&stop, sd.clone(), G).await;
    assert!(*sd.borrow(), "the failure turned the shutdown signal on");
    assert_eq!(out.failed.len(), 1, "{out:?}");
    assert!(out.failed[0].starts_with("repair: panicked"), "{out:?}");
    assert!(out.aborted.is_empty(), "{out:?}");
}

#[tokio::test(start_paused = true)]
async fn a_task_that_ends_ok_before_the_signal_leaves_the_node_running() {
    let (stop, sd) = watch::channel(false);
    let mut tasks = TaskSet::default();
    tasks.spawn_loop("join", async {});
    tasks.spawn_loop("gossip", until_stop(sd.clone()));
    let signal = stop.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(10)).await;
        let _ = signal.send(true);
    });
    let began = Instant::now();
    let out = tasks.run(&stop, sd, G).await;
    assert_eq!(out, Outcome::default());
    assert_eq!(
        began.elapsed(),
        Duration::from_secs(10),
        "ran until the signal"
    );
}

#[tokio::test(start_paused = true)]
async fn requests_in_flight_finish_then_the_last_tasks_linger_then_are_aborted() {
    let (stop, sd) = watch::channel(false);
    let mut tasks = TaskSet::default();
    let finished = Arc::new(AtomicBool::new(false));
    let (done, in_flight) = (finished.clone(), until_stop(sd.clone()));
    // The client server: stops accepting, a request in flight takes 2 s.
    tasks.spawn("client", async move {
        in_flight.await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        done.store(true, Ordering::SeqCst);
        TaskResult::Ok(())
    });
    // The internode server held open by a peer's stream: never ends.
    let (seen, held) = (finished.clone(), until_stop(sd.clone()));
    let order_ok = Arc::new(AtomicBool::new(true));
    let order = order_ok.clone();
    tasks.spawn_last("internode", async move {
        held.await;
        std::future::pending::<()>().await;
        Ok(())
    });
    let watcher = tokio::spawn(async move {
        // Still running while the client drains: not aborted early.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        if !seen.load(Ordering::SeqCst) {
            order.store(false, Ordering::SeqCst);
        }
    });
    stop.send(true).unwrap();
    let began = Instant::now();
    let out = tasks.run(&stop, sd, G).await;
    watcher.await.unwrap();
    assert!(
        finished.load(Ordering::SeqCst),
        "the request in flight finished"
    );
    assert!(order_ok.load(Ordering::SeqCst));
    assert_eq!(out.aborted, vec!["internode"], "{out:?}");
    assert!(out.failed.is_empty(), "{out:?}");
    // 2 s of draining, then 1 s of linger for the internode server.
    assert_eq!(began.elapsed(), Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn a_task_that_ignores_the_signal_is_aborted_at_the_drain_bound() {
    let (stop, sd) = watch::channel(false);
    let mut tasks = TaskSet::default();
    tasks.spawn_loop("stuck", std::future::pending());
    tasks.spawn_loop("metrics", until_stop(sd.clone()));
    stop.send(true).unwrap();
    let began = Instant::now();
    let out = tasks.run(&stop, sd, G).await;
    assert_eq!(out.aborted, vec!["stuck"], "{out:?}");
    assert!(out.failed.is_empty(), "{out:?}");
    assert_eq!(began.elapsed(), G.drain, "no linger without last tasks");
}

/// Issue 10 (review of the shutdown, Medium): the internode server used to
/// get the node's signal with everything else and stop accepting at once,
/// so its "linger" served nothing new. It now keeps serving while the
/// client port drains and the loops end, gets its own signal only then,
/// and finishes its calls in flight within the linger.
#[tokio::test(start_paused = true)]
async fn the_last_tasks_serve_through_the_drain_and_stop_on_their_own_signal() {
    let (stop, sd) = watch::channel(false);
    let mut tasks = TaskSet::default();
    let began = Instant::now();
    let client_done = Arc::new(std::sync::Mutex::new(None));
    let (done, in_flight) = (client_done.clone(), until_stop(sd.clone()));
    tasks.spawn("client", async move {
        in_flight.await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        *done.lock().unwrap() = Some(Instant::now());
        TaskResult::Ok(())
    });
    tasks.spawn_loop("gossip", until_stop(sd.clone()));
    let mut late = tasks.late_signal();
    let (node_sd, told) = (sd.clone(), Arc::new(std::sync::Mutex::new(None)));
    let seen = told.clone();
    tasks.spawn_last("internode", async move {
        let _ = late.wait_for(|v| *v).await;
        assert!(*node_sd.borrow(), "after the node's own signal");
        *seen.lock().unwrap() = Some(Instant::now());
        // A call in flight finishes within the linger.
        tokio::time::sleep(Duration::from_millis(300)).await;
        Ok(())
    });
    let signal = stop.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let _ = signal.send(true);
    });
    let out = tasks.run(&stop, sd, G).await;
    assert_eq!(out, Outcome::default(), "nothing aborted or failed");
    let client_done = client_done.lock().unwrap().expect("the client drained");
    let told = told.lock().unwrap().expect("the late signal came");
    assert_eq!(client_done - began, Duration::from_secs(3));
    assert_eq!(told, client_done, "told only once the others had ended");
    assert_eq!(began.elapsed(), Duration::from_millis(3300));
}

/// Sets its flag when dropped: a task holding one has ended (finished or
/// aborted) once the flag is set.
struct Ended(Arc<AtomicBool>);
impl Drop for Ended {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Issue 10: a subsystem's own background tasks (a decommission, pushes
/// to peers, a layout fetch) are handed to the node's task set through its
/// spawner instead of being detached, so the node's stop ends every one of
/// them: one that ends on the signal is waited for, one that ignores it is
/// aborted and named, one handed over after the stop never starts; and a
/// panic of one is reported without stopping the node.
#[tokio::test(start_paused = true)]
async fn the_node_stop_leaves_none_of_the_subsystems_tasks_running() {
    let (stop, sd) = watch::channel(false);
    let mut tasks = TaskSet::default();
    tasks.spawn_loop("gossip", until_stop(sd.clone()));
    let spawner = tasks.spawner();
    let flags: Vec<Arc<AtomicBool>> = (0..3).map(|_| Arc::default()).collect();
    let (polite, stuck) = (Ended(flags[0].clone()), Ended(flags[1].clone()));
    let until = until_stop(sd.clone());
    spawner.spawn("layout push", async move {
        let _held = polite;
        until.await;
    });
    spawner.spawn("decommission", async move {
        let _held = stuck;
        std::future::pending::<()>().await;
    });
    spawner.spawn("auth push", async { panic!("boom") });
    let signal = stop.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(10)).await;
        let _ = signal.send(true);
    });
    let began = Instant::now();
    let out = tasks.run(&stop, sd, G).await;
    assert_eq!(
        began.elapsed(),
        Duration::from_secs(10) + G.drain,
        "the panic did not stop the node; the stuck task held the drain to its bound"
    );
    assert!(out.failed.is_empty(), "{out:?}");
    assert_eq!(out.aborted, vec!["decommission"], "{out:?}");
    assert_eq!(out.reported.len(), 1, "{out:?}");
    assert!(
        out.reported[0].starts_with("auth push: panicked"),
        "{out:?}"
    );
    assert!(flags[0].load(Ordering::SeqCst), "the polite task ended");
    assert!(
        flags[1].load(Ordering::SeqCst),
        "the stuck task was aborted"
    );
    let late = Ended(flags[2].clone());
    let started = Arc::new(AtomicBool::new(false));
    let s = started.clone();
    spawner.spawn("layout fetch", async move {
        let _held = late;
        s.store(true, Ordering::SeqCst);
    });
    tokio::task::yield_now().await;
    assert!(
        !started.load(Ordering::SeqCst),
        "nothing starts after the stop"
    );
    assert!(flags[2].load(Ordering::SeqCst), "dropped unstarted");
}

/// Issue 10: a peer's batching lane is a last task of the set. A request
/// of the drain (the client server finishing one 2 s after the signal)
/// still goes through it, and it ends after the drain on its own, so
/// nothing is aborted and a later submit is not sent.
#[tokio::test(start_paused = true)]
async fn a_batching_lane_serves_through_the_drain_and_ends_after_it() {
    use crate::transport::batch::Limits;
    use crate::transport::lane::{CallFn, Lane, Settled};
    let (stop, sd) = watch::channel(false);
    let mut tasks = TaskSet::default();
    let call: CallFn<u32, u32> = Arc::new(|items| {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            items.into_iter().map(|(i, _)| i * 2).collect()
        })
    });
    let lane = Arc::new(Lane::spawn(Limits::default(), call, None, &tasks.spawner()));
    let (through, in_flight) = (lane.clone(), until_stop(sd.clone()));
    tasks.spawn("client", async move {
        in_flight.await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let deadline = Instant::now() + Duration::from_secs(1);
        match through.submit(21, 8, deadline).await {
            Settled::Answered(42) => Ok(()),
            other => Err(format!("the lane did not serve the drain: {other:?}")),
        }
    });
    let signal = stop.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let _ = signal.send(true);
    });
    let out = tasks.run(&stop, sd, G).await;
    assert_eq!(out, Outcome::default(), "served, then ended unaborted");
    let after = lane.submit(1, 8, Instant::now() + Duration::from_secs(1));
    assert_eq!(after.await, Settled::NotSent, "the lane ended with the set");
}
