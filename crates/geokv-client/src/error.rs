//! [`ClientError`]: every way an SDK call can fail, carrying the gRPC code and
//! message; a [`tonic::Status`] is classified in `from_status`.
//!
//! Owns the retriable-vs-fatal split the retry loop relies on. Must not decide
//! *whether* to retry a given call (that is `retry.rs`, which also knows
//! whether the call is idempotent).
use std::time::Duration;

use tonic::Code;

mod from_status;

/// An error returned by the geokv client SDK.
///
/// Each variant carries the server's (or transport's) message; [`code`]
/// gives the gRPC status code, so callers can print `error: <code>: <message>`
/// as the `geokv` CLI does.
///
/// [`code`]: ClientError::code
///
/// # Example
///
/// ```no_run
/// use geokv_client::{Client, ClientError};
///
/// # async fn demo(client: Client) {
/// match client.get("user:42").await {
///     Ok(read) => println!("{} sibling(s)", read.siblings.len()),
///     Err(ClientError::Unavailable { message }) => eprintln!("not enough replicas: {message}"),
///     Err(err) if err.is_retriable() => eprintln!("transient, try later: {err}"),
///     Err(err) => eprintln!("error: {:?}: {err}", err.code()),
/// }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// Too few replicas were alive for the consistency level, known before
    /// anything was sent (gRPC `UNAVAILABLE` from a geokv node, which marks
    /// it `geokv-applied: no`): nothing was applied, so even a write may be
    /// sent again. Also a request the node dropped because its body stopped
    /// arriving (`DEADLINE_EXCEEDED` with `geokv-applied: no`, the node's
    /// body timeout: no handler had it), so [`code`](ClientError::code) is
    /// `UNAVAILABLE` for it too.
    #[error("unavailable: {message}")]
    Unavailable {
        /// The server's explanation (typically: how many replicas were
        /// needed, how many answered).
        message: String,
    },
    /// The deadline passed before the level was reached: either the server
    /// answered `DEADLINE_EXCEEDED` (without `geokv-applied: no`, which is
    /// [`Unavailable`](ClientError::Unavailable)) or the client gave up
    /// waiting. A write
    /// that timed out may have been applied (read it back before writing
    /// again, with the context read).
    #[error("timeout: {message}")]
    Timeout {
        /// What timed out.
        message: String,
    },
    /// The request was malformed (empty key, unknown level for the operation,
    /// a context that does not decode, a bad endpoint URL ...).
    #[error("invalid argument: {message}")]
    InvalidArgument {
        /// What was wrong with it.
        message: String,
    },
    /// The cluster is not in a state that allows the request (for example an
    /// explicit count larger than the replication factor).
    #[error("failed precondition: {message}")]
    FailedPrecondition {
        /// Why the request cannot be served.
        message: String,
    },
    /// Something the request names does not exist (for example the keyspace).
    #[error("not found: {message}")]
    NotFound {
        /// What is missing.
        message: String,
    },
    /// The client could not connect to the endpoint: the request never
    /// reached a coordinator, so even a write can safely be sent elsewhere.
    #[error("transport: {message}")]
    Transport {
        /// The connect error.
        message: String,
    },
    /// The connection broke while the request was in flight (e.g. the
    /// coordinator was killed), or an `UNAVAILABLE` came without a geokv
    /// node's verdict (a transport or proxy error): the request may or may
    /// not have been applied, so only idempotent calls are retried, on
    /// another endpoint.
    #[error("connection lost: {message}")]
    ConnectionLost {
        /// What broke.
        message: String,
    },
    /// The node shed the request before doing anything with it: it had too
    /// many client requests in flight (gRPC `RESOURCE_EXHAUSTED` with
    /// `geokv-applied: no`). Nothing was applied, so even a write may be
    /// sent again, after `retry_after` (the node's `retry-after-ms` hint;
    /// the SDK's own retries already wait at least that long).
    ///
    /// # Example
    ///
    /// ```no_run
    /// use geokv_client::{Client, ClientError};
    ///
    /// # async fn demo(client: Client) -> Result<(), ClientError> {
    /// loop {
    ///     match client.put("user:42", b"v".to_vec()).await {
    ///         Err(ClientError::Overloaded { retry_after, .. }) => {
    ///             // Back off as the node asks (or 100 ms without a hint).
    ///             let pause = retry_after.unwrap_or(std::time::Duration::from_millis(100));
    ///             tokio::time::sleep(pause).await;
    ///         }
    ///         other => return other.map(|_| ()),
    ///     }
    /// }
    /// # }
    /// ```
    #[error("overloaded: {message}")]
    Overloaded {
        /// The node's explanation (its bound on requests in flight).
        message: String,
        /// How long the node asks the client to wait before trying again.
        retry_after: Option<Duration>,
    },
    /// Any other gRPC status. `ABORTED` means the write was sent and replicas
    /// failed (or the replica a write was forwarded to failed before
    /// answering): it may have been applied.
    #[error("{code:?}: {message}")]
    Other {
        /// The gRPC status code.
        code: Code,
        /// The status message.
        message: String,
    },
}

