//! The TLS material of one node (CA roots, certificate chain, private key),
//! loaded from PEM files and swapped in place when the files change, and the
//! rustls resolvers and verifiers that always read the current version, so a
//! rotated certificate or CA takes effect for new connections without a
//! restart.
//!
//! Owns: loading, reloading, checking its own chain (with the dialling
//! side's verifier, `verifiers.rs`), verifying connecting clients. Must
//! not: accept sockets or judge requests.

use super::expiry::Expiry;
use super::roots::ca_certs;
use super::verifiers::{Anchors, NodeVerifier};
use crate::security::certs::{self, Identity};
use parking_lot::RwLock;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

/// Where a node's TLS material lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The cluster CA certificate(s), PEM.
    pub ca: PathBuf,
    /// This node's certificate chain, PEM.
    pub cert: PathBuf,
    /// This node's private key, PEM.
    pub key: PathBuf,
}

/// Why TLS material could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// No `--ca` and no usable root certificate on the system.
    #[error("no system root certificate found{0}: give the cluster CA (--ca or GEOKV_CA)")]
    NoSystemRoots(String),
    #[error("client verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    #[error("{path}: the certificate names {found:?}, not this node ({expected})")]
    WrongIdentity {
        path: PathBuf,
        expected: String,
        found: Option<Identity>,
    },
    /// The node's own certificate does not verify against the CA file now
    /// (not yet valid, expired, or of another CA): peers would refuse it.
    #[error("{path}: this node's certificate does not verify against the CA file: {source}")]
    OwnChain {
        path: PathBuf,
        source: rustls::Error,
    },
}

/// One loaded version of the files.
pub(super) struct Material {
    pub key: Arc<CertifiedKey>,
    pub roots: Arc<RootCertStore>,
    /// Verifies client certificates: required (internode) or optional (client port).
    pub required: Arc<dyn ClientCertVerifier>,
    pub optional: Arc<dyn ClientCertVerifier>,
    /// When its certificates expire (`geokv_tls_cert_expiry_timestamp_seconds`).
    pub expiry: Expiry,
}

/// The files' modification times and sizes, to notice a change.
type Stamp = Vec<Option<(SystemTime, u64)>>;

/// The current material of a node and how to reload it.
pub struct Store {
    files: TlsFiles,
    node_id: String,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<Material>>,
    stamp: parking_lot::Mutex<Stamp>,
    /// Bumped on every reload that put new material in use (`recheck.rs`
    /// re-verifies open connections then).
    reloads: tokio::sync::watch::Sender<u64>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("files", &self.files).finish()
    }
}

pub(super) fn file_err(path: &std::path::Path, message: impl ToString) -> TlsError {
    TlsError::File {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

fn stamp(files: &TlsFiles) -> Stamp {
    [&files.ca, &files.cert, &files.key]
        .iter()
        .map(|p| {
            let m = std::fs::metadata(p).ok()?;
            Some((m.modified().ok()?, m.len()))
        })
        .collect()
}

fn load(
    files: &TlsFiles,
    node_id: &str,
    provider: &Arc<CryptoProvider>,
) -> Result<Material, TlsError> {
    let read = |p: &PathBuf| std::fs::read(p).map_err(|e| file_err(p, e));
    let (cas, roots) = ca_certs(&files.ca)?;
    let chain = CertificateDer::pem_slice_iter(&read(&files.cert)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_err(&files.cert, e))?;
    let (leaf, intermediates) = chain
        .split_first()
        .ok_or_else(|| file_err(&files.cert, "no certificate in the file"))?;
    let found = certs::identity_of(leaf).map_err(|e| file_err(&files.cert, e))?;
    if found != Some(Identity::Node(node_id.to_string())) {
        return Err(TlsError::WrongIdentity {
            path: files.cert.clone(),
            expected: node_id.to_string(),
            found,
        });
    }
    let expiry = Expiry::of(files, &cas, &chain)?;
    let roots = Arc::new(roots);
    let required =
        WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone()).build()?;
    let own = (leaf, intermediates);
    verify_own(files, node_id, (&roots, &required), provider, own)?;
    let key =
        PrivateKeyDer::from_pem_slice(&read(&files.key)?).map_err(|e| file_err(&files.key, e))?;
    let key = Arc::new(CertifiedKey::from_der(chain, key, provider)?);
    let optional = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
        .allow_unauthenticated()
        .build()?;
    Ok(Material {
        key,
        roots,
        required,
        optional,
        expiry,
    })
}

/// Verifies the node's own chain as its peers will: against the roots of
/// the CA file being loaded, at the present time, naming this node, in
/// both roles (it serves its peers and dials them: review-integ34 L2). A
/// pair that parses but that no peer would accept is refused at start and
/// at a reload (the material in use stays).
fn verify_own(
    files: &TlsFiles,
    node_id: &str,
    (roots, client_role): (&Arc<RootCertStore>, &Arc<dyn ClientCertVerifier>),
    provider: &Arc<CryptoProvider>,
    (leaf, intermediates): (&CertificateDer<'static>, &[CertificateDer<'static>]),
) -> Result<(), TlsError> {
    let verifier = NodeVerifier {
        anchors: Anchors::Fixed(roots.clone(), provider.clone()),
        expect: Some(node_id.to_string()),
    };
    let name = ServerName::try_from("node").expect("a valid name");
    let now = UnixTime::now();
    (verifier
        .verify_server_cert(leaf, intermediates, &name, &[], now)
        .map(drop))
    .and_then(|()| (client_role.verify_client_cert(leaf, intermediates, now)).map(drop))
    .map_err(|source| TlsError::OwnChain {
        path: files.cert.clone(),
        source,
    })
}

