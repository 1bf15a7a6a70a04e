//! The builder's security settings: TLS towards the nodes and the bearer
//! token every call carries (kept out of `Debug` output). Must not dial
//! anything (`dial::Dialer` does).

use super::ClientBuilder;
use crate::core::Bearer;
use crate::{ClientError, TlsOptions};

/// A token kept out of `Debug` output.
#[derive(Clone)]
pub(super) struct Redacted(pub(super) String);

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl ClientBuilder {
    /// Connect over TLS, verifying the nodes' certificates with `tls`'s CA
    /// (every endpoint, seeds and discovered nodes, is dialled over TLS).
    ///
    /// # Example
    ///
    /// ```no_run
    /// # fn demo() -> Result<(), geokv_client::ClientError> {
    /// let b = geokv_client::Client::builder()
    ///     .endpoints(["https://127.0.0.11:7070"])
    ///     .tls(geokv_client::TlsOptions::from_ca_file("certs/ca.pem")?);
    /// # Ok(()) }
    /// ```
    pub fn tls(mut self, tls: TlsOptions) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Authenticate every call with `token`, `ROLE:SECRET` as `geokv auth
    /// create-role` printed it; it travels as `authorization: Bearer
    /// ROLE:SECRET` gRPC metadata (use TLS, or it crosses the network in
    /// clear). Keep it out of command lines: read it from the environment
    /// (`GEOKV_TOKEN`) or a file.
    ///
    /// A node with `--auth` answers a call without a valid token
    /// `UNAUTHENTICATED`, and one whose role lacks the permission
    /// `PERMISSION_DENIED` naming the keyspace and the permission.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let b = geokv_client::Client::builder()
    ///     .endpoints(["https://127.0.0.11:7070"])
    ///     .token(std::env::var("GEOKV_TOKEN")?);
    /// # Ok(()) }
    /// ```
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(Redacted(token.into()));
        self
    }

    pub(crate) fn bearer(&self) -> Result<Option<Bearer>, ClientError> {
        let Some(Redacted(token)) = &self.token else {
            return Ok(None);
        };
        let token = token.trim();
        if !token.contains(':') {
            return Err(ClientError::invalid(
                "a token is ROLE:SECRET (as `geokv auth create-role` printed it)",
            ));
        }
        format!("Bearer {token}")
            .parse()
            .map(|v| Some(Bearer(v)))
            .map_err(|_| ClientError::invalid("a token must be printable ASCII"))
    }
}
