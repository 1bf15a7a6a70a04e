//! Client certificates with real node processes (issue 12 §2): on a TLS
//! cluster with `--auth`, a client presenting a certificate of the cluster
//! CA that names `geokv://client/NAME` is role NAME, with exactly that
//! role's grants. Checked against an oracle (what a privileged client reads
//! back at ALL): the writer's certificate writes and reads its key back
//! (the raw gRPC client and the CLI's `--client-cert`); no credential is
//! UNAUTHENTICATED, a role without write is PERMISSION_DENIED naming the
//! keyspace and the permission, a certificate naming no role is
//! UNAUTHENTICATED, and a certificate of another CA is refused in the TLS
//! handshake (counted); none of them stored anything.

use crate::common::*;
use geokv::proto::v1::kv_client::KvClient;
use geokv::proto::v1::Consistency;
use geokv::security::certs::{init_dir, issue_in_dir, Identity};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

const WRITER: &str = "cert-writer";
const READER: &str = "cert-reader";

/// A client of node `id`'s client port over TLS (trusting the cluster CA)
/// presenting `pair` (certificate, key) if any, and no token.
fn client_with(cluster: &Cluster, id: &str, pair: Option<&(PathBuf, PathBuf)>) -> Kv {
    let ca = std::fs::read(cluster.tls_ca.as_ref().expect("a TLS cluster")).unwrap();
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca));
    if let Some((cert, key)) = pair {
        let (cert, key) = (std::fs::read(cert).unwrap(), std::fs::read(key).unwrap());
        tls = tls.identity(tonic::transport::Identity::from_pem(cert, key));
    }
    let channel = Endpoint::from_shared(cluster.client_url(id))
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .tls_config(tls)
        .unwrap()
        .connect_lazy();
    KvClient::with_interceptor(channel, Bearer::default())
}

/// `geokv auth <args> --endpoint <dc1-n1's admin port>` as the admin.
fn admin_cli(cluster: &Cluster, args: &[&str]) {
    let endpoint = cluster.node("dc1-n1").admin_address.to_string();
    let mut all = vec!["auth"];
    all.extend(args);
    all.extend(["--endpoint", endpoint.as_str()]);
    let (ok, text) = cluster.cli(&all);
    assert!(ok, "geokv {all:?}: {text}");
}

/// A client certificate for `name` signed by the CA in `dir`.
fn client_pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    issue_in_dir(dir, &Identity::Client(name.to_string()), &[], &[]).expect("a client pair")
}

/// The certificates a test presents: of the cluster CA for `cert-writer`,
/// `cert-reader` and `cert-nobody` (no such role), and of another CA for
/// `cert-writer`.
struct Pairs {
    writer: (PathBuf, PathBuf),
    reader: (PathBuf, PathBuf),
    nobody: (PathBuf, PathBuf),
    foreign_writer: (PathBuf, PathBuf),
}

/// Makes (on dc1-n1) the roles only a certificate can use: the writer
/// reads and writes `default`, the reader only reads it; issues [`Pairs`].
fn roles_and_certificates(cluster: &Cluster) -> Pairs {
    admin_cli(cluster, &["create-role", WRITER, "--cert-only"]);
    admin_cli(cluster, &["grant", WRITER, "default", "write"]);
    admin_cli(cluster, &["grant", WRITER, "default", "read"]);
    admin_cli(cluster, &["create-role", READER, "--cert-only"]);
    admin_cli(cluster, &["grant", READER, "default", "read"]);
    let certs = cluster.certs_dir().expect("a TLS cluster");
    let foreign = cluster.dir.path().join("foreign-client-ca");
    init_dir(&foreign, "another-cluster").unwrap();
    Pairs {
        writer: client_pair(&certs, WRITER),
        reader: client_pair(&certs, READER),
        nobody: client_pair(&certs, "cert-nobody"),
        foreign_writer: client_pair(&foreign, WRITER),
    }
}

