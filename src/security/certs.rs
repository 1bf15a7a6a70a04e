//! The cluster CA and the certificates it issues (rcgen), on disk as PEM.
//!
//! A certificate's **identity** is one URI subject alternative name:
//! `geokv://node/<ID>` for a node, `geokv://client/<NAME>` for a client.
//! Internode TLS compares a node's identity with the node id it claims
//! (`transport::tls`); DNS and IP SANs are only there for clients that dial
//! a node by name or address.
//!
//! Layout of a certificate directory (`geokv certs init DIR`):
//! `ca.pem` + `ca-key.pem` (the CA: keep the key off the nodes),
//! `node-<ID>.pem` + `node-<ID>-key.pem`, `client-<NAME>.pem` +
//! `client-<NAME>-key.pem`. A node needs `ca.pem` and its own pair.
//!
//! Owns: key generation, signing, PEM files, identity extraction. Must not:
//! configure TLS sessions.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// URI SAN prefix naming a node.
pub const NODE_URI: &str = "geokv://node/";
/// URI SAN prefix naming a client.
pub const CLIENT_URI: &str = "geokv://client/";

/// CA certificates are valid this long.
const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// Node and client certificates are valid this long (rotate before).
const LEAF_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);

/// Who a certificate names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    Node(String),
    Client(String),
}

impl Identity {
    fn uri(&self) -> String {
        match self {
            Identity::Node(id) => format!("{NODE_URI}{id}"),
            Identity::Client(name) => format!("{CLIENT_URI}{name}"),
        }
    }

    /// The file stem of this identity's pair in a certificate directory.
    pub fn file_stem(&self) -> String {
        match self {
            Identity::Node(id) => format!("node-{id}"),
            Identity::Client(name) => format!("client-{name}"),
        }
    }
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.uri())
    }
}

/// Why a certificate could not be created, read or understood.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("generating or signing a certificate: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} already exists (refusing to overwrite a key)")]
    Exists(PathBuf),
    #[error("not a valid X.509 certificate: {0}")]
    Parse(String),
    #[error("the certificate names more than one geokv identity")]
    Ambiguous,
    #[error("an identity must be 1-128 characters of [A-Za-z0-9._-], not '{0}'")]
    BadName(String),
}

/// A certificate and its private key, both PEM.
#[derive(Clone)]
pub struct Pair {
    pub cert_pem: String,
    pub key_pem: String,
}

/// Paths of a pair in a certificate directory.
pub fn pair_paths(dir: &Path, stem: &str) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("{stem}.pem")),
        dir.join(format!("{stem}-key.pem")),
    )
}

/// The CA certificate of a directory.
pub fn ca_path(dir: &Path) -> PathBuf {
    dir.join("ca.pem")
}

fn validity(params: &mut CertificateParams, valid: Duration) {
    let now = SystemTime::now();
    // An hour of slack for clocks behind the issuer's.
    params.not_before = (now - Duration::from_secs(3600)).into();
    params.not_after = (now + valid).into();
}

