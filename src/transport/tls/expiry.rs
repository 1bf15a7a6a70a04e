//! When a node's loaded certificates expire, as the gauge
//! [`EXPIRY_METRIC`]`{kind}` (the not-after, in Unix seconds), set on every
//! load that puts material in use: `node` (the soonest of the chain the
//! node presents, its own certificate and any intermediates: when peers
//! stop accepting it) and `ca` (the soonest of the CA file's certificates,
//! which verify nodes and client certificates alike). Both kinds are set
//! on every load, so no series outlives the certificate it described.
//! Leaves issued together expire
//! together and every handshake then fails, so `deploy/prometheus/alerts.yml`
//! warns 14 days ahead, and once one expired pages for `node` (cut off)
//! but only warns for `ca` (often an old CA a rotation left in `ca.pem`).
//!
//! Owns: reading not-after dates and the gauge. Must not: load or verify
//! material (`material.rs`).

use super::material::{file_err, TlsError, TlsFiles};
use crate::security::certs::CertError;
use rustls::pki_types::CertificateDer;

/// The not-after of each loaded certificate kind, Unix seconds.
pub const EXPIRY_METRIC: &str = "geokv_tls_cert_expiry_timestamp_seconds";

/// When one loaded version of the material expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expiry {
    /// The soonest of the presented chain (leaf and intermediates).
    pub node: i64,
    pub ca: i64,
}

/// The not-after of a DER certificate, Unix seconds.
pub fn not_after(der: &[u8]) -> Result<i64, CertError> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|e| CertError::Parse(e.to_string()))?;
    Ok(cert.validity().not_after.timestamp())
}

/// The soonest not-after of `certs` (none for none).
fn soonest(certs: &[CertificateDer<'_>]) -> Result<Option<i64>, CertError> {
    let mut all = Vec::with_capacity(certs.len());
    for c in certs {
        all.push(not_after(c)?);
    }
    Ok(all.into_iter().min())
}

impl Expiry {
    /// Of the CA certificates `cas` (from `files.ca`, not empty) and the
    /// node's `chain` (from `files.cert`, leaf first, not empty).
    pub(super) fn of(
        files: &TlsFiles,
        cas: &[CertificateDer<'_>],
        chain: &[CertificateDer<'_>],
    ) -> Result<Expiry, TlsError> {
        let node = soonest(chain).map_err(|e| file_err(&files.cert, e))?;
        let ca = soonest(cas).map_err(|e| file_err(&files.ca, e))?;
        Ok(Expiry {
            node: node.ok_or_else(|| file_err(&files.cert, "no certificate in the file"))?,
            ca: ca.ok_or_else(|| file_err(&files.ca, "no CA certificate in the file"))?,
        })
    }

    /// Sets the gauge, both kinds.
    pub(super) fn publish(&self) {
        for (kind, at) in [("node", self.node), ("ca", self.ca)] {
            metrics::gauge!(EXPIRY_METRIC, "kind" => kind).set(at as f64);
        }
    }
}
