//! The admission layer of the client port (`api::shed`) on a fake service:
//! shed from the headers, bytes taken per frame and given back when the
//! call ends, however it ends.

use super::*;
use crate::api::admission::AdmissionConfig;
use http_body_util::BodyExt;
use hyper::body::{Body as HttpBody, Frame};
use std::sync::atomic::AtomicBool;
use tokio::sync::watch;
use tower::{Layer, Service, ServiceExt};

const MIB: usize = 1 << 20;
const PUT: &str = "/geokv.v1.Kv/Put";

type Handler = tower::util::BoxCloneService<
    http::Request<Body>,
    http::Response<Body>,
    std::convert::Infallible,
>;

/// A body of one frame of `len` bytes, saying whether it was read.
struct Probe {
    len: Option<usize>,
    read: Arc<AtomicBool>,
}

impl HttpBody for Probe {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<bytes::Bytes>, tonic::Status>>> {
        self.read.store(true, Ordering::SeqCst);
        let frame = self.len.take().map(|n| vec![0u8; n].into());
        Poll::Ready(frame.map(|b| Ok(Frame::data(b))))
    }
}

fn probe(len: usize) -> (Body, Arc<AtomicBool>) {
    let read = Arc::new(AtomicBool::new(false));
    let body = Body::new(Probe {
        len: Some(len),
        read: read.clone(),
    });
    (body, read)
}

fn request(path: &str, body: Body) -> http::Request<Body> {
    http::Request::builder()
        .uri(path)
        .body(body)
        .expect("a request")
}

/// A handler that reads its whole body (as tonic decodes it; a body error
/// is its answer), then holds the call until `release` turns true.
fn handler(release: watch::Receiver<bool>) -> Handler {
    Handler::new(tower::service_fn(move |req: http::Request<Body>| {
        let mut release = release.clone();
        async move {
            if let Err(status) = req.into_body().collect().await {
                return Ok(status.into_http());
            }
            let _ = release.wait_for(|r| *r).await;
            Ok(http::Response::new(Body::empty()))
        }
    }))
}

fn layer(budget: &Arc<ByteBudget>, timeouts: Timeouts) -> (ShedLayer, Arc<Admission>) {
    let admission = Admission::new(AdmissionConfig::default());
    (
        ShedLayer::new(admission.clone(), budget.clone(), timeouts),
        admission,
    )
}

fn code(res: &http::Response<Body>) -> tonic::Code {
    tonic::Status::from_header_map(res.headers()).map_or(tonic::Code::Ok, |s| s.code())
}