/// A new cluster CA named after `cluster`.
pub fn new_ca(cluster: &str) -> Result<Pair, CertError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, format!("geokv cluster CA {cluster}"));
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    validity(&mut params, CA_VALIDITY);
    let cert = params.self_signed(&key)?;
    Ok(Pair {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

fn check_name(name: &str) -> Result<(), CertError> {
    let ok = (1..=128).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(CertError::BadName(name.to_string()))
    }
}

/// A certificate for `who` signed by `ca`, with extra DNS and IP SANs.
/// Node certificates serve and dial (server and client auth); client
/// certificates only dial.
pub fn issue(ca: &Pair, who: &Identity, dns: &[String], ips: &[IpAddr]) -> Result<Pair, CertError> {
    let (Identity::Node(name) | Identity::Client(name)) = who;
    check_name(name)?;
    let ca_key = KeyPair::from_pem(&ca.key_pem)?;
    let issuer = Issuer::from_ca_cert_pem(&ca.cert_pem, ca_key)?;
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, who.file_stem());
    let mut sans = vec![SanType::URI(who.uri().try_into()?)];
    for d in dns {
        sans.push(SanType::DnsName(d.clone().try_into()?));
    }
    sans.extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));
    params.subject_alt_names = sans;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = match who {
        Identity::Node(_) => vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
        Identity::Client(_) => vec![ExtendedKeyUsagePurpose::ClientAuth],
    };
    params.use_authority_key_identifier_extension = true;
    validity(&mut params, LEAF_VALIDITY);
    let cert = params.signed_by(&key, &issuer)?;
    Ok(Pair {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// The geokv identity a DER certificate names, if any.
pub fn identity_of(der: &[u8]) -> Result<Option<Identity>, CertError> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|e| CertError::Parse(e.to_string()))?;
    let sans = cert
        .subject_alternative_name()
        .map_err(|e| CertError::Parse(e.to_string()))?;
    let mut found = None;
    for name in sans.iter().flat_map(|s| s.value.general_names.iter()) {
        let x509_parser::extensions::GeneralName::URI(uri) = name else {
            continue;
        };
        let id = if let Some(id) = uri.strip_prefix(NODE_URI) {
            Identity::Node(id.to_string())
        } else if let Some(name) = uri.strip_prefix(CLIENT_URI) {
            Identity::Client(name.to_string())
        } else {
            continue;
        };
        if found.replace(id).is_some() {
            return Err(CertError::Ambiguous);
        }
    }
    Ok(found)
}

fn read(path: &Path) -> Result<String, CertError> {
    std::fs::read_to_string(path).map_err(|source| CertError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes `text` to a new file (never overwrites); keys are 0600.
fn write_new(path: &Path, text: &str, secret: bool) -> Result<(), CertError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| CertError::Io {
        path: path.to_path_buf(),
        source,
    };
    if path.exists() {
        return Err(CertError::Exists(path.to_path_buf()));
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(if secret { 0o600 } else { 0o644 })
        .open(path)
        .map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)
}

/// Writes a pair as `<stem>.pem` and `<stem>-key.pem` in `dir`.
pub fn write_pair(dir: &Path, stem: &str, pair: &Pair) -> Result<(PathBuf, PathBuf), CertError> {
    std::fs::create_dir_all(dir).map_err(|source| CertError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let (cert, key) = pair_paths(dir, stem);
    write_new(&key, &pair.key_pem, true)?;
    write_new(&cert, &pair.cert_pem, false)?;
    Ok((cert, key))
}

/// `geokv certs init`: a new CA in `dir` (`ca.pem`, `ca-key.pem`).
pub fn init_dir(dir: &Path, cluster: &str) -> Result<PathBuf, CertError> {
    write_pair(dir, "ca", &new_ca(cluster)?)?;
    Ok(ca_path(dir))
}

/// `geokv certs issue`: a pair for `who` signed by the CA in `dir`.
pub fn issue_in_dir(
    dir: &Path,
    who: &Identity,
    dns: &[String],
    ips: &[IpAddr],
) -> Result<(PathBuf, PathBuf), CertError> {
    let (cert, key) = pair_paths(dir, "ca");
    let ca = Pair {
        cert_pem: read(&cert)?,
        key_pem: read(&key)?,
    };
    write_pair(dir, &who.file_stem(), &issue(&ca, who, dns, ips)?)
}

/// A certificate directory for a local cluster: the CA if `dir` has none,
/// and a certificate for each `(node id, address)` that has none (existing
/// files are kept, so a second run reuses them). Returns the CA's path.
pub fn ensure_dir(
    dir: &Path,
    cluster: &str,
    nodes: &[(String, IpAddr)],
) -> Result<PathBuf, CertError> {
    if !ca_path(dir).exists() {
        init_dir(dir, cluster)?;
    }
    for (id, ip) in nodes {
        let who = Identity::Node(id.clone());
        if !pair_paths(dir, &who.file_stem()).0.exists() {
            issue_in_dir(dir, &who, &["localhost".to_string()], &[*ip])?;
        }
    }
    Ok(ca_path(dir))
}

#[cfg(test)]
mod tests;
