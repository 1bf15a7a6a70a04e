//! TLS session resumption against a CA rotation, over real sockets. A
//! resumed session brings back the peer certificate chain verified at its
//! first handshake, without verifying it again, so after a rotation an
//! identity of the retired CA would come back through a session it took
//! before. A node therefore makes a full handshake on every connection, as
//! a server and as a dialling client.
//!
//! Owns: these tests. Must not: share state between tests (each has its own
//! CAs and sockets).

use super::incoming::accept;
use super::material::KeyResolver;
use super::roots::read_roots;
use super::tests::{cluster_dir, files, store};
use super::verifiers::{Anchors, NodeVerifier};
use super::*;
use crate::security::certs::{issue_in_dir, pair_paths};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{HandshakeKind, SupportedProtocolVersion};
use std::path::Path;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tokio_rustls::TlsConnector;
use tokio_stream::StreamExt;

/// What the server saw of each connection it accepted.
type Seen = UnboundedReceiver<ConnInfo>;

/// Serves the connections `incoming` accepts on a fresh port: each is
/// reported, answered `ok` and kept open.
async fn serve(incoming: impl FnOnce(TcpListener) -> Incoming) -> (SocketAddr, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut incoming = incoming(listener);
    let (tx, rx) = unbounded_channel();
    tokio::spawn(async move {
        let mut open = Vec::new();
        while let Some(Ok(mut conn)) = incoming.next().await {
            let _ = tx.send(tonic::transport::server::Connected::connect_info(&conn));
            let _ = conn.write_all(b"ok").await;
            let _ = conn.flush().await;
            open.push(conn);
        }
    });
    (addr, rx)
}

/// Dials `addr` and reads the server's `ok` (TLS 1.3: a refused client
/// certificate shows on the first read): how the handshake went.
async fn dial(connector: &TlsConnector, addr: SocketAddr) -> std::io::Result<HandshakeKind> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let server = ServerName::IpAddress(addr.ip().into());
    let mut tls = connector.connect(server, tcp).await?;
    let mut ok = [0u8; 2];
    tls.read_exact(&mut ok).await?;
    assert_eq!(&ok, b"ok");
    Ok(tls
        .get_ref()
        .1
        .handshake_kind()
        .expect("the handshake is done"))
}

/// A client presenting `who`'s certificate of `dir`, verifying node n1
/// against `anchors`, and offering to resume, as any TLS client may (an
/// older node, another implementation): the server must not count on its
/// clients to make a full handshake.
fn resuming_client(
    dir: &Path,
    who: &Identity,
    anchors: Anchors,
    version: &'static SupportedProtocolVersion,
) -> TlsConnector {
    let (cert, key) = pair_paths(dir, &who.file_stem());
    let chain = CertificateDer::pem_file_iter(cert)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    let verifier = NodeVerifier {
        anchors,
        expect: Some("n1".into()),
    };
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[version])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_auth_cert(chain, key)
        .unwrap();
    cfg.alpn_protocols = vec![alpn(Port::Internode)];
    cfg.resumption = rustls::client::Resumption::in_memory_sessions(16);
    TlsConnector::from(Arc::new(cfg))
}

/// Rotates node `id`'s files in `dir` to the CA of `next` (its new
/// certificate from it; the old CA no longer trusted) and reloads `server`.
fn rotate(dir: &Path, next: &Path, id: &str, server: &Store) {
    let (new, old) = (files(next, id), files(dir, id));
    for (from, to) in [(new.ca, old.ca), (new.cert, old.cert), (new.key, old.key)] {
        std::fs::copy(from, to).unwrap();
    }
    assert!(
        server.reload_if_changed().unwrap(),
        "the rotated files load"
    );
}

/// `who` (a certificate of CA A) connects to node n1's `port` and takes a
/// session; n1 rotates to CA B; `who` reconnects offering that session.
async fn a_retired_ca_cannot_come_back_by_resuming(
    port: Port,
    who: Identity,
    version: &'static SupportedProtocolVersion,
) {
    let (ours, next) = (cluster_dir(&["n1"]), cluster_dir(&["n1"]));
    issue_in_dir(ours.path(), &who, &[], &[]).unwrap();
    let server = store(ours.path(), "n1");
    let tls = Tls(Some(server.clone()));
    let (addr, mut seen) = serve(|listener| tls.incoming(listener, port)).await;
    // Mid-rollout the client trusts both CAs, so only the server's
    // verification of the client can refuse it.
    let bundle = ours.path().join("both-cas.pem");
    let both = [ours.path(), next.path()].map(|d| std::fs::read(d.join("ca.pem")).unwrap());
    std::fs::write(&bundle, both.concat()).unwrap();
    let anchors = Anchors::Fixed(Arc::new(read_roots(&bundle).unwrap()), provider());
    let client = resuming_client(ours.path(), &who, anchors.clone(), version);
    assert_eq!(dial(&client, addr).await.unwrap(), HandshakeKind::Full);
    let first = seen.recv().await.unwrap();
    assert_eq!(first.identity.as_deref(), Some(&who));

    rotate(ours.path(), next.path(), "n1", &server);
    let fresh = resuming_client(ours.path(), &who, anchors, version);
    let full = dial(&fresh, addr).await;
    assert!(full.is_err(), "a full handshake refuses CA A: {full:?}");
    let again = dial(&client, addr).await;
    assert!(
        again.is_err(),
        "{who} of the retired CA came back on a session of before the rotation: {again:?}"
    );
    assert!(
        seen.try_recv().is_err(),
        "nothing accepted after the rotation"
    );
}

#[tokio::test]
async fn a_node_of_a_retired_ca_cannot_resume_on_the_internode_port_tls13() {
    let who = Identity::Node("n2".into());
    a_retired_ca_cannot_come_back_by_resuming(Port::Internode, who, &rustls::version::TLS13).await;
}

#[tokio::test]
async fn a_node_of_a_retired_ca_cannot_resume_on_the_internode_port_tls12() {
    let who = Identity::Node("n2".into());
    a_retired_ca_cannot_come_back_by_resuming(Port::Internode, who, &rustls::version::TLS12).await;
}

#[tokio::test]
async fn a_client_certificate_of_a_retired_ca_cannot_resume_on_the_client_port() {
    let who = Identity::Client("app".into());
    a_retired_ca_cannot_come_back_by_resuming(Port::Client, who, &rustls::version::TLS13).await;
}

#[tokio::test]
async fn a_dialling_node_makes_a_full_handshake_even_where_the_server_would_resume() {
    // The peer: rustls' defaults (session cache, TLS 1.3 tickets), as an
    // older node or another server might run.
    let dir = cluster_dir(&["n1", "n2"]);
    let (n1, n2) = (store(dir.path(), "n1"), store(dir.path(), "n2"));
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(KeyResolver(n1)));
    cfg.alpn_protocols = vec![alpn(Port::Internode)];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let (addr, _seen) =
        serve(|l| accept(l, Some(acceptor), Port::Internode, None, Caps::default())).await;
    // How `Tls::endpoint` dials n1: one connector for all its reconnects.
    let node = TlsConnector::from(Tls::client_config(&n2, "n1"));
    for round in 0..2 {
        let kind = dial(&node, addr).await.unwrap();
        assert_eq!(kind, HandshakeKind::Full, "connection {round}");
    }
}