async fn until_held(budget: &ByteBudget, bytes: usize) {
    while budget.in_flight() != bytes {
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn the_third_8_mib_body_under_16_mib_is_shed_before_it_is_read() {
    let budget = ByteBudget::new(16 * MIB, Duration::from_millis(50));
    let (gate, admission) = layer(&budget, Timeouts::default());
    let (release, rx) = watch::channel(false);
    let svc = gate.layer(handler(rx));
    let mut held = Vec::new();
    for _ in 0..2 {
        let call = svc.clone().oneshot(request(PUT, probe(8 * MIB).0));
        held.push(tokio::spawn(call));
    }
    until_held(&budget, 16 * MIB).await;
    let (body, read) = probe(8 * MIB);
    let shed = svc
        .clone()
        .oneshot(request(PUT, body))
        .await
        .expect("an answer");
    assert_eq!(code(&shed), tonic::Code::ResourceExhausted);
    assert_eq!(shed.headers()["retry-after-ms"], "50");
    assert_eq!(shed.headers()["geokv-applied"], "no");
    assert!(
        !read.load(Ordering::SeqCst),
        "shed before its body was read"
    );
    assert_eq!(budget.in_flight(), 16 * MIB);
    release.send_replace(true);
    for call in held {
        let res = call.await.expect("joined").expect("an answer");
        assert_eq!(code(&res), tonic::Code::Ok);
    }
    assert_eq!((budget.in_flight(), admission.in_flight()), (0, 0));
}

#[tokio::test]
async fn a_frame_past_the_budget_fails_the_body_and_its_bytes_are_given_back() {
    let budget = ByteBudget::new(10 * MIB, Duration::from_millis(50));
    let (gate, admission) = layer(&budget, Timeouts::default());
    let (release, rx) = watch::channel(false);
    let svc = gate.layer(handler(rx));
    let first = tokio::spawn(svc.clone().oneshot(request(PUT, probe(8 * MIB).0)));
    until_held(&budget, 8 * MIB).await;
    let (body, read) = probe(4 * MIB);
    let res = svc
        .clone()
        .oneshot(request(PUT, body))
        .await
        .expect("answer");
    assert!(read.load(Ordering::SeqCst), "admitted from its headers");
    assert_eq!(code(&res), tonic::Code::ResourceExhausted);
    assert_eq!(res.headers()["geokv-applied"], "no");
    assert_eq!((budget.in_flight(), admission.in_flight()), (8 * MIB, 1));
    release.send_replace(true);
    first.await.expect("joined").expect("an answer");
    assert_eq!((budget.in_flight(), admission.in_flight()), (0, 0));
}

/// A body of `sent` bytes that then stalls (its sender is kept).
fn stalled(sent: usize) -> (Body, tokio::sync::mpsc::Sender<Frame<bytes::Bytes>>) {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tx.try_send(Frame::data(vec![0u8; sent].into()))
        .expect("room for one frame");
    let frames = tokio_stream::wrappers::ReceiverStream::new(rx);
    let frames = futures::StreamExt::map(frames, Ok::<_, tonic::Status>);
    (Body::new(http_body_util::StreamBody::new(frames)), tx)
}

#[tokio::test]
async fn a_cancelled_call_gives_its_bytes_and_place_back() {
    let budget = ByteBudget::new(16 * MIB, Duration::from_millis(50));
    let (gate, admission) = layer(&budget, Timeouts::default());
    let (_release, rx) = watch::channel(false);
    let svc = gate.layer(handler(rx));
    let (body, _sender) = stalled(MIB);
    let call = tokio::spawn(svc.oneshot(request(PUT, body)));
    until_held(&budget, MIB).await;
    assert_eq!(admission.in_flight(), 1);
    call.abort();
    assert!(call.await.expect_err("aborted").is_cancelled());
    assert_eq!((budget.in_flight(), admission.in_flight()), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn a_stuck_handler_is_dropped_after_the_handler_timeout() {
    let budget = ByteBudget::new(16 * MIB, Duration::from_millis(50));
    let timeouts = Timeouts {
        handler: Duration::from_secs(5),
        body: Duration::from_secs(2),
    };
    let (gate, admission) = layer(&budget, timeouts);
    let (_release, rx) = watch::channel(false);
    let mut svc = gate.layer(handler(rx));
    let (body, _read) = probe(MIB);
    let started = tokio::time::Instant::now();
    let res = svc.ready().await.expect("ready");
    let res = res.call(request(PUT, body)).await.expect("an answer");
    assert_eq!(code(&res), tonic::Code::DeadlineExceeded);
    assert_eq!(res.headers()["geokv-applied"], "maybe");
    assert_eq!(started.elapsed(), Duration::from_secs(5));
    assert_eq!((budget.in_flight(), admission.in_flight()), (0, 0));
}

#[tokio::test]
async fn status_takes_no_place_under_the_request_bound() {
    let budget = ByteBudget::new(16 * MIB, Duration::from_millis(50));
    let admission = Admission::new(AdmissionConfig {
        max_in_flight: 1,
        retry_after: Duration::from_millis(50),
    });
    let gate = ShedLayer::new(admission.clone(), budget.clone(), Timeouts::default());
    let (release, rx) = watch::channel(false);
    let svc = gate.layer(handler(rx));
    let put = tokio::spawn(svc.clone().oneshot(request(PUT, probe(10).0)));
    until_held(&budget, 10).await;
    let refused = svc.clone().oneshot(request(PUT, probe(10).0)).await;
    assert_eq!(
        code(&refused.expect("answer")),
        tonic::Code::ResourceExhausted
    );
    // Admitted in `call`, while the put holds the only place.
    let mut s = svc.clone();
    let status =
        (s.ready().await.expect("ready")).call(request("/geokv.v1.Kv/Status", probe(10).0));
    let status = tokio::spawn(status);
    release.send_replace(true);
    let status = status.await.expect("joined").expect("an answer");
    assert_eq!(code(&status), tonic::Code::Ok);
    put.await.expect("joined").expect("an answer");
    assert_eq!((budget.in_flight(), admission.in_flight()), (0, 0));
}

/// review-shed32 M1: stalled bodies hold every place only until the body
/// timeout, far short of the handler timeout; nothing reached a handler.
#[tokio::test(start_paused = true)]
async fn stalled_bodies_give_their_places_back_after_the_body_timeout() {
    let budget = ByteBudget::new(16 * MIB, Duration::from_millis(50));
    let admission = Admission::new(AdmissionConfig {
        max_in_flight: 4,
        retry_after: Duration::from_millis(50),
    });
    let timeouts = Timeouts {
        handler: DEFAULT_HANDLER_TIMEOUT,
        body: Duration::from_secs(2),
    };
    let gate = ShedLayer::new(admission.clone(), budget.clone(), timeouts);
    let (release, rx) = watch::channel(false);
    let svc = gate.layer(handler(rx));
    let started = tokio::time::Instant::now();
    let mut stalls = Vec::new();
    for _ in 0..4 {
        let (body, sender) = stalled(1);
        stalls.push((
            tokio::spawn(svc.clone().oneshot(request(PUT, body))),
            sender,
        ));
    }
    until_held(&budget, 4).await;
    let refused = svc.clone().oneshot(request(PUT, probe(10).0)).await;
    assert_eq!(
        code(&refused.expect("answer")),
        tonic::Code::ResourceExhausted
    );
    for (call, _sender) in stalls {
        let res = call.await.expect("joined").expect("an answer");
        assert_eq!(code(&res), tonic::Code::DeadlineExceeded);
        assert_eq!(res.headers()["geokv-applied"], "no");
    }
    assert_eq!(started.elapsed(), Duration::from_secs(2));
    assert_eq!((budget.in_flight(), admission.in_flight()), (0, 0));
    release.send_replace(true);
    let put = svc.clone().oneshot(request(PUT, probe(10).0)).await;
    assert_eq!(code(&put.expect("answer")), tonic::Code::Ok);
}

/// review-shed32 M2: a body that alone passes the budget can never be
/// admitted, so it is refused for good, without a retry hint.
#[tokio::test]
async fn a_body_alone_past_the_budget_is_refused_without_a_retry_hint() {
    let budget = ByteBudget::new(4 * MIB, Duration::from_millis(50));
    let (gate, admission) = layer(&budget, Timeouts::default());
    let (_release, rx) = watch::channel(true);
    let svc = gate.layer(handler(rx));
    let res = svc.oneshot(request(PUT, probe(6 * MIB).0)).await;
    let res = res.expect("an answer");
    assert_eq!(code(&res), tonic::Code::InvalidArgument);
    assert!(res.headers().get("retry-after-ms").is_none());
    assert_eq!(res.headers()["geokv-applied"], "no");
    let message = res.headers()["grpc-message"].to_str().expect("ascii");
    assert!(message.contains("(--client-max-request-bytes-in-flight)"));
    assert_eq!((budget.in_flight(), admission.in_flight()), (0, 0));
}

/// review-shed33 L3: a body alone past its address's share (but not the
/// node's budget) names the per-address flag.
#[tokio::test]
async fn a_body_alone_past_the_share_names_the_per_address_flag() {
    let budget = ByteBudget::new(64 * MIB, Duration::from_millis(50));
    let (gate, _admission) = layer(&budget, Timeouts::default());
    let shares = Shares::new(ShareLimits {
        requests: 0,
        bytes: 3 * MIB,
    });
    let (_release, rx) = watch::channel(true);
    let svc = gate.with_shares(shares.clone()).layer(handler(rx));
    let res = svc
        .oneshot(from([10, 0, 0, 1], PUT, probe(6 * MIB).0))
        .await;
    let res = res.expect("an answer");
    assert_eq!(code(&res), tonic::Code::InvalidArgument);
    let message = res.headers()["grpc-message"].to_str().expect("ascii");
    assert!(message.contains("(--client-max-request-bytes-in-flight-per-address)"));
    assert_eq!(shares.held([10, 0, 0, 1].into()), (0, 0));
}

/// review-shed32 L2: with the budget full, `Status` is still answered.
#[tokio::test]
async fn status_is_answered_while_the_byte_budget_is_full() {
    let budget = ByteBudget::new(16 * MIB, Duration::from_millis(50));
    let (gate, admission) = layer(&budget, Timeouts::default());
    let (release, rx) = watch::channel(false);
    let svc = gate.layer(handler(rx));
    let put = tokio::spawn(svc.clone().oneshot(request(PUT, probe(16 * MIB).0)));
    until_held(&budget, 16 * MIB).await;
    let status = svc
        .clone()
        .oneshot(request("/geokv.v1.Kv/Status", probe(5).0));
    let status = tokio::spawn(status);
    until_held(&budget, 16 * MIB + 5).await;
    release.send_replace(true);
    let status = status.await.expect("joined").expect("an answer");
    assert_eq!(code(&status), tonic::Code::Ok);
    put.await.expect("joined").expect("an answer");
    assert_eq!((budget.in_flight(), admission.in_flight()), (0, 0));
}

/// A request from `ip`, as tonic records a plaintext connection.
fn from(ip: [u8; 4], path: &str, body: Body) -> http::Request<Body> {
    let mut req = request(path, body);
    let remote_addr = Some(std::net::SocketAddr::from((ip, 40000)));
    (req.extensions_mut()).insert(tonic::transport::server::TcpConnectInfo {
        local_addr: None,
        remote_addr,
    });
    req
}

/// review-shed32 M1: one address's stalled bodies hold only its share of
/// the places and bytes; another address is admitted at once.
#[tokio::test]
async fn one_address_holds_only_its_share_of_places_and_bytes() {
    const A: [u8; 4] = [10, 0, 0, 1];
    let budget = ByteBudget::new(64 * MIB, Duration::from_millis(50));
    let (gate, admission) = layer(&budget, Timeouts::default());
    let shares = Shares::new(ShareLimits {
        requests: 2,
        bytes: 3 * MIB,
    });
    let (_release, rx) = watch::channel(true);
    let svc = gate.with_shares(shares.clone()).layer(handler(rx));
    let (body, _first) = stalled(2 * MIB);
    let first = tokio::spawn(svc.clone().oneshot(from(A, PUT, body)));
    until_held(&budget, 2 * MIB).await;
    let over_bytes = svc.clone().oneshot(from(A, PUT, probe(2 * MIB).0)).await;
    let over_bytes = over_bytes.expect("an answer");
    assert_eq!(code(&over_bytes), tonic::Code::ResourceExhausted);
    assert_eq!(over_bytes.headers()["retry-after-ms"], "50");
    let (body, _second) = stalled(1);
    let second = tokio::spawn(svc.clone().oneshot(from(A, PUT, body)));
    until_held(&budget, 2 * MIB + 1).await;
    assert_eq!(shares.held(A.into()), (2, 2 * MIB + 1));
    let (body, read) = probe(10);
    let over_places = svc.clone().oneshot(from(A, PUT, body)).await;
    let over_places = over_places.expect("an answer");
    assert_eq!(code(&over_places), tonic::Code::ResourceExhausted);
    assert_eq!(over_places.headers()["geokv-applied"], "no");
    assert!(!read.load(Ordering::SeqCst), "shed from its headers");
    let other = svc
        .clone()
        .oneshot(from([10, 0, 0, 2], PUT, probe(10).0))
        .await;
    assert_eq!(code(&other.expect("an answer")), tonic::Code::Ok);
    for call in [first, second] {
        call.abort();
        assert!(call.await.expect_err("aborted").is_cancelled());
    }
    assert_eq!(shares.held(A.into()), (0, 0));
    assert_eq!((budget.in_flight(), admission.in_flight()), (0, 0));
}

#[path = "shed_body_tests.rs"]
mod body;
