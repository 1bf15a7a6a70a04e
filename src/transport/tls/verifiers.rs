//! The verifiers of a node this one dials ([`NodeVerifier`]) and the trust
//! anchors it checks chains against ([`Anchors`]: the node's current CA,
//! following reloads, or a CA file read once). The dialling side's
//! peer-identity check: the chain verifies and names exactly the node meant.
//!
//! Must not: load material (`material.rs`) or verify connecting clients
//! (`material::ClientVerifier`).

use super::material::Store;
use crate::security::certs::{self, Identity};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::sync::Arc;

/// The trust anchors a [`NodeVerifier`] checks chains against.
#[derive(Debug, Clone)]
pub(crate) enum Anchors {
    /// The node's current CA (follows reloads).
    Live(Arc<Store>),
    /// A CA file read once (an operator's `--ca`).
    Fixed(Arc<RootCertStore>, Arc<CryptoProvider>),
}

impl Anchors {
    fn roots(&self) -> Arc<RootCertStore> {
        match self {
            Anchors::Live(s) => s.current().roots.clone(),
            Anchors::Fixed(r, _) => r.clone(),
        }
    }

    fn provider(&self) -> &Arc<CryptoProvider> {
        match self {
            Anchors::Live(s) => s.provider(),
            Anchors::Fixed(_, p) => p,
        }
    }
}

/// Verifies the node we dial: its certificate chains to the CA and names
/// exactly the node we meant to reach, or — `expect: None`, a seed or an
/// admin port dialled by address — some node of the cluster (never a host
/// name: the identity is the node id).
#[derive(Debug)]
pub(crate) struct NodeVerifier {
    pub anchors: Anchors,
    pub expect: Option<String>,
}

impl ServerCertVerifier for NodeVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let parsed = rustls::server::ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &parsed,
            &self.anchors.roots(),
            intermediates,
            now,
            self.anchors
                .provider()
                .signature_verification_algorithms
                .all,
        )?;
        match (certs::identity_of(end_entity), &self.expect) {
            (Ok(Some(Identity::Node(id))), Some(want)) if &id == want => {
                Ok(ServerCertVerified::assertion())
            }
            (Ok(Some(Identity::Node(_))), None) => Ok(ServerCertVerified::assertion()),
            (found, want) => Err(rustls::Error::General(format!(
                "the peer's certificate names {found:?}, expected {}",
                want.as_deref()
                    .map_or("a node of the cluster".to_string(), |w| format!("node {w}"))
            ))),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.anchors.provider().signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.anchors.provider().signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.anchors
            .provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}