impl Store {
    /// Loads `files` for node `node_id`: its certificate must name it and
    /// verify against the CA file now.
    pub fn load(
        files: TlsFiles,
        node_id: &str,
        provider: Arc<CryptoProvider>,
    ) -> Result<Self, TlsError> {
        let before = stamp(&files);
        let material = load(&files, node_id, &provider)?;
        material.expiry.publish();
        Ok(Store {
            node_id: node_id.to_string(),
            provider,
            current: RwLock::new(Arc::new(material)),
            stamp: parking_lot::Mutex::new(before),
            reloads: tokio::sync::watch::Sender::new(0),
            files,
        })
    }

    pub(super) fn current(&self) -> Arc<Material> {
        self.current.read().clone()
    }

    pub(super) fn provider(&self) -> &Arc<CryptoProvider> {
        &self.provider
    }

    /// Changes after each reload that put new material in use.
    pub(super) fn reloads(&self) -> tokio::sync::watch::Receiver<u64> {
        self.reloads.subscribe()
    }

    /// Reloads the files if their stamps (time, size) changed since the last
    /// load. `Ok(true)` when new material is in use; on an error the old stays.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        if *self.stamp.lock() == stamp(&self.files) {
            return Ok(false);
        }
        self.reload().map(|()| true)
    }

    /// Loads the files whatever their stamps say (SIGHUP: a pair copied
    /// with its modification time kept and of the same size looks
    /// unchanged) and puts them in use; every open connection re-verifies
    /// its peer then. On an error the old material stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let now = stamp(&self.files);
        let material = load(&self.files, &self.node_id, &self.provider)?;
        material.expiry.publish();
        *self.current.write() = Arc::new(material);
        *self.stamp.lock() = now;
        self.reloads.send_modify(|n| *n += 1);
        Ok(())
    }
}

/// Presents the current certificate, as a server and as a dialling client.
#[derive(Debug)]
pub(super) struct KeyResolver(pub Arc<Store>);

impl rustls::server::ResolvesServerCert for KeyResolver {
    fn resolve(&self, _: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.current().key.clone())
    }
}

impl rustls::client::ResolvesClientCert for KeyResolver {
    fn resolve(&self, _: &[&[u8]], _: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.current().key.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// Verifies a connecting peer's certificate against the current CA.
#[derive(Debug)]
pub(super) struct ClientVerifier {
    pub store: Arc<Store>,
    pub required: bool,
}

impl ClientVerifier {
    fn inner(&self) -> Arc<dyn ClientCertVerifier> {
        let m = self.store.current();
        if self.required {
            m.required.clone()
        } else {
            m.optional.clone()
        }
    }
}

impl ClientCertVerifier for ClientVerifier {
    fn client_auth_mandatory(&self) -> bool {
        self.required
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // Hints are optional; the current CA's subjects cannot be lent out of the lock.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.inner()
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner().supported_verify_schemes()
    }
}
