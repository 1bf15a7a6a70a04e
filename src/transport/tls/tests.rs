//! Tests of TLS on the gRPC ports over real loopback sockets: mutual TLS,
//! the peer-identity checks, reloading. Must not: start node processes.

use super::*;
use crate::security::certs::{init_dir, issue_in_dir};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use tokio_stream::StreamExt;

pub(super) fn files(dir: &std::path::Path, id: &str) -> TlsFiles {
    TlsFiles {
        ca: dir.join("ca.pem"),
        cert: dir.join(format!("node-{id}.pem")),
        key: dir.join(format!("node-{id}-key.pem")),
    }
}

/// A certificate directory with a CA and nodes `ids`.
pub(super) fn cluster_dir(ids: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    init_dir(dir.path(), "test").unwrap();
    for id in ids {
        issue_in_dir(dir.path(), &Identity::Node(id.to_string()), &[], &[]).unwrap();
    }
    dir
}

pub(super) fn store(dir: &std::path::Path, id: &str) -> Arc<Store> {
    Arc::new(Store::load(files(dir, id), id, provider()).unwrap())
}

/// Serves one internode TLS port as `server` and dials it as `client`
/// expecting node `expect`: the connection the server accepted, if any.
async fn connect(server: &Arc<Store>, client: &Arc<Store>, expect: &str) -> Option<ConnInfo> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut incoming = Tls(Some(server.clone())).incoming(listener, Port::Internode);
    let connector = tokio_rustls::TlsConnector::from(Tls::client_config(client, expect));
    let dial = async {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut tls = connector
            .connect(ServerName::IpAddress(addr.ip().into()), tcp)
            .await
            .ok()?;
        // TLS 1.3: a refused client certificate shows on the first read.
        use tokio::io::AsyncWriteExt;
        tls.write_all(b"x").await.ok()?;
        Some(tls)
    };
    let (_dialled, accepted) = tokio::join!(
        dial,
        tokio::time::timeout(Duration::from_secs(2), incoming.next())
    );
    match accepted {
        Ok(Some(Ok(conn))) => Some(tonic::transport::server::Connected::connect_info(&conn)),
        _ => None,
    }
}

#[tokio::test]
async fn nodes_of_one_ca_connect_and_learn_each_others_identity() {
    let dir = cluster_dir(&["n1", "n2"]);
    let (n1, n2) = (store(dir.path(), "n1"), store(dir.path(), "n2"));
    let info = connect(&n1, &n2, "n1").await.expect("accepted");
    assert!(info.tls);
    assert_eq!(info.identity.as_deref(), Some(&Identity::Node("n2".into())));
}

#[tokio::test]
async fn a_node_of_another_ca_is_refused_both_ways() {
    let ours = cluster_dir(&["n1"]);
    let theirs = cluster_dir(&["n2"]);
    let (n1, intruder) = (store(ours.path(), "n1"), store(theirs.path(), "n2"));
    assert!(
        connect(&n1, &intruder, "n1").await.is_none(),
        "intruder dials us"
    );
    assert!(
        connect(&intruder, &n1, "n2").await.is_none(),
        "we dial the intruder"
    );
}

#[tokio::test]
async fn the_dialled_node_must_be_the_one_expected() {
    let dir = cluster_dir(&["n1", "n2"]);
    let (n1, n2) = (store(dir.path(), "n1"), store(dir.path(), "n2"));
    assert!(connect(&n1, &n2, "n3").await.is_none());
}

#[test]
fn a_certificate_must_name_the_node_that_loads_it() {
    let dir = cluster_dir(&["n1"]);
    let err = Store::load(files(dir.path(), "n1"), "n2", provider()).unwrap_err();
    assert!(matches!(err, TlsError::WrongIdentity { .. }), "{err}");
}

