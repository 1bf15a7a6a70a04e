//! How a [`tonic::Status`] becomes a [`ClientError`]: the one place a
//! status is classified (a broken connection, the client's own deadline, a
//! node's `geokv-applied` verdict, overload with its retry hint, a body
//! the node stopped waiting for). Must not decide whether to retry.

use std::error::Error as _;
use std::time::Duration;

use tonic::Code;

use super::ClientError;

impl From<tonic::Status> for ClientError {
    /// Classifies a status. A connect failure (tonic wraps it as `UNAVAILABLE`
    /// with a `ConnectError` in the source chain) becomes `Transport`; the
    /// channel's own deadline (`CANCELLED` caused by `TimeoutExpired`) becomes
    /// `Timeout`.
    fn from(status: tonic::Status) -> Self {
        let message = status.message().to_string();
        if source_chain_has::<tonic::ConnectError>(&status) {
            return ClientError::Transport {
                message: chain_message(&status),
            };
        }
        if source_chain_has::<tonic::TimeoutExpired>(&status) {
            return ClientError::Timeout {
                message: format!("client deadline expired ({message})"),
            };
        }
        // A connection that broke under the request (the coordinator was
        // killed or reset it): tonic reports UNKNOWN "transport error" (or
        // "Service was not ready: transport error" when the channel died),
        // and hyper's cancellation of the in-flight request as CANCELLED.
        // Checked after the client's own deadline, which is also CANCELLED.
        let broken = match status.code() {
            Code::Unknown => status.message().contains("transport error"),
            Code::Cancelled => true,
            _ => false,
        };
        // UNAVAILABLE means "nothing was applied" only when a geokv node
        // says so; from the transport (a keep-alive timeout, a refused
        // stream) or a proxy it may follow a request that was sent.
        let verdict = status
            .metadata()
            .get(crate::proto::APPLIED_METADATA)
            .and_then(|v| v.to_str().ok());
        let unavailable_unknown = status.code() == Code::Unavailable && verdict != Some("no");
        if broken || unavailable_unknown {
            return ClientError::ConnectionLost {
                message: chain_message(&status),
            };
        }
        // The node dropped the request because its body stopped arriving
        // (review-shed33 M2): no handler had it, so nothing was applied.
        // `Unavailable` already means "not applied, even a write may be
        // sent again" to every caller and to the retry loop; a new variant
        // would break callers' exhaustive matches.
        if status.code() == Code::DeadlineExceeded && verdict == Some("no") {
            return ClientError::Unavailable { message };
        }
        if status.code() == Code::ResourceExhausted && verdict == Some("no") {
            let retry_after = (status.metadata().get(crate::proto::RETRY_AFTER_METADATA))
                .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                .map(Duration::from_millis);
            return ClientError::Overloaded {
                message,
                retry_after,
            };
        }
        match status.code() {
            Code::Unavailable => ClientError::Unavailable { message },
            Code::DeadlineExceeded => ClientError::Timeout { message },
            Code::InvalidArgument => ClientError::InvalidArgument { message },
            Code::FailedPrecondition => ClientError::FailedPrecondition { message },
            Code::NotFound => ClientError::NotFound { message },
            code => ClientError::Other { code, message },
        }
    }
}

/// The status message followed by every distinct cause ("tcp connect error:
/// Connection refused (os error 111)"), so connect failures say why.
fn chain_message(status: &tonic::Status) -> String {
    let mut message = status.message().to_string();
    let mut source = status.source();
    while let Some(err) = source {
        let text = err.to_string();
        if !text.is_empty() && !message.contains(&text) {
            message = format!("{message}: {text}");
        }
        source = err.source();
    }
    message
}

fn source_chain_has<T: std::error::Error + 'static>(status: &tonic::Status) -> bool {
    let mut source = status.source();
    while let Some(err) = source {
        if err.is::<T>() {
            return true;
        }
        source = err.source();
    }
    false
}
