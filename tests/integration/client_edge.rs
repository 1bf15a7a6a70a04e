//! The client port's edge against a real node process (issue 12 §2, §3):
//! a call without a credential is refused `UNAUTHENTICATED` from its
//! headers, before its body is read or decoded (a body over the size bound
//! is not `RESOURCE_EXHAUSTED`, a body that never comes is answered at
//! once), and established client connections are capped
//! (`--client-max-connections`): one past the cap is closed and counted,
//! the open ones and the node serve on, and a freed place is taken again.
//! Must not: test permissions per keyspace (`auth`).

use crate::common::*;
use geokv::proto::v1::{Consistency, PutRequest, PutResponse};
use std::time::{Duration, Instant};
use tonic::Code;

/// Open client connections, and refused ones, as the node counts them.
const OPEN: &str = "geokv_connections_open";
const REFUSED: &str = "geokv_connections_refused_total";

fn put_request(value: Vec<u8>) -> PutRequest {
    PutRequest {
        keyspace: "default".into(),
        key: b"k".to_vec(),
        value,
        context: vec![],
        options: opts(Consistency::One),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unauthenticated_call_is_refused_before_its_body_is_decoded() {
    let cluster = Cluster::start(Spec::one_dc(1, 1)).await;
    assert!(cluster.admin_token.is_some(), "the harness runs --auth");
    let mut anonymous = cluster.anonymous_client("dc1-n1");
    let bound = geokv::node::limits::ServerLimits::default()
        .client
        .max_decoding_bytes;

    // Over the size bound: the port would refuse it RESOURCE_EXHAUSTED
    // once decoded; without a credential it is not decoded at all.
    let refused = anonymous
        .put(put_request(vec![b'x'; bound + 1]))
        .await
        .expect_err("no credential");
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    assert!(refused.message().contains("Bearer"), "{refused:?}");

    // A body that never comes: answered from the headers alone.
    let channel = cluster.channel_at(cluster.node("dc1-n1").client_address);
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("connected");
    let path = tonic::codegen::http::uri::PathAndQuery::from_static("/geokv.v1.Kv/Put");
    let codec = tonic_prost::ProstCodec::<PutRequest, PutResponse>::default();
    let never = tonic::Request::new(tokio_stream::pending::<PutRequest>());
    let answer = tokio::time::timeout(
        Duration::from_secs(30),
        grpc.client_streaming(never, path, codec),
    )
    .await
    .expect("answered without waiting for the body (before: the node waited to decode it)");
    let refused = answer.expect_err("no credential");
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");

    // An authenticated client is served as before.
    let mut c = cluster.client("dc1-n1").await;
    put(&mut c, "k", "v", vec![], Consistency::One)
        .await
        .expect("served");
}

/// A connected client of `cluster`'s node with its own connection.
async fn connected(cluster: &Cluster) -> Kv {
    let mut c = cluster.client_at(cluster.node("dc1-n1").client_address);
    put(&mut c, "k", "v", vec![], Consistency::One)
        .await
        .map(|_| c)
        .expect("served")
}

/// Waits (up to 15 s) until the node counts `want` open client connections.
async fn until_open(cluster: &Cluster, want: f64) {
    let started = Instant::now();
    loop {
        let open = cluster.metric("dc1-n1", OPEN, "port=\"client\"").await;
        if open == want {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{open} open client connections, wanted {want}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_connection_past_the_cap_is_closed_and_the_node_serves_on() {
    const CAP: usize = 3;
    let mut spec = Spec::one_dc(1, 1);
    spec.extra_args = vec!["--client-max-connections".into(), CAP.to_string()];
    let cluster = Cluster::start(spec).await;
    // The harness's own start-up clients are gone.
    until_open(&cluster, 0.0).await;

    let mut open = Vec::new();
    for _ in 0..CAP {
        open.push(connected(&cluster).await);
    }
    until_open(&cluster, CAP as f64).await;

    let mut past = cluster.client_at(cluster.node("dc1-n1").client_address);
    let refused = put(&mut past, "k", "v", vec![], Consistency::One)
        .await
        .expect_err("past the cap");
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    let counted = cluster.metric("dc1-n1", REFUSED, "port=\"client\"").await;
    assert!(counted >= 1.0, "the refusal is counted: {counted}");

    // The connections in place, and the node, serve on.
    for c in &mut open {
        put(c, "k", "v", vec![], Consistency::One)
            .await
            .expect("an open connection is served");
    }
    let health = admin_raw(cluster.node("dc1-n1").admin_address, "GET", "/health", None).await;
    assert_eq!(health.status, 200, "{health:?}");

    // A freed place is taken by the next client.
    drop(open.pop());
    until_open(&cluster, (CAP - 1) as f64).await;
    drop(past);
    connected(&cluster).await;
}
