//! The credential a client call presents and who a connection's certificate
//! names, from real certificates of a test CA (parsed as the TLS acceptor
//! parses them), one test per rule of `api::auth`.
//!
//! Owns: these tests. Must not: judge tokens or roles (`security::auth` tests do).

use super::*;
use crate::security::certs::{init_dir, issue_in_dir, pair_paths};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use std::net::SocketAddr;
use tonic::metadata::MetadataValue;

/// A CA with node `n1` and client `app` certificates.
fn cluster() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    init_dir(dir.path(), "test").unwrap();
    for who in [Identity::Node("n1".into()), Identity::Client("app".into())] {
        issue_in_dir(dir.path(), &who, &[], &[]).unwrap();
    }
    dir
}

fn cert(dir: &tempfile::TempDir, stem: &str) -> CertificateDer<'static> {
    CertificateDer::from_pem_file(pair_paths(dir.path(), stem).0).unwrap()
}

/// A request on a TLS connection whose peer presented `leaf` (none: no
/// client certificate), with `authorization: <bearer>` when given.
fn request(leaf: Option<CertificateDer<'static>>, bearer: Option<&str>) -> Request<()> {
    let mut req = Request::new(());
    let chain = leaf.map(|c| vec![c]);
    let remote: SocketAddr = "10.1.2.3:4567".parse().unwrap();
    let info = ConnInfo::tls(Some(remote), chain.as_deref());
    req.extensions_mut().insert(info);
    if let Some(b) = bearer {
        let v = MetadataValue::try_from(b).unwrap();
        req.metadata_mut().insert(AUTHORIZATION, v);
    }
    req
}

#[test]
fn a_client_certificate_is_the_role_it_names() {
    let dir = cluster();
    let cred = credential(&request(Some(cert(&dir, "client-app")), None));
    assert!(
        matches!(&cred, Credential::Certificate(role) if role == "app"),
        "{cred:?}"
    );
}

#[test]
fn a_bearer_token_comes_first_even_beside_a_client_certificate() {
    let dir = cluster();
    let req = request(Some(cert(&dir, "client-app")), Some("Bearer ops:s3cret"));
    let Credential::Bearer(token) = credential(&req) else {
        panic!("expected the token")
    };
    assert_eq!(
        (token.role.as_str(), token.secret.as_str()),
        ("ops", "s3cret")
    );
}

#[test]
fn a_malformed_authorization_is_malformed_not_ignored() {
    let dir = cluster();
    // A certificate does not stand in for a broken header.
    for bad in [
        "Basic b3BzOnMzY3JldA==",
        "Bearer no-colon",
        "Bearer :secret",
        "ops:s3cret",
    ] {
        let cred = credential(&request(Some(cert(&dir, "client-app")), Some(bad)));
        assert!(matches!(cred, Credential::Malformed), "{bad}: {cred:?}");
    }
    // Not visible ASCII: unreadable as a string.
    let mut req = request(None, None);
    let v = MetadataValue::try_from(&b"Bearer ops:\xe9"[..]).unwrap();
    req.metadata_mut().insert(AUTHORIZATION, v);
    assert!(matches!(credential(&req), Credential::Malformed));
}

#[test]
fn no_header_and_no_client_certificate_is_no_credential() {
    let tls_without_cert = request(None, None);
    assert!(matches!(credential(&tls_without_cert), Credential::None));
    // A plaintext (insecure) port: no connection record at all.
    assert!(matches!(credential(&Request::new(())), Credential::None));
}

#[test]
fn a_node_certificate_is_no_client_credential() {
    let dir = cluster();
    let cred = credential(&request(Some(cert(&dir, "node-n1")), None));
    assert!(matches!(cred, Credential::None), "{cred:?}");
    // Nor is a certificate naming no geokv identity (the CA's own).
    let cred = credential(&request(Some(cert(&dir, "ca")), None));
    assert!(matches!(cred, Credential::None), "{cred:?}");
}

#[test]
fn only_a_node_certificate_makes_a_call_from_a_node() {
    let dir = cluster();
    assert!(from_node(&request(Some(cert(&dir, "node-n1")), None)));
    assert!(!from_node(&request(Some(cert(&dir, "client-app")), None)));
    assert!(!from_node(&request(Some(cert(&dir, "ca")), None)));
    assert!(!from_node(&request(None, Some("Bearer ops:s3cret"))));
    assert!(!from_node(&Request::new(())));
}

#[test]
fn the_remote_address_is_the_acceptors_record() {
    let ip = remote_ip(&request(None, None));
    assert_eq!(ip, Some("10.1.2.3".parse().unwrap()));
    assert_eq!(remote_ip(&Request::new(())), None);
}

#[test]
fn a_refusal_is_unauthenticated_unless_the_role_lacks_a_permission() {
    let who = tonic::Code::Unauthenticated;
    let throttled = AuthError::Throttled {
        addr: "10.1.2.3".parse().unwrap(),
        retry_after_secs: 5,
    };
    let unknown = AuthError::UnknownRole("app".into());
    let bad = AuthError::BadToken("ops".into());
    for e in [
        AuthError::Missing,
        AuthError::Malformed,
        bad,
        unknown,
        throttled,
    ] {
        assert_eq!(status(e).code(), who);
    }
    let denied = AuthError::Denied {
        role: "ops".into(),
        keyspace: "ks".into(),
        perm: crate::security::auth::Perm::Read,
    };
    let s = status(denied);
    assert_eq!(s.code(), tonic::Code::PermissionDenied);
    assert!(s.message().contains("ks"), "{}", s.message());
}

/// review-conn28 L1: a token that could not be verified ran no handler, and
/// the client SDK must say so: without `geokv-applied: no` it took the
/// UNAVAILABLE for a broken connection ("may have been applied").
#[test]
fn an_unverified_token_is_answered_not_applied() {
    let err = geokv_client::ClientError::from(status(AuthError::Unverified));
    assert_eq!(err.code(), tonic::Code::Unavailable);
    assert!(!err.may_have_been_applied(), "{err:?}");
    assert!(err.is_retriable(), "{err:?}");
}
