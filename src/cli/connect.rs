//! The connection and level flags client subcommands share, and turning them
//! into a [`Client`].
//!
//! Owns flag parsing only; endpoint preference and retries are the SDK's.
//!
//! Must not: choose an endpoint or retry (the SDK's).
use std::path::{Path, PathBuf};
use std::time::Duration;

use geokv::client::{Client, TlsOptions};
use geokv::consistency::ConsistencyLevel;

/// Where and how to reach the cluster.
#[derive(clap::Args, Debug, Clone)]
pub struct ConnectArgs {
    /// Node client endpoint; repeat (or comma-separate) to give fallbacks,
    /// tried in order.
    #[arg(
        long = "endpoint",
        value_name = "URL",
        env = "GEOKV_ENDPOINT",
        default_value = "http://127.0.0.11:7070",
        value_delimiter = ','
    )]
    pub endpoints: Vec<String>,
    /// Prefer coordinators of this datacenter: asks an endpoint for every
    /// node, then round-robins over the datacenter's nodes (others as
    /// fallback). Without it, the endpoints are used as given.
    #[arg(long, value_name = "DC")]
    pub local_dc: Option<String>,
    /// Deadline of each attempt, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    pub timeout_ms: u64,
    /// Extra attempts on another endpoint after a retriable error (writes only
    /// after a connect error, when the request provably never arrived).
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub retries: u32,
    /// Cluster CA certificate (PEM): connect over TLS and verify the nodes'
    /// certificates with it (`http://` endpoints are dialled as `https://`).
    /// Without it an `https://` endpoint is verified against the system's
    /// root certificates (or `SSL_CERT_FILE` / `SSL_CERT_DIR`).
    #[arg(long, value_name = "FILE", env = "GEOKV_CA")]
    pub ca: Option<PathBuf>,
    #[command(flatten)]
    pub identity: ClientIdentity,
    /// Token ROLE:SECRET for a cluster with authentication on (better: the
    /// GEOKV_TOKEN environment variable, which stays out of `ps`).
    #[arg(
        long,
        value_name = "ROLE:SECRET",
        env = "GEOKV_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
}

/// The client certificate the CLI presents, on the client and the admin
/// ports alike.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ClientIdentity {
    /// Client certificate (PEM) to present, with --client-key
    /// (`geokv certs issue --client NAME`).
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

impl ClientIdentity {
    /// The certificate and key files, when both are given.
    pub fn pair(&self) -> Option<(&Path, &Path)> {
        self.client_cert.as_deref().zip(self.client_key.as_deref())
    }
}

/// Keyspace and consistency level of a data request.
#[derive(clap::Args, Debug, Clone)]
pub struct LevelArgs {
    /// Keyspace.
    #[arg(long, default_value = "default")]
    pub keyspace: String,
    /// Consistency level: ANY (writes only), ONE, TWO, THREE, LOCAL_ONE,
    /// LOCAL_QUORUM, EACH_QUORUM, QUORUM, ALL (case-insensitive).
    #[arg(long, value_name = "LEVEL", default_value = "LOCAL_QUORUM", value_parser = parse_level)]
    pub consistency: ConsistencyLevel,
}

impl ConnectArgs {
    /// Builds the client; discovery runs only when `--local-dc` is given.
    pub async fn client(&self, level: Option<&LevelArgs>) -> anyhow::Result<Client> {
        let mut builder = Client::builder()
            .endpoints(
                self.endpoints
                    .iter()
                    .map(|e| e.trim())
                    .filter(|e| !e.is_empty()),
            )
            .timeout(Duration::from_millis(self.timeout_ms))
            .retries(self.retries)
            .discover(self.local_dc.is_some());
        if let Some(dc) = &self.local_dc {
            builder = builder.local_datacenter(dc);
        }
        // Without --ca an https endpoint trusts the system roots (the SDK's
        // default); a client certificate needs the options built here.
        let identity = self.identity.pair();
        let roots = match &self.ca {
            Some(ca) => Some(TlsOptions::from_ca_file(ca)?),
            None if identity.is_some() => Some(TlsOptions::system_roots()?),
            None => None,
        };
        if let Some(mut tls) = roots {
            if let Some((cert, key)) = identity {
                tls = tls.client_identity_files(cert, key)?;
            }
            builder = builder.tls(tls);
        }
        if let Some(token) = self.token.as_ref().filter(|t| !t.trim().is_empty()) {
            builder = builder.token(token.trim());
        }
        if let Some(level) = level {
            builder = builder
                .keyspace(&level.keyspace)
                .consistency(level.consistency);
        }
        Ok(builder.build().await?)
    }
}

/// Parses a level name; the level's own `FromStr` accepts any case and `-`
/// or `_` (`local-quorum`), and its error lists the valid names.
pub fn parse_level(text: &str) -> Result<ConsistencyLevel, String> {
    text.parse::<ConsistencyLevel>().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_in_any_case() {
        assert_eq!(
            parse_level("local_quorum"),
            Ok(ConsistencyLevel::LocalQuorum)
        );
        assert_eq!(parse_level("EACH-QUORUM"), Ok(ConsistencyLevel::EachQuorum));
        assert_eq!(parse_level(" all "), Ok(ConsistencyLevel::All));
        assert!(parse_level("MOST").is_err());
    }
}
