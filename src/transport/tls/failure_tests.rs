//! A refused TLS handshake between real sockets reaches the caller of an
//! internode call named for what it is (whose certificate, refused by whom,
//! why) and as "nothing applied", in both directions; and the formatter on
//! rustls' own errors. Must not: start node processes.

use super::failure::*;
use super::tests::{cluster_dir, files, store};
use crate::security::certs::{init_dir, issue_in_dir, Identity};

/// Node "me" of another cluster, whose CA has another name than
/// `cluster_dir`'s ("test"): its certificates have an unknown issuer there.
fn foreign_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    init_dir(dir.path(), "another-cluster").unwrap();
    issue_in_dir(dir.path(), &Identity::Node("me".into()), &[], &[]).unwrap();
    dir
}

/// A CA file in `foreign` trusting its own CA and `cluster`'s: "me" holds a
/// certificate of its own CA (a load verifies it) and can verify the seed.
fn both_cas(cluster: &std::path::Path, foreign: &std::path::Path) -> std::path::PathBuf {
    let both = foreign.join("both-cas.pem");
    let read = |d: &std::path::Path| std::fs::read(d.join("ca.pem")).unwrap();
    std::fs::write(&both, [read(cluster), read(foreign)].concat()).unwrap();
    both
}
use super::*;
use crate::transport::faults::Faults;
use crate::transport::testing::{node, serve_tls, Recorder};
use crate::transport::{Peers, TransportError};

/// The transport of node "me" holding `tls`.
fn peers_with(tls: Tls) -> Peers {
    let me = node("me", SocketAddr::from(([127, 0, 0, 1], 1)));
    Peers::new(me, Arc::new(Faults::new(false)), &tls)
}

/// A seed of one cluster (CA, node "n1") serving; `me` dials it by address
/// as a joiner does and asks for its layout: the error.
async fn ask_seed(seed_dir: &std::path::Path, me: TlsFiles) -> TransportError {
    let seed = Tls(Some(store(seed_dir, "n1")));
    let at = serve_tls("n1", Recorder::default(), &seed).await;
    let me = Tls(Some(Arc::new(Store::load(me, "me", provider()).unwrap())));
    let seed_node = node(&seed_id(at.peer_address), at.peer_address);
    peers_with(me)
        .get_layout(&seed_node, Duration::from_secs(5))
        .await
        .expect_err("refused at the handshake")
}

/// The joiner trusts the cluster CA but holds a certificate of another: the
/// seed's refusal arrives as an alert after the joiner's side of the TLS 1.3
/// handshake is done (it used to surface as "Cancelled: operation was
/// canceled").
#[tokio::test]
async fn a_joiner_whose_certificate_the_seed_refuses_is_told_why() {
    let cluster = cluster_dir(&["n1"]);
    let foreign = foreign_dir();
    let me = TlsFiles {
        ca: both_cas(cluster.path(), foreign.path()),
        ..files(foreign.path(), "me")
    };
    let err = ask_seed(cluster.path(), me).await;
    let text = err.to_string();
    assert!(
        text.contains("TLS handshake failed: the seed refused this node's certificate: it is not signed by the seed's CA (alert: unknown CA)"),
        "{text}"
    );
    assert!(err.nothing_applied(), "{err:?}");
}

/// The same refusal on a bare channel: the dialling side waits for the
/// peer's first bytes before any call is written, so the refusal fails the
/// connect and the status itself names it, "not sent" (it used to be
/// hyper's bare "operation was canceled" on the call, which the real
/// joiner printed: the server's alert could be lost to the reset of the
/// request bytes it left unread).
#[tokio::test]
async fn a_refusal_fails_the_connect_so_the_status_itself_says_why() {
    let cluster = cluster_dir(&["n1"]);
    let foreign = foreign_dir();
    let seed = Tls(Some(store(cluster.path(), "n1")));
    let at = serve_tls("n1", Recorder::default(), &seed).await;
    let me = TlsFiles {
        ca: both_cas(cluster.path(), foreign.path()),
        ..files(foreign.path(), "me")
    };
    let me = Tls(Some(Arc::new(Store::load(me, "me", provider()).unwrap())));
    let id = seed_id(at.peer_address);
    let (channel, _noted) = me.endpoint_noted(&id, at.peer_address);
    let mut client = crate::proto::v1::internode::internode_client::InternodeClient::new(channel);
    let req = crate::proto::v1::internode::GetLayoutRequest {};
    let status = client.get_layout(req).await.expect_err("refused");
    let told = crate::transport::status_error(&id, status, 5000);
    assert!(matches!(&told, TransportError::NotSent { .. }), "{told:?}");
    assert!(told.to_string().contains("unknown CA"), "{told}");
}

