//! The client port's admission before the body against a real node
//! (`api::shed`): a stalled partial body holds its bytes in flight
//! (`geokv_request_bytes_in_flight`) until the client body timeout
//! drops the call (`DEADLINE_EXCEEDED`, `geokv-applied: no`, counted),
//! then gives them back, and the node serves on.

use crate::common::*;
use bytes::Bytes;
use geokv::proto::v1::Consistency;
use http_body_util::StreamBody;
use hyper::body::Frame;
use std::time::{Duration, Instant};
use tonic::codegen::http;
use tower::{Service, ServiceExt};

const TIMEOUT_MS: u64 = 3000;
const SENT: usize = 256 << 10;

/// A `Put` whose body announces a 1 MiB message, sends `SENT` bytes of it
/// and stalls while `stall` is held.
fn stalled_put(
    token: Option<&str>,
) -> (
    http::Request<tonic::body::Body>,
    tokio::sync::mpsc::Sender<Result<Frame<Bytes>, tonic::Status>>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    let mut head = vec![0u8];
    head.extend((1u32 << 20).to_be_bytes());
    head.resize(5 + SENT, 0);
    tx.try_send(Ok(Frame::data(head.into()))).expect("room");
    let frames = StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(rx));
    let mut req = http::Request::builder()
        .method("POST")
        .uri("/geokv.v1.Kv/Put")
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let req = req.body(tonic::body::Body::new(frames)).expect("request");
    (req, tx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shed_a_stalled_partial_body_is_dropped_after_the_body_timeout() {
    let mut spec = Spec::one_dc(1, 1);
    spec.extra_args = vec!["--client-body-timeout-ms".into(), TIMEOUT_MS.to_string()];
    let cluster = Cluster::start(spec).await;
    let addr = cluster.node("dc1-n1").client_address;
    let mut channel = cluster.channel_at(addr);
    let (req, _stall) = stalled_put(cluster.admin_token.as_deref());
    let started = Instant::now();
    let call = channel.ready().await.expect("ready").call(req);
    let call = tokio::spawn(call);
    let mut held = 0.0;
    while held < SENT as f64 && started.elapsed() < Duration::from_millis(TIMEOUT_MS) {
        held = (cluster.metric("dc1-n1", "geokv_request_bytes_in_flight", "")).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(held >= SENT as f64, "the partial body is held: {held}");
    let res = call.await.expect("joined").expect("an answer");
    let status = tonic::Status::from_header_map(res.headers()).expect("trailers-only");
    assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
    assert_eq!(res.headers()["geokv-applied"], "no", "no handler had it");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(TIMEOUT_MS), "{took:?}");
    assert!(took < Duration::from_millis(TIMEOUT_MS * 3), "{took:?}");
    let gauge = cluster
        .metric("dc1-n1", "geokv_request_bytes_in_flight", "")
        .await;
    assert_eq!(gauge, 0.0, "the bytes are given back");
    let shed = cluster
        .metric("dc1-n1", "geokv_requests_shed_total", "body_timeout")
        .await;
    assert_eq!(shed, 1.0);
    let mut c = cluster.client("dc1-n1").await;
    put(&mut c, "after", "ok", vec![], Consistency::One)
        .await
        .expect("the node serves on");
}
