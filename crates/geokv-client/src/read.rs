//! The read request builder [`Get`] and its per-call [`ReadOptions`]: fills
//! in the client's defaults, sends a `GetRequest`, returns a [`GetResult`].
//!
//! Must not: reconcile siblings: they come back as the server merged them.
use std::future::IntoFuture;
use std::time::Duration;

use crate::sync::BoxFuture;
use tracing::Instrument as _;

use crate::core::{request, wire_options};
use crate::proto::v1 as pb;
use crate::ConsistencyLevel;
use crate::{Client, ClientError, GetResult};

/// Per-call overrides for a read; `None` fields take the client's defaults.
///
/// # Example
///
/// ```no_run
/// use std::time::Duration;
/// use geokv_client::ReadOptions;
/// use geokv_client::ConsistencyLevel;
///
/// # async fn demo(client: geokv_client::Client) -> Result<(), geokv_client::ClientError> {
/// let opts = ReadOptions {
///     consistency: Some(ConsistencyLevel::Quorum),
///     timeout: Some(Duration::from_millis(500)),
///     ..ReadOptions::default()
/// };
/// let read = client.get("k").options(opts).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadOptions {
    /// Keyspace to read from.
    pub keyspace: Option<String>,
    /// Consistency level.
    pub consistency: Option<ConsistencyLevel>,
    /// Explicit number of replicas that must answer (R); overrides
    /// `consistency` on the server when set and non-zero.
    pub r: Option<u32>,
    /// Deadline of each attempt (the server is given this much; the client
    /// waits a little longer for its answer).
    pub timeout: Option<Duration>,
}

/// A read being configured; `.await` it to send it. Built by [`Client::get`].
///
/// # Example
///
/// ```no_run
/// use geokv_client::ConsistencyLevel;
///
/// # async fn demo(client: geokv_client::Client) -> Result<(), geokv_client::ClientError> {
/// let read = client.get("k").consistency(ConsistencyLevel::LocalOne).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until it is awaited"]
pub struct Get {
    client: Client,
    key: Vec<u8>,
    options: ReadOptions,
}

impl Get {
    pub(crate) fn new(client: Client, key: Vec<u8>) -> Self {
        Get {
            client,
            key,
            options: ReadOptions::default(),
        }
    }

    /// Replaces every per-call option at once.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo(client: geokv_client::Client) -> Result<(), geokv_client::ClientError> {
    /// let opts = geokv_client::ReadOptions { r: Some(1), ..Default::default() };
    /// client.get("k").options(opts).await?;
    /// # Ok(()) }
    /// ```
    pub fn options(mut self, options: ReadOptions) -> Self {
        self.options = options;
        self
    }

    /// Reads from `keyspace` instead of the client's default.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo(client: geokv_client::Client) -> Result<(), geokv_client::ClientError> {
    /// client.get("k").keyspace("sessions").await?;
    /// # Ok(()) }
    /// ```
    pub fn keyspace(mut self, keyspace: impl Into<String>) -> Self {
        self.options.keyspace = Some(keyspace.into());
        self
    }

    /// Uses `level` for this read.
    ///
    /// # Example
    ///
    /// ```no_run
    /// use geokv_client::ConsistencyLevel;
    /// # async fn demo(client: geokv_client::Client) -> Result<(), geokv_client::ClientError> {
    /// client.get("k").consistency(ConsistencyLevel::All).await?;
    /// # Ok(()) }
    /// ```
    pub fn consistency(mut self, level: ConsistencyLevel) -> Self {
        self.options.consistency = Some(level);
        self
    }

    /// Requires exactly `r` replicas to answer (overrides the level).
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo(client: geokv_client::Client) -> Result<(), geokv_client::ClientError> {
    /// client.get("k").r(2).await?;
    /// # Ok(()) }
    /// ```
    pub fn r(mut self, r: u32) -> Self {
        self.options.r = Some(r);
        self
    }

    /// Deadline of each attempt for this read.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo(client: geokv_client::Client) -> Result<(), geokv_client::ClientError> {
    /// client.get("k").timeout(std::time::Duration::from_millis(300)).await?;
    /// # Ok(()) }
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.options.timeout = Some(timeout);
        self
    }

    async fn send(self) -> Result<GetResult, ClientError> {
        let defaults = self.client.defaults();
        let timeout = self.options.timeout.unwrap_or(defaults.timeout);
        let message = pb::GetRequest {
            keyspace: self
                .options
                .keyspace
                .unwrap_or_else(|| defaults.keyspace.clone()),
            key: self.key,
            options: Some(wire_options(
                self.options.consistency.unwrap_or(defaults.consistency),
                self.options.r,
                timeout,
            )),
        };
        let token = self.client.token();
        let (answer, coordinator) = self
            .client
            .call("get", true, |mut kv| {
                let request = request(message.clone(), timeout, token.as_ref());
                async move { kv.get(request).await.map(tonic::Response::into_inner) }
            })
            .await?;
        Ok(GetResult::from_wire(answer, coordinator))
    }
}

impl IntoFuture for Get {
    type Output = Result<GetResult, ClientError>;
    type IntoFuture = BoxFuture<'static, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        let span = tracing::debug_span!("geokv.client.get", key_len = self.key.len());
        Box::pin(self.send().instrument(span))
    }
}
