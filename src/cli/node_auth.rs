//! The node's authentication flags (`geokv node --auth`, `--no-auth`,
//! `--admin-token-file` / `GEOKV_ADMIN_TOKEN`, `--open-metrics`) and the
//! settings they make.
//!
//! Owns flag parsing only; the auth state and its checks are
//! `geokv::security::auth`'s. Must not: hash secrets or check permissions.
use anyhow::Context;
use geokv::security::auth::{AuthConfig, Token};
use std::path::PathBuf;

/// Authentication flags of `geokv node`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct NodeAuthArgs {
    /// Enforce authentication: client calls need a token or a client
    /// certificate naming a role (UNAUTHENTICATED / PERMISSION_DENIED
    /// otherwise), and admin routes other than /health need the admin token.
    /// On by default with TLS (off with --insecure); `--auth=false` or
    /// --no-auth turns it off (warned at start). Give the same to every node.
    #[arg(
        long,
        env = "GEOKV_AUTH",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub auth: Option<bool>,
    /// No authentication even with TLS: every client and admin route is open
    /// to whoever reaches the ports (same as `--auth=false`).
    #[arg(long, conflicts_with = "auth")]
    pub no_auth: bool,
    /// A file holding the admin token `ROLE:SECRET`: on a node's first start
    /// (no roles yet) it creates that role with admin on every keyspace.
    /// `GEOKV_ADMIN_TOKEN` may hold the token itself instead.
    #[arg(long, value_name = "FILE", env = "GEOKV_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// With authentication on, /metrics and the status page stay readable
    /// without the admin token (e.g. for a Prometheus without a bearer
    /// token); /health is always open.
    #[arg(long, env = "GEOKV_OPEN_METRICS")]
    pub open_metrics: bool,
}

impl NodeAuthArgs {
    /// Whether authentication is enforced: as asked, else on with TLS.
    pub fn enabled(&self, tls: bool) -> bool {
        !self.no_auth && self.auth.unwrap_or(tls)
    }

    /// The node's auth settings; `tls`: the node runs TLS (not --insecure).
    pub fn config(&self, tls: bool) -> anyhow::Result<AuthConfig> {
        let raw = match &self.admin_token_file {
            Some(f) => Some(
                std::fs::read_to_string(f)
                    .with_context(|| format!("reading the admin token file {}", f.display()))?,
            ),
            None => std::env::var("GEOKV_ADMIN_TOKEN").ok(),
        };
        let admin_token = match raw.filter(|t| !t.trim().is_empty()) {
            None => None,
            Some(t) => Some(Token::parse(&t).context("the admin token must be ROLE:SECRET")?),
        };
        Ok(AuthConfig {
            enabled: self.enabled(tls),
            admin_token,
            open_metrics: self.open_metrics,
        })
    }
}
