//! The client body timeout of `api::shed` measures inactivity, the time
//! between two data frames, as nginx's `client_body_timeout`
//! (review-shed33 M1): a slow body that keeps coming is served, a body
//! that stops is dropped with "no".

use super::*;

/// A body of `frames` frames of 1 KiB, one every `every`; it ends after
/// the last one when `end`, else it stalls there (its sender is kept).
fn trickle(frames: usize, every: Duration, end: bool) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        for _ in 0..frames {
            tokio::time::sleep(every).await;
            if tx.send(Frame::data(vec![0u8; 1024].into())).await.is_err() {
                return;
            }
        }
        if !end {
            std::future::pending::<()>().await;
        }
    });
    let frames = tokio_stream::wrappers::ReceiverStream::new(rx);
    let frames = futures::StreamExt::map(frames, Ok::<_, tonic::Status>);
    Body::new(http_body_util::StreamBody::new(frames))
}

fn two_second_body_timeout() -> (Arc<ByteBudget>, ShedLayer, Arc<Admission>) {
    let budget = ByteBudget::new(16 * MIB, Duration::from_millis(50));
    let timeouts = Timeouts {
        handler: DEFAULT_HANDLER_TIMEOUT,
        body: Duration::from_secs(2),
    };
    let (gate, admission) = layer(&budget, timeouts);
    (budget, gate, admission)
}

#[tokio::test(start_paused = true)]
async fn a_slow_body_that_keeps_coming_is_served_past_the_body_timeout() {
    let (budget, gate, admission) = two_second_body_timeout();
    let (_release, rx) = watch::channel(true);
    let svc = gate.layer(handler(rx));
    let started = tokio::time::Instant::now();
    let body = trickle(10, Duration::from_millis(1500), true);
    let res = svc.oneshot(request(PUT, body)).await.expect("an answer");
    assert_eq!(code(&res), tonic::Code::Ok);
    assert_eq!(started.elapsed(), Duration::from_secs(15));
    assert_eq!((budget.in_flight(), admission.in_flight()), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn a_body_that_stops_for_the_body_timeout_is_dropped_with_no() {
    let (budget, gate, admission) = two_second_body_timeout();
    let (_release, rx) = watch::channel(true);
    let svc = gate.layer(handler(rx));
    let started = tokio::time::Instant::now();
    let body = trickle(3, Duration::from_millis(1500), false);
    let res = svc.oneshot(request(PUT, body)).await.expect("an answer");
    assert_eq!(code(&res), tonic::Code::DeadlineExceeded);
    assert_eq!(res.headers()["geokv-applied"], "no");
    assert_eq!(started.elapsed(), Duration::from_millis(4500 + 2000));
    assert_eq!((budget.in_flight(), admission.in_flight()), (0, 0));
}

/// review-fix33 L1: a body that keeps trickling is cut by the handler
/// timeout, but no handler had it (its body had not ended): "no".
#[tokio::test(start_paused = true)]
async fn a_body_still_arriving_at_the_handler_timeout_is_dropped_with_no() {
    let budget = ByteBudget::new(16 * MIB, Duration::from_millis(50));
    let timeouts = Timeouts {
        handler: Duration::from_secs(5),
        body: Duration::from_secs(2),
    };
    let (gate, admission) = layer(&budget, timeouts);
    let (_release, rx) = watch::channel(true);
    let svc = gate.layer(handler(rx));
    let started = tokio::time::Instant::now();
    let body = trickle(100, Duration::from_millis(1500), true);
    let res = svc.oneshot(request(PUT, body)).await.expect("an answer");
    assert_eq!(code(&res), tonic::Code::DeadlineExceeded);
    assert_eq!(res.headers()["geokv-applied"], "no");
    let message = res.headers()["grpc-message"].to_str().expect("ascii");
    assert!(message.contains("had%20not%20ended") || message.contains("had not ended"));
    assert_eq!(started.elapsed(), Duration::from_secs(5));
    assert_eq!((budget.in_flight(), admission.in_flight()), (0, 0));
}
