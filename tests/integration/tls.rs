//! Transport security with real node processes (issue 12): a cluster on
//! mutual TLS works end to end, a plaintext client to its client port is
//! told the port needs TLS, and a node whose certificate comes from another
//! CA can neither gossip, replicate, join, nor get the stream between
//! datacenters — the cluster never counts it up and counts the refusals;
//! the CLI trusts the system roots without `--ca`.

use crate::common::*;
use geokv::proto::v1::kv_client::KvClient;
use geokv::proto::v1::{Consistency, StatusRequest};
use geokv::security::certs::{init_dir, issue_in_dir, pair_paths, Identity};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_cluster_serves_clients_and_tells_plaintext_ones_why_not() {
    let cluster = Cluster::start(Spec::one_dc(3, 3)).await;
    // Gossip converged over mutual TLS (start waited for all up); a
    // write at ALL reaches every replica over it.
    let mut n1 = cluster.client("dc1-n1").await;
    put(&mut n1, "k", "v1", vec![], Consistency::All)
        .await
        .expect("put at ALL over TLS");
    let mut n3 = cluster.client("dc1-n3").await;
    let got = get(&mut n3, "k", Consistency::All)
        .await
        .expect("get over TLS");
    assert_eq!(values(&got), vec!["v1"]);

    // A plaintext gRPC client gets a status saying what is wrong.
    let addr = cluster.node("dc1-n1").client_address;
    let plain = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy();
    let err = KvClient::new(plain)
        .status(StatusRequest {})
        .await
        .expect_err("plaintext to a TLS port");
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("requires TLS"), "{}", err.message());
    let refused = cluster
        .metric("dc1-n1", "geokv_tls_refused_total", "port=\"client\"")
        .await;
    assert!(refused >= 1.0, "plaintext call counted: {refused}");

    // The CLI: without --ca the same clear error, with --ca it works.
    let endpoint = format!("http://{addr}");
    let (ok, text) = cluster.cli_without_ca(&["get", "k", "--endpoint", &endpoint]);
    assert!(!ok);
    assert!(
        text.contains("FAILED_PRECONDITION") && text.contains("requires TLS"),
        "{text}"
    );
    let ca = cluster.tls_ca.clone().unwrap();
    let ca = ca.to_str().unwrap();
    let (ok, text) =
        cluster.cli_without_ca(&["put", "k2", "v2", "--endpoint", &endpoint, "--ca", ca]);
    assert!(ok, "{text}");
    let (ok, text) = cluster.cli_without_ca(&[
        "get",
        "k2",
        "--endpoint",
        &endpoint,
        "--ca",
        ca,
        "--consistency",
        "ALL",
    ]);
    assert!(ok && text.contains("v2"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_a_certificate_from_another_ca_is_never_counted_up() {
    let mut cluster = Cluster::start(Spec::one_dc(3, 3)).await;
    let intruder_dir = cluster.dir.path().join("intruder-certs");
    init_dir(&intruder_dir, "another-cluster").unwrap();
    let n3 = cluster.node("dc1-n3").clone();
    issue_in_dir(
        &intruder_dir,
        &Identity::Node(n3.id.clone()),
        &[],
        &[n3.client_address.ip()],
    )
    .unwrap();
    let (cert, key) = pair_paths(&intruder_dir, "node-dc1-n3");
    let before = cluster
        .metric("dc1-n1", "geokv_tls_refused_total", "port=\"internode\"")
        .await;

    // dc1-n3 comes back with a certificate of another CA (and trusting it).
    cluster.kill("dc1-n3");
    for observer in ["dc1-n1", "dc1-n2"] {
        cluster
            .wait_seen(observer, "dc1-n3", false, Duration::from_secs(20))
            .await;
    }
    let args: Vec<String> = [
        "--ca".into(),
        intruder_dir.join("ca.pem").display().to_string(),
        "--cert".into(),
        cert.display().to_string(),
        "--key".into(),
        key.display().to_string(),
    ]
    .into();
    // Its admin port serves the intruder's certificate.
    admin_over_https(n3.admin_address, &intruder_dir.join("ca.pem"));
    cluster.restart_with_args("dc1-n3", &args);
    cluster.wait_healthy("dc1-n3").await;

    // It gossips every 100 ms; for 3 s nobody counts it up.
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        for observer in ["dc1-n1", "dc1-n2"] {
            let view = cluster.view(observer).await;
            assert_eq!(
                view.get("dc1-n3"),
                Some(&false),
                "{observer} counts the intruder up"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let after = cluster
        .metric("dc1-n1", "geokv_tls_refused_total", "port=\"internode\"")
        .await;
    assert!(
        after > before,
        "its attempts are counted ({before} -> {after})"
    );
    assert!(
        cluster.log("dc1-n1").contains("TLS refused"),
        "and logged:\n{}",
        cluster.log("dc1-n1")
    );

    // Nothing replicates to it: ALL cannot be met, QUORUM can.
    let mut n1 = cluster.client("dc1-n1").await;
    let err = put(&mut n1, "x", "v", vec![], Consistency::All)
        .await
        .expect_err("ALL with an unauthenticated replica");
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
    put(&mut n1, "x", "v", vec![], Consistency::Quorum)
        .await
        .expect("QUORUM from the two members");

    // The same node with its proper certificate is a member again.
    cluster.kill("dc1-n3");
    admin_over_https(n3.admin_address, cluster.tls_ca.as_ref().unwrap());
    cluster.restart("dc1-n3").await;
    cluster
        .wait_seen("dc1-n1", "dc1-n3", true, Duration::from_secs(20))
        .await;
}

/// The certificate a node's client port (or, `admin`, its admin port)
/// presents to a fresh connection.
async fn served_certificate(cluster: &Cluster, id: &str, admin: bool) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(cluster.tls_ca.as_ref().unwrap()).unwrap())
        .unwrap();
    let cfg = rustls::ClientConfig::builder_with_provider(geokv::transport::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let n = cluster.node(id);
    let addr = if admin {
        n.admin_address
    } else {
        n.client_address
    };
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg))
        .connect(ServerName::IpAddress(addr.ip().into()), tcp)
        .await
        .expect("TLS handshake");
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_rotated_on_disk_is_served_without_a_restart() {
    use rustls::pki_types::pem::PemObject;
    let cluster = Cluster::start(Spec::one_dc(3, 3)).await;
    let certs = cluster.dir.path().join("certs");
    let (cert, key) = pair_paths(&certs, "node-dc1-n1");
    let old = served_certificate(&cluster, "dc1-n1", false).await;
    assert_eq!(
        old,
        rustls::pki_types::CertificateDer::from_pem_file(&cert)
            .unwrap()
            .to_vec()
    );
    // Rotate dc1-n1's pair (same CA, new key) under the running node.
    std::fs::remove_file(&cert).unwrap();
    std::fs::remove_file(&key).unwrap();
    let n1 = cluster.node("dc1-n1").clone();
    issue_in_dir(
        &certs,
        &Identity::Node(n1.id.clone()),
        &[],
        &[n1.client_address.ip()],
    )
    .unwrap();
    let new = rustls::pki_types::CertificateDer::from_pem_file(&cert)
        .unwrap()
        .to_vec();
    assert_ne!(old, new);
    // Picked up within the 5 s poll (plus slack for a loaded machine).
    let started = Instant::now();
    while served_certificate(&cluster, "dc1-n1", false).await != new {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "rotation not picked up"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(cluster.log("dc1-n1").contains("TLS certificates reloaded"));
    // The admin port serves the rotated certificate too.
    assert_eq!(served_certificate(&cluster, "dc1-n1", true).await, new);
    // Connections keep working: the others still see it up, writes at ALL pass.
    cluster.wait_all_up(Duration::from_secs(20)).await;
    let mut c = cluster.client("dc1-n1").await;
    put(&mut c, "after-rotation", "v", vec![], Consistency::All)
        .await
        .expect("put at ALL after the rotation");
    // SIGHUP reloads the unchanged files (the node keeps running).
    let ok = "outcome=\"ok\"";
    let before = cluster
        .metric("dc1-n1", "geokv_tls_reloads_total", ok)
        .await;
    cluster.signal("dc1-n1", libc::SIGHUP);
    let started = Instant::now();
    while cluster
        .metric("dc1-n1", "geokv_tls_reloads_total", ok)
        .await
        <= before
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "SIGHUP not reloaded"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The CLI (through the SDK) dials an `https://` endpoint without `--ca` by
/// trusting the system roots; here `SSL_CERT_FILE`, which the system-roots
/// loader reads instead of the OS store. `--ca` overrides them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_trusts_the_system_roots_without_ca_and_ca_overrides_them() {
    let cluster = Cluster::start(Spec::one_dc(1, 1)).await;
    let endpoint = format!("https://{}", cluster.node("dc1-n1").client_address);
    let cluster_ca = cluster.tls_ca.clone().unwrap();
    let foreign_ca = cluster.foreign_ca();
    let run = |roots: &std::path::Path, args: &[&str]| {
        cluster.cli_with_system_roots(roots, &[args, &["--endpoint", &endpoint]].concat())
    };

    // The system roots hold the cluster CA: no --ca needed.
    let (ok, text) = run(&cluster_ca, &["put", "sys", "v1"]);
    assert!(ok, "{text}");
    let (ok, text) = run(&cluster_ca, &["get", "sys"]);
    assert!(ok && text.contains("v1"), "{text}");

    // The system roots do not know the cluster CA: refused, nothing sent.
    let (ok, text) = run(&foreign_ca, &["put", "sys", "v2"]);
    assert!(!ok, "{text}");
    assert!(text.to_lowercase().contains("certificate"), "{text}");

    // --ca overrides the system roots.
    let ca = cluster_ca.to_str().unwrap();
    let (ok, text) = run(&foreign_ca, &["get", "sys", "--ca", ca]);
    assert!(ok && text.contains("v1") && !text.contains("v2"), "{text}");
}

/// A node joining (`--join SEED`) with a certificate of another CA is
/// refused: trusting only the cluster CA, it stops at start (its own
/// certificate does not verify); trusting its own CA too, it is refused at
/// the handshake, exits with an error naming the certificate problem, the
/// seed counts the refusal, and the layout never names it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_with_a_foreign_ca_certificate_is_refused_with_a_clear_error() {
    let cluster = Cluster::start(Spec::one_dc(3, 3)).await;
    let ip = cluster.spare_ip(14);
    let foreign = cluster.dir.path().join("foreign-certs");
    init_dir(&foreign, "another-cluster").unwrap();
    let who = Identity::Node("dc1-n4".into());
    issue_in_dir(&foreign, &who, &[], &[ip.into()]).unwrap();
    let (cert, key) = pair_paths(&foreign, &who.file_stem());
    let before = cluster
        .metric("dc1-n1", "geokv_tls_refused_total", "port=\"internode\"")
        .await;

    // It trusts the cluster CA (public) but holds a certificate of another:
    // its own certificate does not verify, so it stops at start.
    let seed = cluster.node("dc1-n1").peer_address;
    let ca = cluster.tls_ca.clone().unwrap();
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let node = ["--dc", "dc1", "--rack", "r4", "--cert", cert, "--key", key];
    let args = [&node[..], &["--ca", ca.to_str().unwrap()]].concat();
    let mut own = cluster.spawn_new_node("dc1-n4", "dc1-n4-own", ip, seed, &args);
    let log = own.wait_refused(Duration::from_secs(30)).await;
    assert!(log.contains("does not verify against the CA file"), "{log}");
    // Trusting its own CA too, it starts and dials the seed, which refuses it.
    let both = foreign.join("both-cas.pem");
    let cas = [
        std::fs::read(&ca).unwrap(),
        std::fs::read(foreign.join("ca.pem")).unwrap(),
    ];
    std::fs::write(&both, cas.concat()).unwrap();
    let both = [&node[..], &["--ca", both.to_str().unwrap()]].concat();
    let mut joiner = cluster.spawn_new_node("dc1-n4", "dc1-n4", ip, seed, &both);
    let log = joiner.wait_refused(Duration::from_secs(30)).await;
    assert!(log.to_lowercase().contains("certificate"), "{log}");

    let after = cluster
        .metric("dc1-n1", "geokv_tls_refused_total", "port=\"internode\"")
        .await;
    assert!(after > before, "the seed counted it: {before} -> {after}");
    let layout = layout_at(cluster.node("dc1-n2").admin_address)
        .await
        .expect("layout");
    assert!(layout.node("dc1-n4").is_none(), "never in the layout");
}

/// The stream between datacenters never delivers to a node of another CA:
/// while dc2's node holds a foreign certificate, dc1's entries for dc2 stay
/// queued and dc1 never counts it up; back with its own certificate it
/// gets them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_to_another_datacenter_never_reaches_a_foreign_ca_node() {
    let mut cluster = Cluster::start(Spec::pair(1, 1)).await;
    let n2 = cluster.node("dc2-n1").clone();
    let intruder = cluster.dir.path().join("intruder-certs");
    init_dir(&intruder, "another-cluster").unwrap();
    let who = Identity::Node(n2.id.clone());
    issue_in_dir(&intruder, &who, &[], &[n2.client_address.ip()]).unwrap();
    let (cert, key) = pair_paths(&intruder, &who.file_stem());
    cluster.kill("dc2-n1");
    cluster
        .wait_seen("dc1-n1", "dc2-n1", false, Duration::from_secs(20))
        .await;
    let args: Vec<String> = [
        "--ca".into(),
        intruder.join("ca.pem").display().to_string(),
        "--cert".into(),
        cert.display().to_string(),
        "--key".into(),
        key.display().to_string(),
    ]
    .into();
    admin_over_https(n2.admin_address, &intruder.join("ca.pem"));
    cluster.restart_with_args("dc2-n1", &args);
    cluster.wait_healthy("dc2-n1").await;

    let mut n1 = cluster.client("dc1-n1").await;
    for i in 0..5 {
        put(
            &mut n1,
            &format!("s{i}"),
            "v",
            vec![],
            Consistency::LocalQuorum,
        )
        .await
        .expect("dc1 acknowledges on its own");
    }
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        assert!(
            dc2_backlog(&cluster).await >= 5.0,
            "queued for dc2, not delivered"
        );
        let view = cluster.view("dc1-n1").await;
        assert_eq!(view.get("dc2-n1"), Some(&false), "never counted up");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // Back with its own certificate: the stream delivers.
    cluster.kill("dc2-n1");
    admin_over_https(n2.admin_address, cluster.tls_ca.as_ref().unwrap());
    cluster.restart("dc2-n1").await;
    let started = Instant::now();
    while dc2_backlog(&cluster).await > 0.0 {
        assert!(started.elapsed() < Duration::from_secs(30), "not delivered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut n2c = cluster.client("dc2-n1").await;
    let got = get(&mut n2c, "s4", Consistency::One).await.expect("read");
    assert_eq!(values(&got), vec!["v"]);
}

/// dc1-n1's entries queued for datacenter dc2.
async fn dc2_backlog(cluster: &Cluster) -> f64 {
    let dest = "dest=\"dc:dc2\"";
    cluster
        .metric("dc1-n1", "geokv_hint_backlog_entries", dest)
        .await
}
