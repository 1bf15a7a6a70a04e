//! HTTPS on the admin port: its clients' TLS settings. The server side is
//! [`Tls::incoming`] with [`Port::Admin`] (HTTP/1.1 over the node's
//! certificate, a client certificate verified when presented, a plaintext
//! request answered `400` saying the port needs HTTPS); the material is the
//! node's, so a rotated certificate serves the admin port too.
//!
//! Two kinds of client dial it:
//! - a node ([`Tls::admin_connector`]): presents its own certificate and
//!   requires the node it asks (e.g. a removal's finisher polling a
//!   gainer's `/movement`);
//! - an operator ([`operator_connector`], the CLI's `--ca`): trusts the
//!   cluster CA file and accepts any node certificate it issued (the
//!   operator names a node by address, not by id), optionally presenting a
//!   client certificate; without `--ca` ([`system_roots_connector`]) the
//!   system's root certificates take the CA file's place, read once per
//!   process (`rustls-native-certs`, as the SDK and the gRPC commands do).
//!
//! Owns: the client configurations. Must not: speak HTTP (`transport::admin_client`).

use super::roots::read_roots;
use super::verifiers::{Anchors, NodeVerifier};
use super::{provider, Port, Tls, TlsError};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::RootCertStore;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use tokio_rustls::TlsConnector;

impl Tls {
    /// How this node dials node `node`'s admin port: `None` without TLS.
    pub fn admin_connector(&self, node: &str) -> Option<TlsConnector> {
        let store = self.0.as_ref()?;
        Some(TlsConnector::from(Tls::dial_config(
            Anchors::Live(store.clone()),
            Some(node.to_string()),
            Some(store),
            Port::Admin,
        )))
    }
}

/// How an operator dials admin ports: trusts the CA certificates in `ca`
/// and, when given, presents the client certificate `identity` (cert, key).
pub fn operator_connector(
    ca: &Path,
    identity: Option<(&Path, &Path)>,
) -> Result<TlsConnector, TlsError> {
    operator_config(Arc::new(read_roots(ca)?), identity)
}

/// [`operator_connector`] trusting the system's root certificates (the OS
/// store, or the PEM files `SSL_CERT_FILE` / `SSL_CERT_DIR` name) instead
/// of a CA file: the node's certificate must still name a node.
pub fn system_roots_connector(identity: Option<(&Path, &Path)>) -> Result<TlsConnector, TlsError> {
    operator_config(system_roots()?, identity)
}

/// The system's root certificates, loaded on first use and shared by every
/// dial of the process.
fn system_roots() -> Result<Arc<RootCertStore>, TlsError> {
    static ROOTS: OnceLock<Result<Arc<RootCertStore>, String>> = OnceLock::new();
    let loaded = ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(found.certs);
        if roots.is_empty() {
            let why = found.errors.first().map(|e| format!(" ({e})"));
            return Err(why.unwrap_or_default());
        }
        Ok(Arc::new(roots))
    });
    loaded.clone().map_err(TlsError::NoSystemRoots)
}

fn operator_config(
    roots: Arc<RootCertStore>,
    identity: Option<(&Path, &Path)>,
) -> Result<TlsConnector, TlsError> {
    let provider = provider();
    let anchors = Anchors::Fixed(roots, provider.clone());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(NodeVerifier {
            anchors,
            expect: None,
        }));
    let mut cfg = match identity {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let err = |p: &Path, e: String| TlsError::File {
                path: p.to_path_buf(),
                message: e,
            };
            let chain = CertificateDer::pem_file_iter(cert)
                .map_err(|e| err(cert, e.to_string()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| err(cert, e.to_string()))?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| err(key, e.to_string()))?;
            builder.with_client_auth_cert(chain, key)?
        }
    };
    cfg.alpn_protocols = vec![super::alpn(Port::Admin)];
    Ok(TlsConnector::from(Arc::new(cfg)))
}
