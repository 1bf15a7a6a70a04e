//! Tests of the cluster CA and the certificates it issues: chains verify as
//! a TLS peer verifies them, identities parse back. Must not: open sockets.

use super::*;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, UnixTime};

fn der(pem: &str) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(pem.as_bytes()).expect("PEM certificate")
}

/// Chain verification exactly as a TLS client does it (server usage).
fn verifies(leaf: &Pair, ca: &Pair) -> bool {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(der(&ca.cert_pem)).unwrap();
    let leaf = der(&leaf.cert_pem);
    let parsed = rustls::server::ParsedCertificate::try_from(&leaf).unwrap();
    let algs = rustls::crypto::ring::default_provider().signature_verification_algorithms;
    rustls::client::verify_server_cert_signed_by_trust_anchor(
        &parsed,
        &roots,
        &[],
        UnixTime::now(),
        algs.all,
    )
    .is_ok()
}

#[test]
fn a_node_certificate_verifies_against_its_ca_only() {
    let ca = new_ca("test").unwrap();
    let other = new_ca("test").unwrap();
    let node = issue(&ca, &Identity::Node("dc1-n1".into()), &[], &[]).unwrap();
    assert!(verifies(&node, &ca));
    assert!(!verifies(&node, &other), "a certificate from another CA");
    let forged = issue(&other, &Identity::Node("dc1-n1".into()), &[], &[]).unwrap();
    assert!(!verifies(&forged, &ca));
}

#[test]
fn identity_comes_from_the_uri_san() {
    let ca = new_ca("test").unwrap();
    let ip: IpAddr = "127.0.0.11".parse().unwrap();
    let node = issue(
        &ca,
        &Identity::Node("dc1-n1".into()),
        &["n1.example".into()],
        &[ip],
    )
    .unwrap();
    assert_eq!(
        identity_of(&der(&node.cert_pem)).unwrap(),
        Some(Identity::Node("dc1-n1".into()))
    );
    let client = issue(&ca, &Identity::Client("ops".into()), &[], &[]).unwrap();
    assert_eq!(
        identity_of(&der(&client.cert_pem)).unwrap(),
        Some(Identity::Client("ops".into()))
    );
    // The CA names no geokv identity.
    assert_eq!(identity_of(&der(&ca.cert_pem)).unwrap(), None);
    assert!(identity_of(b"not a certificate").is_err());
}

#[test]
fn names_that_would_change_the_uri_are_refused() {
    let ca = new_ca("test").unwrap();
    for bad in ["", "a/b", "a b", "n1?x", &"x".repeat(129)] {
        let err = issue(&ca, &Identity::Node(bad.to_string()), &[], &[]);
        assert!(matches!(err, Err(CertError::BadName(_))), "{bad:?}");
    }
}

#[test]
fn directories_hold_a_ca_and_issued_pairs_and_never_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    init_dir(dir.path(), "test").unwrap();
    assert!(matches!(
        init_dir(dir.path(), "test"),
        Err(CertError::Exists(_))
    ));
    let (cert, key) = issue_in_dir(dir.path(), &Identity::Node("dc2-n3".into()), &[], &[]).unwrap();
    assert_eq!(cert, dir.path().join("node-dc2-n3.pem"));
    assert_eq!(key, dir.path().join("node-dc2-n3-key.pem"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "private keys are private");
    let ca = Pair {
        cert_pem: std::fs::read_to_string(ca_path(dir.path())).unwrap(),
        key_pem: String::new(),
    };
    let node = Pair {
        cert_pem: std::fs::read_to_string(&cert).unwrap(),
        key_pem: String::new(),
    };
    assert!(verifies(&node, &ca));
}

#[test]
fn ensure_dir_creates_what_is_missing_and_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let ip: IpAddr = "127.0.0.11".parse().unwrap();
    let nodes = vec![("n1".to_string(), ip)];
    let ca = ensure_dir(dir.path(), "dev", &nodes).unwrap();
    let first = std::fs::read_to_string(&ca).unwrap();
    let n1 = std::fs::read_to_string(dir.path().join("node-n1.pem")).unwrap();
    let more = vec![nodes[0].clone(), ("n2".to_string(), ip)];
    ensure_dir(dir.path(), "dev", &more).unwrap();
    assert_eq!(std::fs::read_to_string(&ca).unwrap(), first);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("node-n1.pem")).unwrap(),
        n1
    );
    let n2 = Pair {
        cert_pem: std::fs::read_to_string(dir.path().join("node-n2.pem")).unwrap(),
        key_pem: String::new(),
    };
    let ca = Pair {
        cert_pem: first,
        key_pem: String::new(),
    };
    assert!(verifies(&n2, &ca));
}