impl ClientError {
    /// The gRPC status code of this error (`Timeout` is `DEADLINE_EXCEEDED`,
    /// `Transport` is `UNAVAILABLE`).
    ///
    /// # Example
    ///
    /// ```no_run
    /// use geokv_client::ClientError;
    ///
    /// let err = ClientError::Timeout { message: "2 of 3 answered".into() };
    /// assert_eq!(err.code(), tonic::Code::DeadlineExceeded);
    /// ```
    pub fn code(&self) -> Code {
        match self {
            ClientError::Unavailable { .. }
            | ClientError::Transport { .. }
            | ClientError::ConnectionLost { .. } => Code::Unavailable,
            ClientError::Timeout { .. } => Code::DeadlineExceeded,
            ClientError::InvalidArgument { .. } => Code::InvalidArgument,
            ClientError::FailedPrecondition { .. } => Code::FailedPrecondition,
            ClientError::NotFound { .. } => Code::NotFound,
            ClientError::Overloaded { .. } => Code::ResourceExhausted,
            ClientError::Other { code, .. } => *code,
        }
    }

    /// The message, without the code.
    ///
    /// # Example
    ///
    /// ```no_run
    /// use geokv_client::ClientError;
    ///
    /// let err = ClientError::NotFound { message: "keyspace nope".into() };
    /// assert_eq!(err.message(), "keyspace nope");
    /// ```
    pub fn message(&self) -> &str {
        match self {
            ClientError::Unavailable { message }
            | ClientError::Timeout { message }
            | ClientError::InvalidArgument { message }
            | ClientError::FailedPrecondition { message }
            | ClientError::NotFound { message }
            | ClientError::Transport { message }
            | ClientError::ConnectionLost { message }
            | ClientError::Overloaded { message, .. }
            | ClientError::Other { message, .. } => message,
        }
    }

    /// How long the node asked to wait before sending the request again
    /// (only [`Overloaded`](ClientError::Overloaded) carries a hint).
    ///
    /// # Example
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use geokv_client::ClientError;
    ///
    /// let err = ClientError::Overloaded {
    ///     message: "2048 client requests in flight".into(),
    ///     retry_after: Some(Duration::from_millis(50)),
    /// };
    /// assert_eq!(err.retry_after(), Some(Duration::from_millis(50)));
    /// assert!(err.is_retriable() && !err.may_have_been_applied());
    /// ```
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ClientError::Overloaded { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Whether the same request may succeed if sent again (possibly to another
    /// coordinator): unavailable, timeout, transport, aborted and
    /// resource-exhausted errors. Retrying a *write* is only safe when
    /// [`reached_server`](ClientError::reached_server) is false; the SDK
    /// enforces that itself.
    ///
    /// # Example
    ///
    /// ```no_run
    /// use geokv_client::ClientError;
    ///
    /// assert!(ClientError::Transport { message: "refused".into() }.is_retriable());
    /// assert!(!ClientError::InvalidArgument { message: "empty key".into() }.is_retriable());
    /// ```
    pub fn is_retriable(&self) -> bool {
        match self {
            ClientError::Unavailable { .. }
            | ClientError::Timeout { .. }
            | ClientError::Transport { .. }
            | ClientError::Overloaded { .. }
            | ClientError::ConnectionLost { .. } => true,
            ClientError::Other { code, .. } => {
                matches!(code, Code::Aborted | Code::ResourceExhausted)
            }
            _ => false,
        }
    }

    /// False only when the request provably never reached a coordinator (a
    /// connect error). See [`may_have_been_applied`](ClientError::may_have_been_applied)
    /// for what decides whether a write may be sent again.
    ///
    /// # Example
    ///
    /// ```no_run
    /// use geokv_client::ClientError;
    ///
    /// assert!(!ClientError::Transport { message: "refused".into() }.reached_server());
    /// assert!(ClientError::Timeout { message: "late".into() }.reached_server());
    /// ```
    pub fn reached_server(&self) -> bool {
        !matches!(self, ClientError::Transport { .. })
    }

    /// Whether a failed write may nevertheless have been applied. False for a
    /// connect error and for `UNAVAILABLE` from a node (nothing was sent to
    /// a replica), and for requests refused as invalid; true for timeouts,
    /// `ABORTED`, broken connections and anything unknown. Only a write for
    /// which this is false is retried by the SDK (a retry of an applied
    /// write would be a second version, a sibling of the first).
    ///
    /// # Example
    ///
    /// ```no_run
    /// use geokv_client::ClientError;
    ///
    /// assert!(!ClientError::Unavailable { message: "1 of 2 alive".into() }.may_have_been_applied());
    /// assert!(ClientError::Timeout { message: "late".into() }.may_have_been_applied());
    /// ```
    pub fn may_have_been_applied(&self) -> bool {
        !matches!(
            self,
            ClientError::Transport { .. }
                | ClientError::Unavailable { .. }
                | ClientError::Overloaded { .. }
                | ClientError::InvalidArgument { .. }
                | ClientError::FailedPrecondition { .. }
                | ClientError::NotFound { .. }
        )
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        ClientError::InvalidArgument {
            message: message.into(),
        }
    }
}

/// The canonical upper-case gRPC name of a code (`UNAVAILABLE`,
/// `DEADLINE_EXCEEDED` ...), as printed by the CLI.
///
/// # Example
///
/// ```no_run
/// assert_eq!(geokv_client::code_name(tonic::Code::DeadlineExceeded), "DEADLINE_EXCEEDED");
/// ```
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests;
