//! Benchmark clusters with TLS and authentication on (`geokv bench compare
//! --secure`): a cluster CA and node certificates in `<dir>/certs`, an admin
//! token in `<dir>/admin-token` (0600), the node flags that use them, and
//! how a client and the admin requests reach such a cluster. Also the
//! reconnect measurement: what a fresh connection's first request costs
//! (TCP, plus the TLS handshake when on) next to a warm one.
//!
//! Must not start processes (that is `cluster.rs`) or format results.
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::BenchError;
use geokv::client::{Client, ClientBuilder, TlsOptions};
use geokv::local_cluster::AdminAccess;
use geokv::topology::Topology;

/// TLS material and the token of one secure benchmark cluster.
#[derive(Debug, Clone)]
pub struct Secure {
    pub ca: PathBuf,
    pub certs_dir: PathBuf,
    pub token_file: PathBuf,
    pub token: String,
}

impl Secure {
    /// Creates the CA, every node's certificate and the admin token under `dir`.
    pub fn prepare(dir: &Path, topology: &Topology) -> Result<Secure, BenchError> {
        let certs_dir = dir.join("certs");
        let nodes: Vec<_> = (topology.nodes().iter())
            .map(|n| (n.id.clone(), n.client_address.ip()))
            .collect();
        let ca = geokv::security::certs::ensure_dir(&certs_dir, &topology.cluster_name, &nodes)
            .map_err(|e| BenchError::InvalidOption(format!("certificates: {e}")))?;
        let token = format!("admin:{}", geokv::security::auth::secret::generate_secret());
        let token_file = dir.join("admin-token");
        write_private(&token_file, &token)?;
        Ok(Secure {
            ca,
            certs_dir,
            token_file,
            token,
        })
    }

    /// The `geokv node` flags: TLS from the certificate directory, `--auth`
    /// with the admin role created from the token file.
    pub fn node_args(&self) -> Vec<String> {
        vec![
            "--tls-dir".into(),
            self.certs_dir.display().to_string(),
            "--auth".into(),
            "--admin-token-file".into(),
            self.token_file.display().to_string(),
        ]
    }

    /// How the benchmark reaches the nodes' (HTTPS, guarded) admin ports.
    pub fn admin_access(&self) -> AdminAccess {
        AdminAccess {
            ca: Some(self.ca.clone()),
            token: Some(self.token.clone()),
        }
    }

    /// `builder` verifying the cluster CA and sending the token.
    pub fn client(&self, builder: ClientBuilder) -> Result<ClientBuilder, BenchError> {
        Ok(builder
            .tls(TlsOptions::from_ca_file(&self.ca)?)
            .token(self.token.clone()))
    }
}

fn write_private(path: &Path, text: &str) -> Result<(), BenchError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    writeln!(f, "{text}")?;
    Ok(())
}

/// The URL scheme of a client endpoint.
pub fn scheme(secure: Option<&Secure>) -> &'static str {
    if secure.is_some() {
        "https"
    } else {
        "http"
    }
}

/// What a new connection's first request costs, next to a warm one.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Reconnect {
    /// Fresh connections measured.
    pub samples: usize,
    /// Connect (+ TLS handshake) + first GET, median and p99, in ms.
    pub first_p50_ms: f64,
    pub first_p99_ms: f64,
    /// A second GET on the same connection, median, in ms.
    pub warm_p50_ms: f64,
}

/// Opens `samples` fresh connections to `endpoint` one after the other,
/// timing the first GET of each (it waits for the connection) and a second.
pub async fn measure_reconnect(
    endpoint: &str,
    secure: Option<&Secure>,
    samples: usize,
) -> Result<Reconnect, BenchError> {
    let (mut first, mut warm) = (Vec::new(), Vec::new());
    for _ in 0..samples.max(1) {
        let mut b = Client::builder()
            .endpoints([endpoint.to_string()])
            .discover(false)
            .retries(0)
            .timeout(Duration::from_secs(5));
        if let Some(s) = secure {
            b = s.client(b)?;
        }
        let client = b.build().await?;
        let t = Instant::now();
        client.get("bench-warmup").await?;
        first.push(t.elapsed());
        let t = Instant::now();
        client.get("bench-warmup").await?;
        warm.push(t.elapsed());
    }
    Ok(Reconnect {
        samples: first.len(),
        first_p50_ms: quantile_ms(&mut first, 0.5),
        first_p99_ms: quantile_ms(&mut first, 0.99),
        warm_p50_ms: quantile_ms(&mut warm, 0.5),
    })
}

/// The `q` quantile (nearest rank) of `v`, in ms.
fn quantile_ms(v: &mut [Duration], q: f64) -> f64 {
    v.sort();
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len().max(1));
    v.get(rank - 1)
        .map(|d| d.as_secs_f64() * 1e3)
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let mut v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(quantile_ms(&mut v, 0.5), 50.0);
        assert_eq!(quantile_ms(&mut v, 0.99), 99.0);
        assert_eq!(quantile_ms(&mut [], 0.5), 0.0);
    }

    #[test]
    fn a_secure_cluster_gets_certificates_a_private_token_and_the_flags() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let yaml = geokv::local_cluster::topology_yaml("b", &[("dc1", &["127.0.0.41"])], 1);
        let topo = Topology::parse("t", &yaml).unwrap();
        let s = Secure::prepare(dir.path(), &topo).unwrap();
        assert!(s.ca.exists() && s.certs_dir.join("node-dc1-n1.pem").exists());
        let mode = std::fs::metadata(&s.token_file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(s.token.starts_with("admin:"));
        let args = s.node_args();
        assert!(args.contains(&"--auth".to_string()) && args.contains(&"--tls-dir".to_string()));
        assert_eq!(s.admin_access().token.as_deref(), Some(s.token.as_str()));
    }
}
