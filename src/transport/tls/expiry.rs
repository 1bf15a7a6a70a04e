//! When a node's loaded certificates expire, as the gauge
//! [`EXPIRY_METRIC`]`{kind}` (the not-after, in Unix seconds), set on every
//! load that puts material in use: `node` (the node's own certificate),
//! `ca` (the soonest of the CA file's certificates, which verify nodes and
//! client certificates alike) and `intermediate` (the soonest of the
//! chain's intermediates, when it has any). Leaves issued together expire
//! together and every handshake then fails, so `deploy/prometheus/alerts.yml`
//! warns 14 days ahead.
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
    pub node: i64,
    pub ca: i64,
    pub intermediate: Option<i64>,
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
        let (leaf, intermediates) = chain
            .split_first()
            .ok_or_else(|| file_err(&files.cert, "no certificate in the file"))?;
        let ca = soonest(cas).map_err(|e| file_err(&files.ca, e))?;
        Ok(Expiry {
            node: not_after(leaf).map_err(|e| file_err(&files.cert, e))?,
            ca: ca.ok_or_else(|| file_err(&files.ca, "no CA certificate in the file"))?,
            intermediate: soonest(intermediates).map_err(|e| file_err(&files.cert, e))?,
        })
    }

    /// Sets the gauge, one series per kind present.
    pub(super) fn publish(&self) {
        let kinds = [
            ("node", Some(self.node)),
            ("ca", Some(self.ca)),
            ("intermediate", self.intermediate),
        ];
        for (kind, at) in kinds {
            if let Some(at) = at {
                metrics::gauge!(EXPIRY_METRIC, "kind" => kind).set(at as f64);
            }
        }
    }
}
