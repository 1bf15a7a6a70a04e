//! Who may call `Status` on the client port as a node (issue 12). A caller
//! presenting a client certificate that names a node is admitted without a
//! token (a `--replace` node asks its seed this way), so that branch is only
//! safe if the certificate must chain to the cluster CA. These tests hold it
//! with a real node: the cluster CA's node certificate passes; a certificate
//! from another CA naming the same node is refused in the TLS handshake (and
//! counted), and a cluster-CA *client* certificate named like a node does not
//! pass as one.

use crate::common::*;
use geokv::proto::v1::kv_client::KvClient;
use geokv::proto::v1::{StatusRequest, StatusResponse};
use geokv::security::certs::{init_dir, issue_in_dir, Identity};
use std::path::Path;
use std::time::Duration;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

/// `Status` on node `id`'s client port over TLS (trusting the cluster CA),
/// presenting the certificate and key in `cert`/`key` and no token.
async fn status_as(
    cluster: &Cluster,
    id: &str,
    cert: &Path,
    key: &Path,
) -> Result<StatusResponse, tonic::Status> {
    let ca = std::fs::read(cluster.tls_ca.as_ref().expect("a TLS cluster")).unwrap();
    let identity = tonic::transport::Identity::from_pem(
        std::fs::read(cert).unwrap(),
        std::fs::read(key).unwrap(),
    );
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .identity(identity);
    let channel = Endpoint::from_shared(cluster.client_url(id))
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .tls_config(tls)
        .unwrap()
        .connect_lazy();
    KvClient::new(channel)
        .status(StatusRequest {})
        .await
        .map(|r| r.into_inner())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_cluster_ca_node_certificate_reads_status_without_a_token() {
    let cluster = Cluster::start(Spec::one_dc(1, 1)).await;
    let certs = cluster.dir.path().join("certs");
    let me = cluster.node("dc1-n1").clone();

    // Baseline: no certificate, no token.
    let err = (cluster.anonymous_client("dc1-n1"))
        .status(StatusRequest {})
        .await
        .expect_err("an anonymous Status");
    assert_eq!(err.code(), tonic::Code::Unauthenticated, "{err:?}");

    // The cluster CA's certificate for a node: admitted (membership only).
    let (cert, key) = issue_in_dir(&certs, &Identity::Node("dc1-n9".into()), &[], &[]).unwrap();
    let status = status_as(&cluster, "dc1-n1", &cert, &key)
        .await
        .expect("a node certificate of the cluster CA reads Status");
    assert!(
        status.nodes.iter().any(|n| n.id == me.id),
        "the status lists the node: {status:?}"
    );

    // Another CA's certificate naming a real node of the cluster: the
    // handshake refuses it, so no call reaches the node branch.
    let before = handshake_refusals(&cluster).await;
    let other = cluster.dir.path().join("other-ca");
    init_dir(&other, "another-cluster").unwrap();
    let (cert, key) = issue_in_dir(
        &other,
        &Identity::Node(me.id.clone()),
        &[],
        &[me.client_address.ip()],
    )
    .unwrap();
    let err = status_as(&cluster, "dc1-n1", &cert, &key)
        .await
        .expect_err("a node certificate of another CA must not read Status");
    assert!(
        !matches!(
            err.code(),
            tonic::Code::Unauthenticated | tonic::Code::PermissionDenied
        ),
        "refused in the TLS handshake, before any authentication: {err:?}"
    );
    let after = handshake_refusals(&cluster).await;
    assert!(
        after > before,
        "the handshake refusal is counted ({before} -> {after})"
    );
    let log = cluster.log("dc1-n1");
    assert!(
        log.contains("TLS refused") && log.contains("UnknownIssuer"),
        "and logged with the reason:\n{log}"
    );

    // A client certificate of the cluster CA whose client name is a node
    // id is a client (role `dc1-n1`, which does not exist), not a node.
    let (cert, key) = issue_in_dir(&certs, &Identity::Client(me.id.clone()), &[], &[]).unwrap();
    let err = status_as(&cluster, "dc1-n1", &cert, &key)
        .await
        .expect_err("a client certificate named like a node");
    assert!(
        matches!(
            err.code(),
            tonic::Code::Unauthenticated | tonic::Code::PermissionDenied
        ),
        "{err:?}"
    );
}

async fn handshake_refusals(cluster: &Cluster) -> f64 {
    cluster
        .metric(
            "dc1-n1",
            "geokv_tls_refused_total",
            "port=\"client\",reason=\"handshake\"",
        )
        .await
}
