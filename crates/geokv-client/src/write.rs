//! The write request builders [`Put`] and [`Delete`] and their per-call
//! [`WriteOptions`]: fill in the client's defaults, send, return the new
//! context and the acks.
//!
//! Writes are not idempotent (a resent write is a second version), so they
//! are retried only after a connect error; see [`RetryPolicy`](crate::RetryPolicy).
//! Must not: resend a write itself: the attempt loop does, by that rule.
use std::future::IntoFuture;
use std::time::Duration;

use crate::sync::BoxFuture;
use tracing::Instrument as _;

use crate::core::{request, wire_options};
use crate::proto::v1 as pb;
use crate::ConsistencyLevel;
use crate::{CausalContext, Client, ClientError, DeleteResult, PutResult};

/// Per-call overrides for a put or delete; `None` fields take the client's
/// defaults.
///
/// # Example
///
/// ```no_run
/// use geokv_client::WriteOptions;
/// use geokv_client::ConsistencyLevel;
///
/// # async fn demo(client: geokv_client::Client) -> Result<(), geokv_client::ClientError> {
/// let opts = WriteOptions { consistency: Some(ConsistencyLevel::Any), ..Default::default() };
/// client.put("k", "v").options(opts).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteOptions {
    /// Keyspace to write to.
    pub keyspace: Option<String>,
    /// Consistency level.
    pub consistency: Option<ConsistencyLevel>,
    /// Explicit number of acknowledgements required (W); overrides
    /// `consistency` on the server when set and non-zero.
    pub w: Option<u32>,
    /// Deadline of the call (the server is given this much; the client waits
    /// a little longer for its answer).
    pub timeout: Option<Duration>,
}

/// The option setters [`Put`] and [`Delete`] share; `$call` is the request
/// expression their examples start from.
macro_rules! write_option_setters {
    ($builder:ident, $call:literal) => {
        impl $builder {
            /// Replaces every per-call option at once.
            ///
            /// # Example
            ///
            /// ```no_run
            /// # async fn demo(client: geokv_client::Client, ctx: geokv_client::CausalContext) -> Result<(), geokv_client::ClientError> {
            /// let opts = geokv_client::WriteOptions { w: Some(1), ..Default::default() };
            #[doc = concat!(" ", $call, ".options(opts).await?;")]
            /// # Ok(()) }
            /// ```
            pub fn options(mut self, options: WriteOptions) -> Self {
                self.options = options;
                self
            }

            /// Writes to `keyspace` instead of the client's default.
            ///
            /// # Example
            ///
            /// ```no_run
            /// # async fn demo(client: geokv_client::Client, ctx: geokv_client::CausalContext) -> Result<(), geokv_client::ClientError> {
            #[doc = concat!(" ", $call, ".keyspace(\"sessions\").await?;")]
            /// # Ok(()) }
            /// ```
            pub fn keyspace(mut self, keyspace: impl Into<String>) -> Self {
                self.options.keyspace = Some(keyspace.into());
                self
            }

            /// Uses `level` for this write.
            ///
            /// # Example
            ///
            /// ```no_run
            /// use geokv_client::ConsistencyLevel;
            /// # async fn demo(client: geokv_client::Client, ctx: geokv_client::CausalContext) -> Result<(), geokv_client::ClientError> {
            #[doc = concat!(" ", $call, ".consistency(ConsistencyLevel::EachQuorum).await?;")]
            /// # Ok(()) }
            /// ```
            pub fn consistency(mut self, level: ConsistencyLevel) -> Self {
                self.options.consistency = Some(level);
                self
            }

            /// Requires exactly `w` acknowledgements (overrides the level).
            ///
            /// # Example
            ///
            /// ```no_run
            /// # async fn demo(client: geokv_client::Client, ctx: geokv_client::CausalContext) -> Result<(), geokv_client::ClientError> {
            #[doc = concat!(" ", $call, ".w(3).await?;")]
            /// # Ok(()) }
            /// ```
            pub fn w(mut self, w: u32) -> Self {
                self.options.w = Some(w);
                self
            }

            /// Deadline of this write.
            ///
            /// # Example
            ///
            /// ```no_run
            /// # async fn demo(client: geokv_client::Client, ctx: geokv_client::CausalContext) -> Result<(), geokv_client::ClientError> {
            #[doc = concat!(" ", $call, ".timeout(std::time::Duration::from_secs(1)).await?;")]
            /// # Ok(()) }
            /// ```
            pub fn timeout(mut self, timeout: Duration) -> Self {
                self.options.timeout = Some(timeout);
                self
            }

            /// The keyspace, wire options and deadline after applying defaults.
            fn resolved(&self) -> (String, pb::RequestOptions, Duration) {
                let defaults = self.client.defaults();
                let timeout = self.options.timeout.unwrap_or(defaults.timeout);
                let keyspace = self
                    .options
                    .keyspace
                    .clone()
                    .unwrap_or_else(|| defaults.keyspace.clone());
                let level = self.options.consistency.unwrap_or(defaults.consistency);
                (
                    keyspace,
                    wire_options(level, self.options.w, timeout),
                    timeout,
                )
            }
        }
    };
}

