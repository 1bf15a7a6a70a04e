//! The CLI's client of a node's admin port: one exchange
//! ([`geokv::transport::admin_client::call`]), over HTTPS when a cluster CA is given
//! (`--ca` / `GEOKV_CA`, with a client certificate if configured) or the
//! endpoint says `https://` (then, without `--ca`, the system's root
//! certificates verify the node, as for the SDK and the gRPC commands), with
//! the admin token (`--token` / `GEOKV_TOKEN`) as `authorization: Bearer`
//! when given, and an optional body.
//!
//! Owns the exchange only; what to ask is the subcommands'.
//!
//! Must not: decide what to ask, or retry a request.
use anyhow::bail;
use std::path::PathBuf;
use std::sync::OnceLock;

/// How the CLI reaches admin ports of a cluster with TLS.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct AdminTlsArgs {
    /// Cluster CA certificate (PEM): speak HTTPS to the admin port and
    /// verify the node's certificate with it (nodes running TLS). Without
    /// it an https:// endpoint is verified with the system's roots.
    #[arg(long = "ca", value_name = "FILE", env = "GEOKV_CA")]
    pub ca: Option<PathBuf>,
    /// Client certificate (PEM) to present, with --client-key.
    #[arg(
        long,
        value_name = "FILE",
        env = "GEOKV_CLIENT_CERT",
        requires = "client_key"
    )]
    pub client_cert: Option<PathBuf>,
    /// Client private key (PEM), with --client-cert.
    #[arg(
        long,
        value_name = "FILE",
        env = "GEOKV_CLIENT_KEY",
        requires = "client_cert"
    )]
    pub client_key: Option<PathBuf>,
}

static CHOSEN: OnceLock<AdminTlsArgs> = OnceLock::new();

impl AdminTlsArgs {
    /// Makes these the settings of every admin exchange of this process
    /// (called once by the subcommand's dispatch).
    pub fn choose(&self) {
        let _ = CHOSEN.set(self.clone());
    }

    fn from_env() -> Self {
        let var = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        AdminTlsArgs {
            ca: var("GEOKV_CA"),
            client_cert: var("GEOKV_CLIENT_CERT"),
            client_key: var("GEOKV_CLIENT_KEY"),
        }
    }

    /// How to dial `endpoint`: with `--ca`, HTTPS trusting it; else for an
    /// `https://` endpoint or with a client certificate, HTTPS trusting the
    /// system roots; else plaintext.
    fn connector(&self, endpoint: &str) -> anyhow::Result<Option<tokio_rustls::TlsConnector>> {
        use geokv::transport::tls::admin;
        let identity = self.client_cert.as_deref().zip(self.client_key.as_deref());
        Ok(match &self.ca {
            Some(ca) => Some(admin::operator_connector(ca, identity)?),
            None if endpoint.starts_with("https://") || identity.is_some() => {
                Some(admin::system_roots_connector(identity)?)
            }
            None => None,
        })
    }
}

/// `endpoint` as host:port, without a scheme or a trailing slash.
fn host_port(endpoint: &str) -> &str {
    let bare = (endpoint.strip_prefix("https://"))
        .or_else(|| endpoint.strip_prefix("http://"))
        .unwrap_or(endpoint);
    bare.trim_end_matches('/')
}

/// The admin token a subcommand uses when given none: `GEOKV_TOKEN`.
pub fn env_token() -> Option<String> {
    std::env::var("GEOKV_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty())
}

/// One request to `endpoint`; the body of a 2xx answer, else an error with
/// the status and the node's message.
pub async fn request(
    endpoint: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> anyhow::Result<String> {
    let tls = CHOSEN.get().cloned().unwrap_or_else(AdminTlsArgs::from_env);
    let connector = tls.connector(endpoint)?;
    let answer = geokv::transport::admin_client::call(
        host_port(endpoint),
        connector.as_ref(),
        method,
        path,
        token,
        body,
    )
    .await?;
    let code = answer.status;
    let body = answer.body.trim();
    if code == 401 && token.is_none() {
        bail!("{endpoint} answered 401: {body} (give the admin token: --token or GEOKV_TOKEN)");
    }
    if !answer.is_success() {
        bail!("{endpoint} answered {code}: {body}");
    }
    Ok(answer.body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_chooses_the_roots_and_is_not_dialled() {
        assert_eq!(host_port("https://10.0.0.1:7072/"), "10.0.0.1:7072");
        assert_eq!(host_port("http://h:1"), "h:1");
        assert_eq!(host_port("h:1"), "h:1");
        let none = AdminTlsArgs::default();
        assert!(none.connector("h:1").unwrap().is_none(), "plaintext");
        assert!(none.connector("http://h:1").unwrap().is_none(), "plaintext");
        let missing = AdminTlsArgs {
            ca: Some("/nonexistent/ca.pem".into()),
            ..Default::default()
        };
        // --ca wins over the scheme: its file is read, whatever the endpoint says.
        assert!(missing.connector("http://h:1").is_err());
    }
}