#[test]
fn a_certificate_no_peer_would_accept_does_not_load() {
    let (dir, other) = (cluster_dir(&["n1"]), cluster_dir(&[]));
    let of_other_ca = TlsFiles {
        ca: other.path().join("ca.pem"),
        ..files(dir.path(), "n1")
    };
    let err = Store::load(of_other_ca, "n1", provider()).unwrap_err();
    assert!(matches!(err, TlsError::OwnChain { .. }), "{err}");
    let expired = std::time::SystemTime::now() - Duration::from_secs(60);
    let pair = node_pair_until(dir.path(), "n1", expired);
    let f = files(dir.path(), "n1");
    std::fs::write(&f.cert, &pair.cert_pem).unwrap();
    std::fs::write(&f.key, &pair.key_pem).unwrap();
    let err = Store::load(f, "n1", provider()).unwrap_err();
    assert!(matches!(err, TlsError::OwnChain { .. }), "{err}");
}

/// review-integ34 L2: a node dials its peers as a TLS client, so a pair
/// valid for the server role only would load and then fail every outbound
/// handshake. Both roles are verified at load. Fails before: the
/// serverAuth-only pair loaded.
#[test]
fn a_certificate_for_one_role_only_does_not_load() {
    use rcgen::ExtendedKeyUsagePurpose::{ClientAuth, ServerAuth};
    let dir = cluster_dir(&["n1"]);
    let year = std::time::SystemTime::now() + Duration::from_secs(365 * 86_400);
    for usages in [vec![ServerAuth], vec![ClientAuth]] {
        let pair = node_pair_for(dir.path(), "n1", year, usages.clone());
        let f = files(dir.path(), "n1");
        std::fs::write(&f.cert, &pair.cert_pem).unwrap();
        std::fs::write(&f.key, &pair.key_pem).unwrap();
        let err = Store::load(f, "n1", provider()).unwrap_err();
        assert!(
            matches!(err, TlsError::OwnChain { .. }),
            "{usages:?}: {err}"
        );
    }
    let both = node_pair_for(dir.path(), "n1", year, vec![ServerAuth, ClientAuth]);
    let f = files(dir.path(), "n1");
    std::fs::write(&f.cert, &both.cert_pem).unwrap();
    std::fs::write(&f.key, &both.key_pem).unwrap();
    Store::load(f, "n1", provider()).expect("a pair for both roles loads");
}

fn leaf(dir: &std::path::Path, id: &str) -> CertificateDer<'static> {
    CertificateDer::from_pem_file(dir.join(format!("node-{id}.pem"))).unwrap()
}

#[test]
fn rotated_files_are_reloaded_and_broken_ones_keep_the_old_material() {
    let dir = cluster_dir(&["n1"]);
    let s = store(dir.path(), "n1");
    let before = s.current().key.cert[0].clone();
    assert!(!s.reload_if_changed().unwrap(), "nothing changed");
    // Rotate: a new pair for n1 from the same CA.
    let (cert, key) = crate::security::certs::pair_paths(dir.path(), "node-n1");
    std::fs::remove_file(&cert).unwrap();
    std::fs::remove_file(&key).unwrap();
    issue_in_dir(dir.path(), &Identity::Node("n1".into()), &[], &[]).unwrap();
    assert!(s.reload_if_changed().unwrap());
    let after = s.current().key.cert[0].clone();
    assert_ne!(before, after);
    assert_eq!(after, leaf(dir.path(), "n1"));
    // A half-written key: an error, and the rotated material stays.
    std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\n").unwrap();
    assert!(s.reload_if_changed().is_err());
    assert_eq!(s.current().key.cert[0], after);
}

fn request(from: &str, info: Option<ConnInfo>) -> Request<()> {
    let mut req = Request::new(());
    req.metadata_mut()
        .insert(crate::transport::FROM_HEADER, from.parse().unwrap());
    if let Some(i) = info {
        req.extensions_mut().insert(i);
    }
    req
}

fn tls_info(cert: CertificateDer<'static>) -> Option<ConnInfo> {
    Some(ConnInfo::tls(None, Some(&[cert])))
}

