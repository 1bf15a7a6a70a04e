//! TLS to the cluster's client port: what signs the nodes' certificates
//! (the cluster CA, or the system's root certificates), an optional client
//! certificate, and an optional name to verify the nodes' certificates for
//! (instead of the host in the endpoint).
//!
//! The system roots come from `rustls-native-certs` (the OS store, or the
//! `SSL_CERT_FILE` / `SSL_CERT_DIR` files), read and parsed once per process
//! and then verified in-process by webpki like a `--ca` file: no OS call per
//! handshake (what `rustls-platform-verifier` makes on macOS and Windows),
//! and every reconnect pays a full handshake (resumption is off server-side).
//!
//! Owns the settings and turning them into tonic's `ClientTlsConfig`. Must
//! not open connections.
use std::path::Path;
use std::sync::OnceLock;

use rustls_pki_types::TrustAnchor;
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

use crate::ClientError;

/// TLS settings for [`crate::ClientBuilder::tls`]. With them every endpoint
/// is dialled over TLS (an `http://` endpoint is upgraded to `https://`).
///
/// # Example
///
/// ```no_run
/// # async fn demo() -> Result<(), geokv_client::ClientError> {
/// use geokv_client::{Client, TlsOptions};
/// let client = Client::builder()
///     .endpoints(["https://127.0.0.11:7070"])
///     .tls(TlsOptions::from_ca_file("certs/ca.pem")?)
///     .build()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct TlsOptions {
    roots: Roots,
    identity: Option<(Vec<u8>, Vec<u8>)>,
    domain: Option<String>,
}

/// What the nodes' certificates are verified against.
#[derive(Debug, Clone)]
enum Roots {
    /// The cluster CA(s), PEM.
    Ca(Vec<u8>),
    /// The system's root certificates ([`system_anchors`]).
    System,
}

/// The system's root certificates, loaded and parsed on first use, then
/// shared by every dial of the process.
fn system_anchors() -> Result<&'static [TrustAnchor<'static>], ClientError> {
    static ANCHORS: OnceLock<Result<Vec<TrustAnchor<'static>>, String>> = OnceLock::new();
    ANCHORS
        .get_or_init(load_system_anchors)
        .as_deref()
        .map_err(|e| ClientError::invalid(e.clone()))
}

fn load_system_anchors() -> Result<Vec<TrustAnchor<'static>>, String> {
    let found = rustls_native_certs::load_native_certs();
    let anchors: Vec<_> = found
        .certs
        .iter()
        .filter_map(|c| webpki::anchor_from_trusted_cert(c).ok())
        .map(|a| a.to_owned())
        .collect();
    if anchors.is_empty() {
        let why = found.errors.first().map(|e| format!(" ({e})"));
        return Err(format!(
            "no system root certificate found{}: give the cluster CA (--ca, GEOKV_CA, TlsOptions::new)",
            why.unwrap_or_default()
        ));
    }
    Ok(anchors)
}

fn read(path: &Path) -> Result<Vec<u8>, ClientError> {
    std::fs::read(path).map_err(|e| ClientError::invalid(format!("{}: {e}", path.display())))
}

impl TlsOptions {
    /// Trust the CA(s) in `ca_pem` (PEM) to sign the nodes' certificates.
    pub fn new(ca_pem: impl Into<Vec<u8>>) -> Self {
        TlsOptions {
            roots: Roots::Ca(ca_pem.into()),
            identity: None,
            domain: None,
        }
    }

    /// Trust the system's root certificates (the OS store, or the PEM files
    /// `SSL_CERT_FILE` / `SSL_CERT_DIR` name) to sign the nodes'
    /// certificates: for nodes whose certificates a public or company CA
    /// issued. An `https://` endpoint given without [`crate::ClientBuilder::tls`]
    /// uses these. Loaded once per process.
    ///
    /// # Errors
    ///
    /// [`ClientError`] (invalid argument) when the system has no root
    /// certificate.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), geokv_client::ClientError> {
    /// use geokv_client::{Client, TlsOptions};
    /// let client = Client::builder()
    ///     .endpoints(["https://kv.example.com:7070"])
    ///     .tls(TlsOptions::system_roots()?)
    ///     .build()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn system_roots() -> Result<Self, ClientError> {
        system_anchors()?;
        Ok(TlsOptions {
            roots: Roots::System,
            identity: None,
            domain: None,
        })
    }

    /// [`TlsOptions::new`] with the CA read from a PEM file.
    pub fn from_ca_file(path: impl AsRef<Path>) -> Result<Self, ClientError> {
        Ok(Self::new(read(path.as_ref())?))
    }

    /// Present this client certificate and key (PEM).
    pub fn client_identity(
        mut self,
        cert_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> Self {
        self.identity = Some((cert_pem.into(), key_pem.into()));
        self
    }

    /// [`TlsOptions::client_identity`] read from PEM files.
    pub fn client_identity_files(
        self,
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<Self, ClientError> {
        let (c, k) = (read(cert.as_ref())?, read(key.as_ref())?);
        Ok(self.client_identity(c, k))
    }

    /// Verify every node's certificate for this DNS name instead of the
    /// endpoint's host.
    pub fn domain_name(mut self, name: impl Into<String>) -> Self {
        self.domain = Some(name.into());
        self
    }

    pub(crate) fn config(&self) -> Result<ClientTlsConfig, ClientError> {
        let mut cfg = match &self.roots {
            Roots::Ca(pem) => ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)),
            Roots::System => ClientTlsConfig::new().trust_anchors(system_anchors()?.to_vec()),
        };
        if let Some((cert, key)) = &self.identity {
            cfg = cfg.identity(Identity::from_pem(cert, key));
        }
        if let Some(d) = &self.domain {
            cfg = cfg.domain_name(d.clone());
        }
        Ok(cfg)
    }
}

/// The URL to dial: `https://` whenever TLS is configured.
pub(crate) fn scheme_for(url: &str, tls: bool) -> String {
    match (tls, url.strip_prefix("http://")) {
        (true, Some(rest)) => format!("https://{rest}"),
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_upgrades_plain_endpoints_only() {
        assert_eq!(scheme_for("http://a:1", true), "https://a:1");
        assert_eq!(scheme_for("https://a:1", true), "https://a:1");
        assert_eq!(scheme_for("http://a:1", false), "http://a:1");
    }
}
