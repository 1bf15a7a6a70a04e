//! The Rust client SDK against a real six-node, two-datacenter cluster:
//! discovery and local-datacenter preference, per-call consistency, siblings
//! and their resolution with the causal context, typed errors, and a
//! coordinator that dies under the client.

use crate::common::*;
use geokv::client::{CausalContext, Client, ClientError, ConsistencyLevel, TlsOptions};
use std::time::Duration;
use tonic::Code;

/// A client of the whole cluster preferring `dc`, trusting the cluster CA
/// and sending its admin token (TLS and `--auth`, the harness default).
async fn client_for(cluster: &Cluster, dc: &str) -> Client {
    let endpoints: Vec<String> = cluster
        .nodes
        .iter()
        .map(|n| cluster.client_url(&n.id))
        .collect();
    let mut builder = Client::builder();
    if let Some(ca) = &cluster.tls_ca {
        builder = builder.tls(TlsOptions::from_ca_file(ca).expect("the cluster CA"));
    }
    if let Some(token) = &cluster.admin_token {
        builder = builder.token(token);
    }
    builder
        .endpoints(endpoints)
        .local_datacenter(dc)
        .consistency(ConsistencyLevel::LocalQuorum)
        .timeout(Duration::from_secs(3))
        .build()
        .await
        .expect("client builds against the cluster")
}

fn text(r: &geokv::client::GetResult) -> Vec<String> {
    let mut v: Vec<String> = r
        .values()
        .map(|b| String::from_utf8_lossy(b).to_string())
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_reads_writes_resolves_siblings_and_survives_a_dead_coordinator() {
    let mut cluster = Cluster::start(Spec::two_dc()).await;
    let dc1 = client_for(&cluster, "dc1").await;
    let dc2 = client_for(&cluster, "dc2").await;

    let status = dc1.status().await.unwrap();
    assert_eq!(status.nodes.len(), 6);
    assert!(status.nodes.iter().all(|n| n.up));

    let put = dc1.put("profile:7", "v1").await.unwrap();
    assert!(put.acks >= 2);
    let read = dc1.get("profile:7").await.unwrap();
    assert_eq!(text(&read), vec!["v1"]);
    // EACH_QUORUM from the other datacenter sees it too.
    let each = dc2
        .get("profile:7")
        .consistency(ConsistencyLevel::EachQuorum)
        .await
        .unwrap();
    assert_eq!(text(&each), vec!["v1"]);

    // Concurrent writers from both datacenters with the same context.
    dc1.put("profile:7", "from-dc1")
        .context(&read.context)
        .consistency(ConsistencyLevel::EachQuorum)
        .await
        .unwrap();
    dc2.put("profile:7", "from-dc2")
        .context(&read.context)
        .consistency(ConsistencyLevel::EachQuorum)
        .await
        .unwrap();
    let both = dc1
        .get("profile:7")
        .consistency(ConsistencyLevel::Quorum)
        .await
        .unwrap();
    assert_eq!(text(&both), vec!["from-dc1", "from-dc2"]);

    // resolve() writes the merged value back with the read's context.
    dc2.resolve("profile:7", "merged", &both)
        .consistency(ConsistencyLevel::EachQuorum)
        .await
        .unwrap();
    let resolved = dc1
        .get("profile:7")
        .consistency(ConsistencyLevel::All)
        .await
        .unwrap();
    assert_eq!(text(&resolved), vec!["merged"]);

    // The context survives a trip through base64 (as a shell user would).
    let ctx = CausalContext::from_base64(&resolved.context.to_base64()).unwrap();
    dc1.delete("profile:7", &ctx).await.unwrap();
    assert!(dc1.get("profile:7").await.unwrap().is_absent());

    // Typed errors carry the gRPC code.
    let err = dc1.get("x").keyspace("missing").await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err}");
    let err = dc2
        .put("x", "y")
        .keyspace("dc1_only")
        .consistency(ConsistencyLevel::LocalQuorum)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::FailedPrecondition { .. }),
        "{err}"
    );

    // A dc1 coordinator dies: reads fail over to the next dc1 node.
    cluster.kill("dc1-n1");
    for i in 0..10 {
        let r = dc1.get(format!("after-kill-{i}")).await;
        assert!(r.is_ok(), "get after a coordinator died: {r:?}");
    }
}
