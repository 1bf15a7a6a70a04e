//! The SDK follows the cluster's members (issue 11/13): a client built with
//! one node's address of a TLS cluster learns the other nodes at build
//! time, learns a node that joins afterwards from its periodic refresh and
//! sends it requests, and forgets that node once it has been decommissioned,
//! while every call keeps succeeding.

use crate::common::*;
use geokv::client::{Client, TlsOptions};
use std::time::{Duration, Instant};

/// Waits (up to 60 s) until the client's endpoints do (or do not) name `addr`.
async fn until_known(client: &Client, addr: &str, known: bool) -> Duration {
    let began = Instant::now();
    loop {
        let urls = client.endpoints();
        if urls.iter().any(|u| u.ends_with(addr)) == known {
            return began.elapsed();
        }
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "{addr} known={known} never held: {urls:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_given_one_node_uses_a_joined_node_and_forgets_a_removed_one() {
    let c = Cluster::start(Spec::one_dc(3, 3)).await;
    let ca = c.tls_ca.clone().expect("a TLS cluster");
    let token = c.admin_token.clone().expect("a cluster with --auth");
    let client = Client::builder()
        .endpoints([c.client_url("dc1-n1")])
        .tls(TlsOptions::from_ca_file(&ca).expect("the cluster CA"))
        .token(token)
        .refresh_interval(Duration::from_millis(500))
        .timeout(Duration::from_secs(3))
        .build()
        .await
        .expect("client builds");
    assert_eq!(client.endpoints().len(), 3, "{:?}", client.endpoints());

    let n1 = c.node("dc1-n1").clone();
    let extra = ["--dc", "dc1", "--rack", "r4"];
    let mut n4 = c.spawn_new_node("dc1-n4", "dc1-n4", c.spare_ip(14), n1.peer_address, &extra);
    n4.wait_normal(n1.admin_address, Duration::from_secs(240), async || {})
        .await;
    let n4_addr = n4.client_address().to_string();
    let took = until_known(&client, &n4_addr, true).await;
    eprintln!("the client learned dc1-n4 {took:?} after it became Normal");

    // Round-robin over the four nodes: dc1-n4 coordinates some of them.
    for i in 0..40 {
        let key = format!("k{i}");
        client.put(key.as_str(), "v").await.expect("put");
        client.get(key.as_str()).await.expect("get");
    }
    let coordinated = metric_at(n4.admin_address(), "geokv_requests_total", "").await;
    assert!(
        coordinated >= 1.0,
        "dc1-n4 coordinated {coordinated} requests"
    );

    admin(n4.admin_address(), "POST", "/decommission")
        .await
        .expect("decommission begins");
    let began = Instant::now();
    while n4.exited().is_none() {
        assert!(began.elapsed() < Duration::from_secs(120), "{}", n4.log());
        // The client keeps working while the node leaves.
        client.get("k0").await.expect("get during the leave");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let took = until_known(&client, &n4_addr, false).await;
    eprintln!("the client forgot dc1-n4 {took:?} after it exited");
    assert_eq!(client.endpoints().len(), 3, "{:?}", client.endpoints());
    for i in 0..10 {
        let read = client
            .get(format!("k{i}"))
            .await
            .expect("get after the leave");
        assert_eq!(read.values().count(), 1);
    }
}
