//! The gate's two parties (the caller giving up, the body read) in every
//! order, and a request kept by the service below past its caller's timer.

use super::*;
use crate::proto::v1::internode::internode_client::InternodeClient;
use crate::proto::v1::internode::ReplicaWriteRequest;
use bytes::Bytes;
use std::convert::Infallible;

/// Reads `body` as hyper would, as far as it goes without waiting: the
/// bytes of data it yielded, and whether it ended with an error.
fn read(body: &mut Body) -> (usize, bool) {
    let mut cx = Context::from_waker(futures::task::noop_waker_ref());
    let mut data = 0;
    loop {
        match Pin::new(&mut *body).poll_frame(&mut cx) {
            Poll::Ready(Some(Ok(frame))) => data += frame.data_ref().map_or(0, |d| d.len()),
            Poll::Ready(Some(Err(_))) => return (data, true),
            Poll::Ready(None) | Poll::Pending => return (data, false),
        }
    }
}

fn gated(gate: &Gate) -> Body {
    let message = http_body_util::Full::new(Bytes::from_static(b"a write"));
    Body::new(GatedBody {
        inner: Body::new(message),
        gate: gate.clone(),
        open: false,
    })
}

#[derive(Debug, Clone, Copy)]
enum Step {
    GiveUp,
    Read,
}

/// Every order of up to 8 steps of the two parties (the gate is one atomic:
/// any concurrent run is one of these orders): the caller is told "not
/// sent" only if the body yields no data, ever, and a body that yielded data
/// never leaves its caller told "not sent".
#[test]
fn not_sent_only_if_the_body_never_yields_data_in_every_order() {
    for len in 0..=8u32 {
        for bits in 0..(1u32 << len) {
            let steps: Vec<Step> = (0..len)
                .map(|i| match (bits >> i) & 1 {
                    0 => Step::GiveUp,
                    _ => Step::Read,
                })
                .collect();
            let gate = Gate::new();
            let mut body = gated(&gate);
            let (mut data, mut told) = (0, Vec::new());
            for step in &steps {
                match step {
                    Step::GiveUp => told.push(gate.abandon()),
                    Step::Read => data += read(&mut body).0,
                }
            }
            let not_sent = told.iter().any(|t| *t);
            assert!(!not_sent || data == 0, "{steps:?}: {told:?}, {data} bytes");
            assert!(told.iter().all(|t| *t == not_sent), "{steps:?}: {told:?}");
            // Whoever comes first wins.
            match steps.first() {
                Some(Step::GiveUp) => assert!(not_sent && data == 0, "{steps:?}"),
                Some(Step::Read) => assert!(!not_sent && data > 0, "{steps:?}"),
                None => {}
            }
        }
    }
}

/// The same two parties on two threads at once, many times.
#[test]
fn a_caller_and_its_body_racing_on_two_threads_never_both_win() {
    for _ in 0..2000 {
        let gate = Gate::new();
        let mut body = gated(&gate);
        let start = Arc::new(std::sync::Barrier::new(2));
        let (g, s) = (gate.clone(), start.clone());
        let caller = std::thread::spawn(move || {
            s.wait();
            g.abandon()
        });
        start.wait();
        let (data, _) = read(&mut body);
        let not_sent = caller.join().unwrap();
        assert!(not_sent != (data > 0), "not sent: {not_sent}, {data} bytes");
    }
}

/// An inner service that keeps every request and never answers, as
/// tonic's Buffer may hold a call; when `reads`, it reads the body once
/// first, as hyper does when it sends the call.
#[derive(Clone, Default)]
struct Keeps {
    kept: Arc<parking_lot::Mutex<Vec<http::Request<Body>>>>,
    reads: bool,
    read: Arc<parking_lot::Mutex<usize>>,
}

impl Service<http::Request<Body>> for Keeps {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = std::future::Pending<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: http::Request<Body>) -> Self::Future {
        if self.reads {
            *self.read.lock() += read(req.body_mut()).0;
        }
        self.kept.lock().push(req);
        std::future::pending()
    }
}

/// A write through the generated client on `inner`, gated, whose caller
/// gives up after 2 s: what it was told.
async fn give_up_on(inner: Keeps) -> Expired {
    let gate = Gate::new();
    let mut client = InternodeClient::new(Gated::new(inner, gate.clone()));
    let write = ReplicaWriteRequest {
        key: Bytes::from_static(b"k"),
        ..Default::default()
    };
    let call = client.replica_write(write);
    within(&gate, Duration::from_secs(2), call)
        .await
        .expect_err("the service never answers")
}

#[tokio::test(start_paused = true)]
async fn a_request_kept_past_its_callers_timer_is_not_sent_and_never_yields_data() {
    let keeps = Keeps::default();
    assert_eq!(give_up_on(keeps.clone()).await, Expired::NotSent);
    let mut req = keeps.kept.lock().pop().expect("the service kept the call");
    // Handed on later (a connection made just as the timer ended).
    let (data, failed) = read(req.body_mut());
    assert_eq!(data, 0, "no byte of the message");
    assert!(
        failed,
        "the body ends with an error: hyper resets the stream"
    );
}

#[tokio::test(start_paused = true)]
async fn a_request_read_before_its_callers_timer_may_have_been_sent() {
    let keeps = Keeps {
        reads: true,
        ..Keeps::default()
    };
    assert_eq!(give_up_on(keeps.clone()).await, Expired::MaybeSent);
    assert!(*keeps.read.lock() > 0, "the message was read");
}
