//! The CA file of a node or an operator (`--ca`): its certificates read
//! from PEM into a rustls root store.
//!
//! Owns: reading and parsing the CA file. Must not: verify chains or hold
//! the material in use (`material.rs`).

use super::material::{file_err, TlsError};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::RootCertStore;

/// Reads the CA certificates of a PEM file into a root store.
pub(crate) fn read_roots(path: &std::path::Path) -> Result<RootCertStore, TlsError> {
    Ok(ca_certs(path)?.1)
}

/// The CA certificates of a PEM file (at least one), and a root store of them.
pub(super) fn ca_certs(
    path: &std::path::Path,
) -> Result<(Vec<CertificateDer<'static>>, RootCertStore), TlsError> {
    let pem = std::fs::read(path).map_err(|e| file_err(path, e))?;
    let cas = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_err(path, e))?;
    let mut roots = RootCertStore::empty();
    for ca in &cas {
        roots.add(ca.clone()).map_err(|e| file_err(path, e))?;
    }
    if roots.is_empty() {
        return Err(file_err(path, "no CA certificate in the file"));
    }
    Ok((cas, roots))
}
