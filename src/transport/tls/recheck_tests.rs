//! Open connections across a CA rotation, over real sockets: a rotation
//! stages the new CA beside the old one (both trusted), then drops the old
//! one; at that reload a connection whose peer holds a certificate of the
//! old CA is closed, on the serving side and on the dialling side, while a
//! peer of the new CA keeps its connection. With no reload at all, a
//! peer whose certificate expired loses its connection within
//! [`RECHECK_EVERY`], and a peer whose certificate still verifies keeps
//! it through those checks.
//!
//! Owns: these tests. Must not: share state between tests.

use super::recheck::{Rechecked, Side, RECHECK_EVERY};
use super::tests::{cluster_dir, files, node_pair_until, store};
use super::*;
use crate::security::certs::issue_in_dir;
use rustls::pki_types::CertificateDer;
use std::path::Path;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsConnector;
use tokio_stream::StreamExt;

/// Upper bound for the close to show (it follows the reload at once).
const CLOSE_WITHIN: Duration = Duration::from_secs(5);

/// A directory for node `id`: its certificate and key from `cert_dir`, and
/// a `ca.pem` trusting the CAs of `ca_dirs`.
fn node_dir(id: &str, cert_dir: &Path, ca_dirs: &[&Path]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let (from, to) = (files(cert_dir, id), files(dir.path(), id));
    std::fs::copy(from.cert, to.cert).unwrap();
    std::fs::copy(from.key, to.key).unwrap();
    let cas: Vec<u8> = ca_dirs
        .iter()
        .flat_map(|d| std::fs::read(d.join("ca.pem")).unwrap())
        .collect();
    std::fs::write(to.ca, cas).unwrap();
    dir
}

/// Node `id`'s files in `dir` become its certificate of `next` and trust
/// only `next`'s CA; `store` reloads them.
fn finish_rotation(dir: &Path, next: &Path, id: &str, store: &Store) {
    let (new, old) = (files(next, id), files(dir, id));
    for (from, to) in [(new.ca, old.ca), (new.cert, old.cert), (new.key, old.key)] {
        std::fs::copy(from, to).unwrap();
    }
    assert!(store.reload_if_changed().unwrap(), "the new files load");
}