/// The joiner holds the other cluster's CA: it refuses the seed's
/// certificate itself.
#[tokio::test]
async fn a_seed_of_another_ca_is_named_as_such() {
    let cluster = cluster_dir(&["n1"]);
    let foreign = foreign_dir();
    let err = ask_seed(cluster.path(), files(foreign.path(), "me")).await;
    let text = err.to_string();
    assert!(
        text.contains("TLS handshake failed: the seed's certificate is not signed by this node's CA (unknown issuer)"),
        "{text}"
    );
    assert!(err.nothing_applied(), "{err:?}");
}

/// Of one CA, the same calls get through to the handler (UNIMPLEMENTED:
/// the test peer serves no layout), and nothing is explained away.
#[tokio::test]
async fn a_seed_of_the_same_ca_answers_and_nothing_is_noted() {
    let cluster = cluster_dir(&["n1", "me"]);
    let err = ask_seed(cluster.path(), files(cluster.path(), "me")).await;
    assert!(
        matches!(
            &err,
            TransportError::Rpc { code, .. } if code.grpc() == tonic::Code::Unimplemented
        ),
        "{err:?}"
    );
}

/// An alert refusing this node's certificate, as tokio-rustls reports it.
fn refused_by_alert() -> std::io::Error {
    let alert = rustls::Error::AlertReceived(rustls::AlertDescription::UnknownCA);
    std::io::Error::new(std::io::ErrorKind::InvalidData, alert)
}

/// tonic's lazy channel reconnects as soon as a refused connection dies,
/// before the failed call reads the failure: the reconnect must not wipe
/// it (stop 26's real joiner said "operation was canceled": the connector
/// cleared the one failure it kept at every new connection).
#[test]
fn a_reconnect_after_the_refusal_keeps_the_calls_failure() {
    let log = LastFailure::default();
    let call = log.mark();
    let first = log.open();
    log.ended(first, Some(&refused_by_alert()));
    let again = log.open();
    let told = log.explain_since(call, "the seed").expect("told");
    assert!(told.contains("alert: unknown CA"), "{told}");
    // The reconnect refused too: still told; a later call on it as well.
    let later = log.mark();
    log.ended(again, Some(&refused_by_alert()));
    assert!(log.explain_since(call, "the seed").is_some());
    assert!(log.explain_since(later, "the seed").is_some());
}

/// A call that may have gone on a connection whose peer answered, or that
/// ended for another reason, is never told an older connection's refusal:
/// "not sent" would wrongly say "applied: no".
#[test]
fn an_older_connections_refusal_is_never_told_to_a_call_on_a_newer_one() {
    let log = LastFailure::default();
    let old = log.open();
    log.ended(old, Some(&refused_by_alert()));
    // The call begins with the refused connection gone: it goes on the next.
    let call = log.mark();
    let next = log.open();
    log.answered(next);
    log.ended(next, None);
    assert_eq!(log.explain_since(call, "the peer"), None, "answered");

    let log = LastFailure::default();
    let old = log.open();
    log.ended(old, Some(&refused_by_alert()));
    let call = log.mark();
    let next = log.open();
    log.ended(next, None);
    assert_eq!(
        log.explain_since(call, "the peer"),
        None,
        "reset, no TLS error"
    );

    // A call begun on a healthy connection that then died: nothing.
    let log = LastFailure::default();
    let live = log.open();
    log.answered(live);
    let call = log.mark();
    log.ended(live, Some(&refused_by_alert()));
    assert_eq!(log.explain_since(call, "the peer"), None, "it had answered");
}

/// A call whose connections the channel no longer remembers is told nothing.
#[test]
fn a_call_whose_connections_were_forgotten_is_told_nothing() {
    let log = LastFailure::default();
    let call = log.mark();
    for _ in 0..40 {
        let id = log.open();
        log.ended(id, Some(&refused_by_alert()));
    }
    assert_eq!(log.explain_since(call, "the peer"), None);
    assert!(
        log.explain_since(log.mark(), "the peer").is_none(),
        "no call since"
    );
}

