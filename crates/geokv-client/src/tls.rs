//! TLS to the cluster's client port: the CA that signed the nodes'
//! certificates, an optional client certificate, and an optional name to
//! verify the nodes' certificates for (instead of the host in the endpoint).
//!
//! Owns the settings and turning them into tonic's `ClientTlsConfig`. Must
//! not open connections.
use std::path::Path;

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
    ca_pem: Vec<u8>,
    identity: Option<(Vec<u8>, Vec<u8>)>,
    domain: Option<String>,
}

fn read(path: &Path) -> Result<Vec<u8>, ClientError> {
    std::fs::read(path).map_err(|e| ClientError::invalid(format!("{}: {e}", path.display())))
}

impl TlsOptions {
    /// Trust the CA(s) in `ca_pem` (PEM) to sign the nodes' certificates.
    pub fn new(ca_pem: impl Into<Vec<u8>>) -> Self {
        TlsOptions {
            ca_pem: ca_pem.into(),
            identity: None,
            domain: None,
        }
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

    pub(crate) fn config(&self) -> ClientTlsConfig {
        let mut cfg = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&self.ca_pem));
        if let Some((cert, key)) = &self.identity {
            cfg = cfg.identity(Identity::from_pem(cert, key));
        }
        if let Some(d) = &self.domain {
            cfg = cfg.domain_name(d.clone());
        }
        cfg
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