/// Serves `port` as `server`, echoing what each connection sends until it
/// ends.
async fn echo_server(server: &Arc<Store>, port: Port) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut incoming = Tls(Some(server.clone())).incoming(listener, port);
    tokio::spawn(async move {
        while let Some(Ok(conn)) = incoming.next().await {
            tokio::spawn(async move {
                let (mut r, mut w) = tokio::io::split(conn);
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

/// Dials node `expect` at `addr` as `client` (a node).
async fn dial(
    client: &Arc<Store>,
    expect: &str,
    addr: SocketAddr,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let connector = TlsConnector::from(Tls::client_config(client, expect));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let server = ServerName::IpAddress(addr.ip().into());
    connector.connect(server, tcp).await.unwrap()
}

/// n1's end of an internode connection n2 opened with `chain`, watched as
/// an accepted one that requires a certificate, and n2's end.
fn accepted_from_n2(
    n1: &Arc<Store>,
    chain: &[CertificateDer<'_>],
) -> (Rechecked<tokio::io::DuplexStream>, tokio::io::DuplexStream) {
    let (ours, theirs) = tokio::io::duplex(1024);
    let side = Side::Accepted { required: true };
    let conn = Rechecked::watch(ours, n1, Some(chain), side, Port::Internode, "n2".into());
    (conn, theirs)
}

/// Sends `word` and reads it back.
async fn echoes(s: &mut (impl AsyncRead + AsyncWrite + Unpin), word: &[u8]) -> bool {
    if s.write_all(word).await.is_err() || s.flush().await.is_err() {
        return false;
    }
    let mut back = vec![0u8; word.len()];
    s.read_exact(&mut back).await.is_ok() && back == word
}

/// Whether the connection ends (EOF or an error) within [`CLOSE_WITHIN`].
async fn ends(s: &mut (impl AsyncRead + Unpin)) -> bool {
    let mut byte = [0u8; 1];
    matches!(
        tokio::time::timeout(CLOSE_WITHIN, s.read(&mut byte)).await,
        Ok(Ok(0) | Err(_))
    )
}

#[tokio::test]
async fn a_node_of_a_retired_ca_loses_its_open_connection_at_the_reload() {
    let (a, b) = (cluster_dir(&["n1", "n2"]), cluster_dir(&["n1", "n3"]));
    // Mid-rotation: n1 trusts both CAs and still presents its A certificate.
    let n1_dir = node_dir("n1", a.path(), &[a.path(), b.path()]);
    let n1 = store(n1_dir.path(), "n1");
    let addr = echo_server(&n1, Port::Internode).await;
    // n2 keeps a certificate of A; n3 already has one of B (and trusts A
    // too, to verify n1's current certificate).
    let n2 = store(a.path(), "n2");
    let n3_dir = node_dir("n3", b.path(), &[a.path(), b.path()]);
    let n3 = store(n3_dir.path(), "n3");
    let mut old = dial(&n2, "n1", addr).await;
    let mut new = dial(&n3, "n1", addr).await;
    assert!(echoes(&mut old, b"before").await);
    assert!(echoes(&mut new, b"before").await);

    // The rotation ends: n1 trusts B only.
    finish_rotation(n1_dir.path(), b.path(), "n1", &n1);
    assert!(ends(&mut old).await, "the A connection is closed");
    assert!(echoes(&mut new, b"after").await, "the B connection goes on");
}

#[tokio::test]
async fn a_dialled_node_of_a_retired_ca_loses_the_connection_at_the_reload() {
    let (a, b) = (cluster_dir(&["n1", "n2"]), cluster_dir(&["n1"]));
    // n2 serves with its A certificate and trusts both CAs.
    let n2_dir = node_dir("n2", a.path(), &[a.path(), b.path()]);
    let addr = echo_server(&store(n2_dir.path(), "n2"), Port::Internode).await;
    // n1 dials n2 as `Tls::endpoint` does, then retires A.
    let n1_dir = node_dir("n1", a.path(), &[a.path()]);
    let n1 = store(n1_dir.path(), "n1");
    let tls = dial(&n1, "n2", addr).await;
    let chain = tls.get_ref().1.peer_certificates().map(<[_]>::to_vec);
    let side = Side::Dialled {
        expect: Some("n2".into()),
    };
    let mut conn = Rechecked::watch(
        tls,
        &n1,
        chain.as_deref(),
        side,
        Port::Internode,
        "n2".into(),
    );
    assert!(echoes(&mut conn, b"before").await);

    finish_rotation(n1_dir.path(), b.path(), "n1", &n1);
    assert!(ends(&mut conn).await, "n2's A connection is closed");
}

#[tokio::test]
async fn a_reload_that_keeps_the_ca_keeps_the_connections() {
    let a = cluster_dir(&["n1", "n2"]);
    let n1_dir = node_dir("n1", a.path(), &[a.path()]);
    let n1 = store(n1_dir.path(), "n1");
    let addr = echo_server(&n1, Port::Internode).await;
    let mut conn = dial(&store(a.path(), "n2"), "n1", addr).await;
    assert!(echoes(&mut conn, b"before").await);
    // A renewed n1 certificate of the same CA.
    let renewed = tempfile::tempdir().unwrap();
    for f in ["ca.pem", "ca-key.pem"] {
        std::fs::copy(a.path().join(f), renewed.path().join(f)).unwrap();
    }
    let n1_id = Identity::Node("n1".into());
    issue_in_dir(renewed.path(), &n1_id, &["n1.example".into()], &[]).unwrap();
    let (new, old) = (files(renewed.path(), "n1"), files(n1_dir.path(), "n1"));
    std::fs::copy(new.cert, old.cert).unwrap();
    std::fs::copy(new.key, old.key).unwrap();
    let mut reloads = n1.reloads();
    assert!(n1.reload_if_changed().unwrap());
    reloads.changed().await.unwrap();
    // The watcher ran on that reload (it yields to it here first).
    tokio::task::yield_now().await;
    assert!(echoes(&mut conn, b"after").await, "still open");
}

/// n2's certificate expired while its connection to n1 stays open and no
/// file changes on n1: the connection is closed at the hourly check, not
/// before it.
#[tokio::test(start_paused = true)]
async fn a_peer_certificate_that_expires_loses_its_connection_within_the_hour() {
    use rustls::pki_types::pem::PemObject;
    let a = cluster_dir(&["n1"]);
    let n1 = store(a.path(), "n1");
    let expired = std::time::SystemTime::now() - Duration::from_secs(60);
    let pair = node_pair_until(a.path(), "n2", expired);
    let chain = [CertificateDer::from_pem_slice(pair.cert_pem.as_bytes()).unwrap()];
    let (mut conn, mut theirs) = accepted_from_n2(&n1, &chain);

    tokio::time::sleep(RECHECK_EVERY - Duration::from_secs(60)).await;
    conn.write_all(b"before")
        .await
        .expect("open until the check");
    let mut got = [0u8; 6];
    theirs.read_exact(&mut got).await.unwrap();
    tokio::time::sleep(Duration::from_secs(120)).await;
    let err = conn.write_all(b"after").await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionAborted, "{err}");
}

/// A peer whose certificate still verifies keeps its connection through
/// the hourly checks: they close only what no longer verifies, never every
/// connection at once.
#[tokio::test(start_paused = true)]
async fn a_healthy_connection_survives_the_hourly_checks() {
    use rustls::pki_types::pem::PemObject;
    let a = cluster_dir(&["n1", "n2"]);
    let n1 = store(a.path(), "n1");
    let chain = [CertificateDer::from_pem_file(files(a.path(), "n2").cert).unwrap()];
    let (mut conn, mut theirs) = accepted_from_n2(&n1, &chain);
    for hour in 1..=3 {
        tokio::time::sleep(RECHECK_EVERY + Duration::from_secs(60)).await;
        conn.write_all(b"hour")
            .await
            .unwrap_or_else(|e| panic!("closed at check {hour}: {e}"));
        let mut got = [0u8; 4];
        theirs.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hour");
    }
}