/// Calls racing on one channel to a seed that refuses this node's
/// certificate, each on its own connection or the same: every one is told
/// why, however the reconnects interleave with reading the failure.
#[tokio::test]
async fn calls_racing_reconnects_are_each_told_why() {
    let cluster = cluster_dir(&["n1"]);
    let foreign = foreign_dir();
    let seed = Tls(Some(store(cluster.path(), "n1")));
    let at = serve_tls("n1", Recorder::default(), &seed).await;
    let me = TlsFiles {
        ca: both_cas(cluster.path(), foreign.path()),
        ..files(foreign.path(), "me")
    };
    let me = Tls(Some(Arc::new(Store::load(me, "me", provider()).unwrap())));
    let peers = peers_with(me);
    let seed_node = node(&seed_id(at.peer_address), at.peer_address);
    for _ in 0..3 {
        let ask = || peers.get_layout(&seed_node, Duration::from_secs(5));
        let (a, b, c) = tokio::join!(ask(), ask(), ask());
        for err in [a, b, c].map(|r| r.expect_err("refused")) {
            assert!(err.to_string().contains("unknown CA"), "{err}");
            assert!(err.nothing_applied(), "{err:?}");
        }
    }
}

/// A hinted stream to a peer that refuses this node's certificate says so
/// (it used to say "Cancelled: operation was canceled": the stream path did
/// not read the failure its connection noted).
#[tokio::test]
async fn a_hinted_stream_refused_at_the_handshake_says_why() {
    let cluster = cluster_dir(&["n1"]);
    let foreign = foreign_dir();
    let peer = Tls(Some(store(cluster.path(), "n1")));
    let at = serve_tls("n1", Recorder::default(), &peer).await;
    let me = TlsFiles {
        ca: both_cas(cluster.path(), foreign.path()),
        ..files(foreign.path(), "me")
    };
    let me = Tls(Some(Arc::new(Store::load(me, "me", provider()).unwrap())));
    let to = node("n1", at.peer_address);
    let opened = peers_with(me)
        .open_stream(to.idx, &to, Duration::from_secs(5), false)
        .await;
    let Err(err) = opened else {
        panic!("a stream opened to a peer that refuses this node's certificate");
    };
    let text = err.to_string();
    assert!(
        text.contains("TLS handshake failed: the peer refused this node's certificate: it is not signed by the peer's CA (alert: unknown CA)"),
        "{text}"
    );
    assert!(err.nothing_applied(), "{err:?}");
}

#[test]
fn the_rustls_error_is_found_inside_an_io_error_and_a_status() {
    let cause = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
    let io = std::io::Error::new(std::io::ErrorKind::InvalidData, cause.clone());
    // io::Error's own source() skips the error it wraps.
    assert!(std::error::Error::source(&io).is_none());
    assert_eq!(rustls_cause(&io), Some(&cause));
    let status = tonic::Status::from_error(Box::new(io));
    assert_eq!(rustls_cause(&status), Some(&cause));
    let plain = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
    assert_eq!(rustls_cause(&plain), None);
}

#[test]
fn each_certificate_verdict_says_whose_certificate_and_why() {
    use rustls::{AlertDescription as A, CertificateError as C, Error as E};
    let cases = [
        (
            E::InvalidCertificate(C::Expired),
            "the peer's certificate has expired",
        ),
        (
            E::InvalidCertificate(C::NotValidForName),
            "the peer's certificate does not name the node dialled",
        ),
        (
            E::NoCertificatesPresented,
            "the peer presented no certificate",
        ),
        (
            E::AlertReceived(A::CertificateExpired),
            "the peer refused this node's certificate: it has expired (alert: certificate expired)",
        ),
        (
            E::AlertReceived(A::CertificateRequired),
            "the peer requires a certificate and this node presented none",
        ),
        (
            E::AlertReceived(A::BadCertificate),
            "the peer refused this node's certificate (alert: BadCertificate)",
        ),
        (
            E::General("the peer's certificate names None, expected node n2".into()),
            "the peer's certificate names None, expected node n2",
        ),
    ];
    for (err, want) in cases {
        assert_eq!(explain(&err, "the peer"), want, "{err:?}");
    }
}
