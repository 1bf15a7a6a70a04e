//! HTTPS on the admin port with real node processes (issue 12): on a TLS
//! cluster the admin port serves HTTPS with the node's certificate, the CLI
//! reaches it with `--ca`, a plaintext HTTP request is answered 400 saying
//! why, and a new node joins through a seed over mutual TLS.

use crate::common::*;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_port_speaks_https_and_a_node_joins_over_tls() {
    let cluster = Cluster::start(Spec::one_dc(3, 3)).await;
    let n1 = cluster.node("dc1-n1").clone();
    let admin_addr = n1.admin_address.to_string();

    // Plaintext HTTP is answered 400 with the reason, and counted.
    let plain = geokv::transport::admin_client::call(&admin_addr, None, "GET", "/health", None, "")
        .await
        .expect("an answer");
    assert_eq!(plain.status, 400, "{plain:?}");
    assert!(plain.body.contains("requires HTTPS"), "{}", plain.body);
    let refused = cluster
        .metric("dc1-n1", "geokv_tls_refused_total", "port=\"admin\"")
        .await;
    assert!(refused >= 1.0, "plaintext admin request counted: {refused}");

    // The CLI: without --ca the same reason, with it the layout.
    let (ok, text) = cluster.cli_without_ca(&["ring", "--endpoint", &admin_addr]);
    assert!(!ok && text.contains("requires HTTPS"), "{text}");
    let ca = cluster.tls_ca.clone().unwrap();
    let ca_s = ca.to_str().unwrap();
    let (ok, text) = cluster.cli_without_ca(&["ring", "--endpoint", &admin_addr, "--ca", ca_s]);
    assert!(ok && text.contains("dc1-n3"), "{text}");
    // A CA that did not issue the node's certificate is refused.
    let other = cluster.dir.path().join("other-ca");
    geokv::security::certs::init_dir(&other, "another").unwrap();
    let other_ca = other.join("ca.pem");
    let (ok, text) = cluster.cli_without_ca(&[
        "ring",
        "--endpoint",
        &admin_addr,
        "--ca",
        other_ca.to_str().unwrap(),
    ]);
    assert!(!ok && text.contains("TLS with the admin port"), "{text}");

    // A fourth node joins through dc1-n1 over mutual TLS.
    let extra = ["--dc", "dc1", "--rack", "r4"];
    let ip = cluster.spare_ip(14);
    let mut n4 = cluster.spawn_new_node("dc1-n4", "dc1-n4", ip, n1.peer_address, &extra);
    let limit = Duration::from_secs(240);
    n4.wait_normal(n1.admin_address, limit, async || {}).await;
    // The joiner's own admin port serves HTTPS too.
    let health = admin(n4.admin_address(), "GET", "/health").await;
    assert_eq!(health.as_deref(), Ok("ok dc1-n4\n"), "{}", n4.log());
}

/// The admin CLI to an `https://` admin endpoint without `--ca` verifies
/// the node with the system's roots (here `SSL_CERT_FILE`), as the gRPC
/// commands do; roots that do not know the cluster CA are refused naming
/// the certificate; `--ca` overrides the system roots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_cli_trusts_the_system_roots_without_ca_and_ca_overrides_them() {
    let cluster = Cluster::start(Spec::one_dc(1, 1)).await;
    let endpoint = format!("https://{}", cluster.node("dc1-n1").admin_address);
    let cluster_ca = cluster.tls_ca.clone().unwrap();
    let foreign_ca = cluster.foreign_ca();
    let run = |roots: &std::path::Path, args: &[&str]| {
        cluster.cli_with_system_roots(roots, &[args, &["--endpoint", &endpoint]].concat())
    };

    let (ok, text) = run(&cluster_ca, &["ring"]);
    assert!(ok && text.contains("dc1-n1"), "{text}");

    let (ok, text) = run(&foreign_ca, &["ring"]);
    assert!(!ok, "{text}");
    assert!(text.to_lowercase().contains("certificate"), "{text}");

    let ca = cluster_ca.to_str().unwrap();
    let (ok, text) = run(&foreign_ca, &["ring", "--ca", ca]);
    assert!(ok && text.contains("dc1-n1"), "{text}");
}