/// A put being configured; `.await` it to send it. Built by [`Client::put`],
/// [`Client::put_with_context`] and [`Client::resolve`].
///
/// # Example
///
/// ```no_run
/// # async fn demo(client: geokv_client::Client) -> Result<(), geokv_client::ClientError> {
/// let read = client.get("k").await?;
/// client.put("k", "v2").context(&read.context).w(2).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until it is awaited"]
pub struct Put {
    client: Client,
    key: Vec<u8>,
    value: Vec<u8>,
    context: CausalContext,
    options: WriteOptions,
}

write_option_setters!(Put, "client.put(\"k\", \"v\")");

impl Put {
    pub(crate) fn new(client: Client, key: Vec<u8>, value: Vec<u8>) -> Self {
        Put {
            client,
            key,
            value,
            context: CausalContext::empty(),
            options: WriteOptions::default(),
        }
    }

    /// Replaces the versions `context` covers instead of adding a sibling.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo(client: geokv_client::Client) -> Result<(), geokv_client::ClientError> {
    /// let read = client.get("k").await?;
    /// client.put("k", "v").context(&read.context).await?;
    /// # Ok(()) }
    /// ```
    pub fn context(mut self, context: &CausalContext) -> Self {
        self.context = context.clone();
        self
    }

    async fn send(self) -> Result<PutResult, ClientError> {
        let (keyspace, options, timeout) = self.resolved();
        let message = pb::PutRequest {
            keyspace,
            key: self.key,
            value: self.value,
            context: self.context.to_wire(),
            options: Some(options),
        };
        let token = self.client.token();
        let (answer, coordinator) = self
            .client
            .call("put", false, |mut kv| {
                let request = request(message.clone(), timeout, token.as_ref());
                async move { kv.put(request).await.map(tonic::Response::into_inner) }
            })
            .await?;
        Ok(PutResult::from_wire(answer, coordinator))
    }
}

impl IntoFuture for Put {
    type Output = Result<PutResult, ClientError>;
    type IntoFuture = BoxFuture<'static, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        let span = tracing::debug_span!(
            "geokv.client.put",
            key_len = self.key.len(),
            value_len = self.value.len()
        );
        Box::pin(self.send().instrument(span))
    }
}

/// A delete being configured; `.await` it to send it. Built by
/// [`Client::delete`].
///
/// # Example
///
/// ```no_run
/// use geokv_client::ConsistencyLevel;
///
/// # async fn demo(client: geokv_client::Client) -> Result<(), geokv_client::ClientError> {
/// let read = client.get("k").await?;
/// client.delete("k", &read.context).consistency(ConsistencyLevel::Quorum).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until it is awaited"]
pub struct Delete {
    client: Client,
    key: Vec<u8>,
    context: CausalContext,
    options: WriteOptions,
}

write_option_setters!(Delete, "client.delete(\"k\", &ctx)");

impl Delete {
    pub(crate) fn new(client: Client, key: Vec<u8>, context: CausalContext) -> Self {
        Delete {
            client,
            key,
            context,
            options: WriteOptions::default(),
        }
    }

    async fn send(self) -> Result<DeleteResult, ClientError> {
        let (keyspace, options, timeout) = self.resolved();
        let message = pb::DeleteRequest {
            keyspace,
            key: self.key,
            context: self.context.to_wire(),
            options: Some(options),
        };
        let token = self.client.token();
        let (answer, coordinator) = self
            .client
            .call("delete", false, |mut kv| {
                let request = request(message.clone(), timeout, token.as_ref());
                async move { kv.delete(request).await.map(tonic::Response::into_inner) }
            })
            .await?;
        Ok(DeleteResult::from_wire(answer, coordinator))
    }
}

impl IntoFuture for Delete {
    type Output = Result<DeleteResult, ClientError>;
    type IntoFuture = BoxFuture<'static, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        let span = tracing::debug_span!("geokv.client.delete", key_len = self.key.len());
        Box::pin(self.send().instrument(span))
    }
}
