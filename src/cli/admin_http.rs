//! The CLI's client of a node's admin port: one exchange
//! ([`geokv::transport::admin_client::call`]), over HTTPS when a cluster CA is given
//! (`--ca` / `GEOKV_CA`, with a client certificate if configured) or the
//! endpoint says `https://` (then, without `--ca`, the system's root
//! certificates verify the node, as for the SDK and the gRPC commands), with
//! the admin token (`--token` / `GEOKV_TOKEN`) as `authorization: Bearer`
//! when given, and an optional body; a node that does not answer within
//! `--admin-timeout-secs` fails the command, saying whether the request
//! may have been applied.
//!
//! Owns the exchange only; what to ask is the subcommands'.
//!
//! Must not: decide what to ask, or retry a request.
use super::connect::ClientIdentity;
use anyhow::bail;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

/// How long an admin exchange may take unless `--admin-timeout-secs` says
/// otherwise: generous, as `POST /cleanup` answers once its ranges are gone.
pub const DEFAULT_TIMEOUT_SECS: u64 = 120;

/// How the CLI reaches admin ports of a cluster with TLS, and how long it
/// waits for them.
#[derive(clap::Args, Debug, Clone)]
pub struct AdminTlsArgs {
    /// Cluster CA certificate (PEM): speak HTTPS to the admin port and
    /// verify the node's certificate with it (nodes running TLS). Without
    /// it an https:// endpoint is verified with the system's roots.
    #[arg(long = "ca", value_name = "FILE", env = "GEOKV_CA")]
    pub ca: Option<PathBuf>,
    #[command(flatten)]
    pub identity: ClientIdentity,
    /// Seconds to wait for a node's admin port to answer one request
    /// (connecting, TLS and the answer); past it the command fails, saying
    /// whether the request may have been applied.
    #[arg(
        long = "admin-timeout-secs",
        value_name = "SECS",
        env = "GEOKV_ADMIN_TIMEOUT_SECS",
        default_value_t = DEFAULT_TIMEOUT_SECS,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub timeout_secs: u64,
}

impl Default for AdminTlsArgs {
    fn default() -> Self {
        AdminTlsArgs {
            ca: None,
            identity: ClientIdentity::default(),
            timeout_secs: DEFAULT_TIMEOUT_SECS,
        }
    }
}

static CHOSEN: OnceLock<AdminTlsArgs> = OnceLock::new();

impl AdminTlsArgs {
    /// Makes these the settings of every admin exchange of this process
    /// (called once by the subcommand's dispatch).
    pub fn choose(&self) {
        let _ = CHOSEN.set(self.clone());
    }

    /// The settings from the environment alone (a command that took no
    /// flags for them); a `GEOKV_ADMIN_TIMEOUT_SECS` that is not a number of
    /// seconds ≥ 1 is an error, as clap makes it for the flag (it used to
    /// fall back to 120 s in silence: review-sec27 L4).
    fn from_env() -> anyhow::Result<Self> {
        let var = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let timeout = std::env::var("GEOKV_ADMIN_TIMEOUT_SECS").ok();
        Ok(AdminTlsArgs {
            ca: var("GEOKV_CA"),
            identity: ClientIdentity {
                client_cert: var("GEOKV_CLIENT_CERT"),
                client_key: var("GEOKV_CLIENT_KEY"),
            },
            timeout_secs: timeout_secs_in(timeout.as_deref())?,
        })
    }

    /// How to dial `endpoint`: with `--ca`, HTTPS trusting it; else for an
    /// `https://` endpoint or with a client certificate, HTTPS trusting the
    /// system roots; else plaintext.
    fn connector(&self, endpoint: &str) -> anyhow::Result<Option<tokio_rustls::TlsConnector>> {
        use geokv::transport::tls::admin;
        let identity = self.identity.pair();
        Ok(match &self.ca {
            Some(ca) => Some(admin::operator_connector(ca, identity)?),
            None if endpoint.starts_with("https://") || identity.is_some() => {
                Some(admin::system_roots_connector(identity)?)
            }
            None => None,
        })
    }
}

/// The admin timeout `GEOKV_ADMIN_TIMEOUT_SECS` sets (`value`): the
/// default when unset or empty, else whole seconds ≥ 1.
fn timeout_secs_in(value: Option<&str>) -> anyhow::Result<u64> {
    let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(DEFAULT_TIMEOUT_SECS);
    };
    match v.parse::<u64>() {
        Ok(secs) if secs >= 1 => Ok(secs),
        _ => bail!("GEOKV_ADMIN_TIMEOUT_SECS={v:?}: expected whole seconds, at least 1 (unset it for the default, {DEFAULT_TIMEOUT_SECS} s)"),
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
    let tls = match CHOSEN.get() {
        Some(chosen) => chosen.clone(),
        None => AdminTlsArgs::from_env()?,
    };
    request_with(&tls, endpoint, method, path, token, body).await
}

