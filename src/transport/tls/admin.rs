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
//!   client certificate.
//!
//! Owns: the client configurations. Must not: speak HTTP (`transport::admin_client`).

use super::material::{read_roots, Anchors, NodeVerifier};
use super::{provider, Port, Tls, TlsError};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;
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
    let provider = provider();
    let anchors = Anchors::Fixed(Arc::new(read_roots(ca)?), provider.clone());
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