#[test]
fn the_guard_holds_callers_to_their_certificate() {
    let dir = cluster_dir(&["n1", "n2"]);
    let mut guard = Guard {
        port: Port::Internode,
        on: true,
    };
    let ok = guard
        .call(request("n1", tls_info(leaf(dir.path(), "n1"))))
        .unwrap();
    assert_eq!(
        ok.extensions().get::<VerifiedPeer>(),
        Some(&VerifiedPeer("n1".into()))
    );
    let spoof = guard
        .call(request("n2", tls_info(leaf(dir.path(), "n1"))))
        .unwrap_err();
    assert_eq!(spoof.code(), tonic::Code::PermissionDenied);
    assert!(
        spoof.message().contains("geokv://node/n1"),
        "{}",
        spoof.message()
    );
    let plain = guard.call(request("n1", None)).unwrap_err();
    assert_eq!(plain.code(), tonic::Code::FailedPrecondition);
    // A TLS connection without a certificate naming a node.
    let anonymous = guard
        .call(request("n1", Some(ConnInfo::tls(None, None))))
        .unwrap_err();
    assert_eq!(anonymous.code(), tonic::Code::PermissionDenied);
    assert!(anonymous.message().contains("no geokv node"));
}

#[test]
fn the_guard_trusts_the_identity_parsed_at_connect_time() {
    // The guard reads the identity the acceptor parsed once per connection
    // (`ConnInfo::tls`); it does not parse a certificate on every call.
    let mut guard = Guard {
        port: Port::Internode,
        on: true,
    };
    let info = ConnInfo {
        remote: None,
        tls: true,
        identity: Some(Arc::new(Identity::Node("n1".into()))),
    };
    for _ in 0..3 {
        let ok = guard.call(request("n1", Some(info.clone()))).unwrap();
        assert_eq!(
            ok.extensions().get::<VerifiedPeer>(),
            Some(&VerifiedPeer("n1".into()))
        );
    }
    let client = ConnInfo {
        identity: Some(Arc::new(Identity::Client("n1".into()))),
        ..info
    };
    let err = guard.call(request("n1", Some(client))).unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied);
}

#[test]
fn the_client_port_guard_wants_tls_only_and_insecure_lets_all_through() {
    let mut client = Guard {
        port: Port::Client,
        on: true,
    };
    let plain = ConnInfo {
        remote: None,
        tls: false,
        identity: None,
    };
    let err = client.call(request("", Some(plain.clone()))).unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    assert_eq!(err.message(), PLAINTEXT_REFUSAL);
    let tls = ConnInfo {
        tls: true,
        ..plain.clone()
    };
    assert!(client.call(request("", Some(tls))).is_ok());
    let mut off = Guard {
        port: Port::Internode,
        on: false,
    };
    assert!(off.call(request("anyone", Some(plain))).is_ok());
}

/// A pair for node `id` signed by the CA in `dir`, valid from two hours
/// before `not_after` or an hour ago, whichever is sooner, until
/// `not_after` (which may be past: an expired certificate).
pub(super) fn node_pair_until(
    dir: &std::path::Path,
    id: &str,
    not_after: std::time::SystemTime,
) -> crate::security::certs::Pair {
    use rcgen::ExtendedKeyUsagePurpose::{ClientAuth, ServerAuth};
    node_pair_for(dir, id, not_after, vec![ServerAuth, ClientAuth])
}

/// [`node_pair_until`] with the extended key usages `usages`.
fn node_pair_for(
    dir: &std::path::Path,
    id: &str,
    not_after: std::time::SystemTime,
    usages: Vec<rcgen::ExtendedKeyUsagePurpose>,
) -> crate::security::certs::Pair {
    use rcgen::{CertificateParams, Issuer, KeyPair, SanType};
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    let ca_key = KeyPair::from_pem(&read("ca-key.pem")).unwrap();
    let issuer = Issuer::from_ca_cert_pem(&read("ca.pem"), ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    let uri = Identity::Node(id.to_string()).to_string();
    params.subject_alt_names = vec![SanType::URI(uri.try_into().unwrap())];
    params.extended_key_usages = usages;
    params.use_authority_key_identifier_extension = true;
    let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    params.not_before = (not_after - Duration::from_secs(7200)).min(hour_ago).into();
    params.not_after = not_after.into();
    let cert = params.signed_by(&key, &issuer).unwrap();
    crate::security::certs::Pair {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}