/// [`request`] with `tls`'s settings.
async fn request_with(
    tls: &AdminTlsArgs,
    endpoint: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> anyhow::Result<String> {
    let connector = tls.connector(endpoint)?;
    let call = geokv::transport::admin_client::call(
        host_port(endpoint),
        connector.as_ref(),
        method,
        path,
        token,
        body,
    );
    let secs = tls.timeout_secs;
    let Ok(answer) = tokio::time::timeout(Duration::from_secs(secs), call).await else {
        let maybe = match method {
            "GET" | "HEAD" => "",
            _ => "; the request may have been applied: check before repeating it",
        };
        bail!("{endpoint} did not answer {method} {path} within {secs} s (--admin-timeout-secs){maybe}");
    };
    let answer = answer?;
    let code = answer.status;
    let body = answer.body.trim();
    if code == 401 && token.is_none() {
        bail!("{endpoint} answered 401: {body} (give the admin token: --token or GEOKV_TOKEN)");
    }
    if !answer.is_success() {
        let body = body.to_string();
        let endpoint = endpoint.to_string();
        return Err(StatusError {
            endpoint,
            code,
            body,
        }
        .into());
    }
    Ok(answer.body)
}

/// An admin request answered with a status other than 2xx (and 401
/// without a token), for a caller that tells them apart (review-l4-33 M1:
/// `decommission --cancel` on an older build).
#[derive(Debug, thiserror::Error)]
#[error("{endpoint} answered {code}: {body}")]
pub struct StatusError {
    pub endpoint: String,
    pub code: u16,
    /// The answer's body, trimmed.
    pub body: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A listener that accepts connections and never answers them.
    async fn silent() -> (String, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((tcp, _)) = listener.accept().await {
                open.push(tcp);
            }
        });
        (addr.to_string(), held)
    }

    #[tokio::test(start_paused = true)]
    async fn a_node_that_never_answers_fails_the_command_after_the_timeout() {
        let (endpoint, held) = silent().await;
        let tls = AdminTlsArgs {
            timeout_secs: 7,
            ..Default::default()
        };
        let err = request_with(&tls, &endpoint, "GET", "/layout", None, "")
            .await
            .expect_err("no answer")
            .to_string();
        assert!(
            err.contains("did not answer GET /layout within 7 s"),
            "{err}"
        );
        assert!(!err.contains("applied"), "a read: {err}");
        let err = request_with(&tls, &endpoint, "POST", "/cleanup", None, "")
            .await
            .expect_err("no answer")
            .to_string();
        assert!(err.contains("within 7 s (--admin-timeout-secs)"), "{err}");
        assert!(err.contains("may have been applied"), "a mutation: {err}");
        held.abort();
    }

    #[test]
    fn the_timeout_defaults_and_refuses_zero() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            tls: AdminTlsArgs,
        }
        let defaults = Cli::try_parse_from(["x"]).unwrap().tls;
        assert_eq!(defaults.timeout_secs, DEFAULT_TIMEOUT_SECS);
        assert_eq!(AdminTlsArgs::default().timeout_secs, DEFAULT_TIMEOUT_SECS);
        let set = Cli::try_parse_from(["x", "--admin-timeout-secs", "5"]).unwrap();
        assert_eq!(set.tls.timeout_secs, 5);
        assert!(Cli::try_parse_from(["x", "--admin-timeout-secs", "0"]).is_err());
    }

    /// review-sec27 L4: an invalid value is an error, not 120 s in silence.
    #[test]
    fn the_timeout_from_the_environment_is_checked() {
        assert_eq!(timeout_secs_in(None).unwrap(), DEFAULT_TIMEOUT_SECS);
        assert_eq!(timeout_secs_in(Some(" ")).unwrap(), DEFAULT_TIMEOUT_SECS);
        assert_eq!(timeout_secs_in(Some("7")).unwrap(), 7);
        for bad in ["0", "-3", "1.5", "ten"] {
            let err = timeout_secs_in(Some(bad)).expect_err(bad).to_string();
            assert!(err.contains("GEOKV_ADMIN_TIMEOUT_SECS"), "{err}");
        }
    }

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
