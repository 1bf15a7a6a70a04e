//! Hardened limits against real processes: a node past its bound on client
//! requests in flight sheds with `RESOURCE_EXHAUSTED` and a retry hint,
//! counts it, and loses nothing it acknowledged; a `Merkle` request deeper
//! than a node serves is refused with `INVALID_ARGUMENT`; a client message
//! over the size bound is `RESOURCE_EXHAUSTED` and stores nothing.

use crate::common::*;
use geokv::client::{Client, ClientError, ConsistencyLevel, TlsOptions};
use geokv::proto::v1::Consistency;
use std::time::Duration;
use tonic::Code;

/// Three nodes in one datacenter, rf 3; every node takes at most 3 client
/// requests at once and hints 40 ms. The test's one client address gets
/// no per-address share (by default a quarter of the 3: one request).
fn small_limit() -> Spec {
    Spec {
        dcs: vec![("dc1", 3)],
        replication: vec![("dc1", 3)],
        extra_keyspaces: Vec::new(),
        gossip_interval_ms: 100,
        extra_args: [
            "--max-in-flight-requests",
            "3",
            "--client-max-requests-in-flight-per-address",
            "0",
            "--shed-retry-after-ms",
            "40",
        ]
        .map(String::from)
        .to_vec(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_past_its_in_flight_bound_sheds_with_a_hint_and_loses_nothing_acked() {
    let cluster = Cluster::start(small_limit()).await;
    let n1 = cluster.node("dc1-n1").clone();
    // Every write n1 coordinates waits 300 ms for its peers' acks.
    admin(n1.admin_address, "POST", "/faults/delay?dc=dc1&ms=300")
        .await
        .expect("fault injection");
    let mut builder = Client::builder();
    if let Some(ca) = &cluster.tls_ca {
        builder = builder.tls(TlsOptions::from_ca_file(ca).expect("the cluster CA"));
    }
    if let Some(token) = &cluster.admin_token {
        builder = builder.token(token);
    }
    let client = builder
        .endpoints([cluster.client_url("dc1-n1")])
        .discover(false)
        .consistency(ConsistencyLevel::Quorum)
        .timeout(Duration::from_secs(5))
        .retries(0)
        .build()
        .await
        .expect("client");

    let writes = (0..16).map(|i| {
        let c = client.clone();
        async move { (i, c.put(format!("burst-{i}"), format!("v{i}")).await) }
    });
    let outcomes = futures::future::join_all(writes).await;
    let (mut acked, mut shed) = (Vec::new(), Vec::new());
    for (i, res) in outcomes {
        match res {
            Ok(_) => acked.push(i),
            Err(e @ ClientError::Overloaded { .. }) => {
                assert_eq!(e.code(), Code::ResourceExhausted);
                let hint = e.retry_after().expect("a retry hint");
                assert!(hint >= Duration::from_millis(40), "{hint:?}");
                assert!(!e.may_have_been_applied(), "{e}");
                assert!(e.message().contains("in flight"), "{e}");
                shed.push(i);
            }
            Err(e) => panic!("put {i}: unexpected {e:?}"),
        }
    }
    assert!(!shed.is_empty(), "16 writes at once past a bound of 3");
    assert!(acked.len() >= 3, "the bound's worth were served: {acked:?}");
    let counted = cluster
        .metric("dc1-n1", "geokv_requests_shed_total", "in_flight_limit")
        .await;
    assert_eq!(counted, shed.len() as f64, "every shed request is counted");

    // Nothing acknowledged is lost (a quorum of replicas holds it), and
    // nothing shed was applied anywhere.
    let reader = cluster.replica_reader();
    for i in &acked {
        let key = format!("burst-{i}");
        let mut holders = 0;
        for n in &cluster.nodes {
            if reader.holds(n, "default", &key).await == Some(vec![format!("v{i}")]) {
                holders += 1;
            }
        }
        assert!(
            holders >= 2,
            "{key} acknowledged at QUORUM, on {holders} replicas"
        );
    }
    // Let any write still in flight finish before looking for shed keys.
    tokio::time::sleep(Duration::from_millis(700)).await;
    for i in &shed {
        for n in &cluster.nodes {
            let held = reader.holds(n, "default", &format!("burst-{i}")).await;
            assert_eq!(held, Some(Vec::new()), "shed burst-{i} on {}", n.id);
        }
    }

    // Once the burst is over the node serves again, and the in-flight
    // gauge is back to zero.
    admin(n1.admin_address, "POST", "/faults/delay?dc=dc1&ms=0")
        .await
        .expect("fault injection");
    client.put("after", "ok").await.expect("served again");
    let gauge = cluster
        .metric("dc1-n1", "geokv_requests_in_flight", "")
        .await;
    assert_eq!(gauge, 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merkle_request_deeper_than_served_is_invalid_argument() {
    use geokv::proto::v1::internode::{internode_client::InternodeClient, MerkleRequest};
    let cluster = Cluster::start(small_limit()).await;
    let n1 = cluster.node("dc1-n1");
    // Over mutual TLS as the harness's node identity (TLS clusters).
    let reader = cluster.replica_reader();
    let mut peer = InternodeClient::new(reader.channel(n1));
    let ask = |depth| {
        let mut req = tonic::Request::new(MerkleRequest {
            keyspace: "default".into(),
            range_start: 0,
            range_end: 0,
            depth,
        });
        reader.claim(&mut req);
        req
    };
    let served = peer
        .merkle(ask(geokv::repair::MAX_DEPTH))
        .await
        .expect("served");
    assert_eq!(
        served.into_inner().leaves.len(),
        1 << geokv::repair::MAX_DEPTH
    );
    for depth in [geokv::repair::MAX_DEPTH + 1, 16, 40] {
        let refused = peer.merkle(ask(depth)).await.expect_err("too deep");
        assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
        assert!(refused.message().contains("deeper than"), "{refused:?}");
    }
}

/// A client message over the client port's size bound (8 MiB) is refused
/// `RESOURCE_EXHAUSTED` before any handler runs: nothing is stored, and
/// the connection serves the next request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_the_size_bound_is_resource_exhausted_and_nothing_is_stored() {
    let cluster = Cluster::start(Spec::one_dc(1, 1)).await;
    let mut c = cluster.client("dc1-n1").await;
    let bound = geokv::node::limits::ServerLimits::default()
        .client
        .max_decoding_bytes;
    let big = "x".repeat(bound + 1);
    let refused = put(&mut c, "big", &big, vec![], Consistency::One)
        .await
        .expect_err("over the bound");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(refused.message().contains("too large"), "{refused:?}");
    let got = get(&mut c, "big", Consistency::One).await.expect("served");
    assert!(got.siblings.is_empty(), "nothing stored: {got:?}");
    // Just under the bound (the request's other fields take a few bytes),
    // the message reaches the handler, which checks the value against its
    // own, smaller limit: INVALID_ARGUMENT, nothing applied (only the
    // oversize refusal of the port becomes RESOURCE_EXHAUSTED).
    let fits = "y".repeat(bound - 1024);
    let refused = put(&mut c, "fits", &fits, vec![], Consistency::One)
        .await
        .expect_err("a value over the value limit");
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert!(refused.message().contains("limit"), "{refused:?}");
}