/// A put of `key` on dc1-n1 presenting `pair`: its refusal.
async fn refused(cluster: &Cluster, pair: Option<&(PathBuf, PathBuf)>, key: &str) -> tonic::Status {
    let mut c = client_with(cluster, "dc1-n1", pair);
    let err = put(&mut c, key, "x", vec![], Consistency::All).await;
    err.expect_err(key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_is_its_role_and_nothing_more() {
    let cluster = Cluster::start(Spec::one_dc(2, 2)).await;
    let pairs = roles_and_certificates(&cluster);

    // The writer's certificate writes, and reads its write back. (Every
    // client asks dc1-n1, where the roles were made: no wait for them.)
    let mut w = client_with(&cluster, "dc1-n1", Some(&pairs.writer));
    put(&mut w, "by-writer", "v1", vec![], Consistency::All)
        .await
        .expect("the writer's certificate writes");
    let got = get(&mut w, "by-writer", Consistency::All).await;
    assert_eq!(values(&got.expect("and reads")), ["v1"]);

    // No certificate and no token: UNAUTHENTICATED.
    let err = refused(&cluster, None, "by-anonymous").await;
    assert_eq!(err.code(), tonic::Code::Unauthenticated, "{err:?}");

    // The reader's certificate reads, and may not write.
    let mut r = client_with(&cluster, "dc1-n1", Some(&pairs.reader));
    let got = get(&mut r, "by-writer", Consistency::All).await;
    assert_eq!(values(&got.expect("the reader reads")), ["v1"]);
    let err = refused(&cluster, Some(&pairs.reader), "by-reader").await;
    assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err:?}");
    let lacks = format!("role '{READER}' lacks write permission on keyspace 'default'");
    assert_eq!(err.message(), lacks);

    // A certificate of the cluster CA naming no role: UNAUTHENTICATED.
    let err = refused(&cluster, Some(&pairs.nobody), "by-nobody").await;
    assert_eq!(err.code(), tonic::Code::Unauthenticated, "{err:?}");

    // A certificate of another CA naming the writer: refused in the TLS
    // handshake (counted), before any authentication.
    let filter = "port=\"client\",reason=\"handshake\"";
    let before = (cluster.metric("dc1-n1", "geokv_tls_refused_total", filter)).await;
    let err = refused(&cluster, Some(&pairs.foreign_writer), "by-foreign").await;
    eprintln!("a certificate of another CA: {err:?}");
    // The server refuses the certificate after the client's side of the
    // TLS 1.3 handshake, so the call ends with the connection (seen:
    // CANCELLED, "connection closed"), never an authentication status.
    let in_handshake = matches!(
        err.code(),
        tonic::Code::Cancelled | tonic::Code::Unavailable | tonic::Code::Unknown
    );
    assert!(in_handshake, "refused in the handshake: {err:?}");
    // The server counts the refusal after it drops the stream, so the
    // client may see the close first: poll (up to 15 s), never sleep once.
    let started = std::time::Instant::now();
    loop {
        let after = (cluster.metric("dc1-n1", "geokv_tls_refused_total", filter)).await;
        if after > before {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the refusal is counted ({before} -> {after})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    nothing_stored_but_the_writers(&cluster).await;
    the_cli_presents_the_writers_certificate(&cluster, &pairs.writer);
}

/// The oracle: a privileged client (the admin token) reads at ALL on the
/// other node: only the writer's key was stored.
async fn nothing_stored_but_the_writers(cluster: &Cluster) {
    let mut admin = cluster.client("dc1-n2").await;
    for key in ["by-anonymous", "by-reader", "by-nobody", "by-foreign"] {
        let got = get(&mut admin, key, Consistency::All).await;
        let got = got.expect("admin reads");
        assert!(got.siblings.is_empty(), "{key} was stored: {got:?}");
    }
    let got = get(&mut admin, "by-writer", Consistency::All).await;
    assert_eq!(values(&got.expect("admin reads")), ["v1"]);
}

/// `geokv get` with `--client-cert`/`--client-key` and no token reads the
/// writer's key.
fn the_cli_presents_the_writers_certificate(cluster: &Cluster, writer: &(PathBuf, PathBuf)) {
    let (cert, key) = (writer.0.to_str().unwrap(), writer.1.to_str().unwrap());
    let url = cluster.client_url("dc1-n1");
    let args = ["get", "by-writer", "--endpoint", &url];
    let args = [&args[..], &["--client-cert", cert, "--client-key", key]].concat();
    let out = (cluster.command(&args).env_remove("GEOKV_TOKEN"))
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && text.contains("v1"), "{text}");
}
