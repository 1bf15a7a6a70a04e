//! Why an internode call failed, classified once from the peer's status:
//! never sent, timed out, refused as planned on a stale view, or an error
//! with the peer's verdict on whether anything was applied (its
//! `geokv-applied` metadata). A batch entry's result is its peer's answer,
//! classified from its typed fields only (code, `applied`, layout version:
//! `replica_batch::entry_result`), never as a connection failure.
//!
//! Must not: retry, or decide what a failure means for a request (callers
//! do, from [`TransportError::nothing_applied`]).

/// Why an internode call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransportError {
    /// Nothing was sent.
    #[error("{peer}: link cut (fault injection)")]
    Cut { peer: String },
    /// Nothing was sent: the connection could not be established, the
    /// call was refused before it went out, or its caller gave up before
    /// its request was read (`transport::gate`); `message` says which.
    #[error("{peer}: not sent: {message}")]
    NotSent { peer: String, message: String },
    /// Sent (or maybe sent): no answer in time.
    #[error("{peer}: no answer within {ms} ms")]
    Timeout { peer: String, ms: u64 },
    /// Nothing was applied: the peer is on layout `version`, newer than
    /// the one the write was planned on, and replicates the key differently
    /// (`view::stale_view`).
    #[error("{peer}: on layout v{version}, refused a write planned on an older one")]
    StaleView { peer: String, version: u64 },
    #[error("{peer}: {code:?}: {message}")]
    Rpc {
        peer: String,
        code: PeerCode,
        message: String,
        verdict: PeerVerdict,
    },
}

/// A peer's status code, kept as it sent it (`crate::error` maps it).
pub use crate::error::PeerCode;

/// What a failed call's status says about the peer having applied it
/// (its `geokv-applied` metadata, see [`crate::proto::APPLIED_METADATA`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerVerdict {
    /// The peer answered that nothing was applied.
    NothingApplied,
    /// The peer answered with its own error after it may have applied it.
    MaybeApplied,
    /// No verdict from the peer: the connection or the HTTP/2 layer failed
    /// (e.g. a reset after the request was sent).
    Unknown,
}

impl TransportError {
    /// Provably not applied by the peer: never sent, or refused by it
    /// before anything was written.
    pub fn nothing_applied(&self) -> bool {
        match self {
            TransportError::Cut { .. }
            | TransportError::NotSent { .. }
            | TransportError::StaleView { .. } => true,
            TransportError::Rpc { verdict, .. } => *verdict == PeerVerdict::NothingApplied,
            TransportError::Timeout { .. } => false,
        }
    }
}

/// Classifies a failed call's status: the transport's own failures (a
/// connect that failed, a deadline with no answer from the peer), else
/// what the peer [`answered`].
pub(crate) fn status_error(peer: &str, s: tonic::Status, ms: u64) -> TransportError {
    let meta = |k: &str| s.metadata().get(k).and_then(|v| v.to_str().ok());
    let verdict = match meta(crate::proto::APPLIED_METADATA) {
        Some("no") => PeerVerdict::NothingApplied,
        Some(_) => PeerVerdict::MaybeApplied,
        None => PeerVerdict::Unknown,
    };
    let newer = meta(crate::proto::LAYOUT_VERSION_METADATA).and_then(|v| v.parse::<u64>().ok());
    if verdict == PeerVerdict::Unknown && connect_failed(&s) {
        let message = match super::tls::rustls_cause(&s) {
            Some(e) => handshake_failed(&super::tls::explain(e, super::tls::peer_word(peer))),
            None => format!("could not connect: {}", s.message()),
        };
        return TransportError::NotSent {
            peer: peer.to_string(),
            message,
        };
    }
    if verdict == PeerVerdict::Unknown && s.code() == tonic::Code::DeadlineExceeded {
        return TransportError::Timeout {
            peer: peer.to_string(),
            ms,
        };
    }
    answered(peer, s.code(), s.message().to_string(), verdict, newer)
}

/// What a peer answered, from its typed parts: a stale-view refusal (a
/// FAILED_PRECONDITION naming the peer's newer layout `newer`), else its
/// code, message and verdict. Never "not sent" nor a timeout: the peer
/// got the request. A single call's status and a batch entry's result
/// (`replica_batch::entry_result`) both end here.
pub(crate) fn answered(
    peer: &str,
    code: tonic::Code,
    message: String,
    verdict: PeerVerdict,
    newer: Option<u64>,
) -> TransportError {
    if let (Some(version), tonic::Code::FailedPrecondition) = (newer, code) {
        return TransportError::StaleView {
            peer: peer.to_string(),
            version,
        };
    }
    TransportError::Rpc {
        peer: peer.to_string(),
        code: code.into(),
        message,
        verdict,
    }
}

fn handshake_failed(why: &str) -> String {
    format!("TLS handshake failed: {why}")
}

/// `err` told by the TLS failure its connection noted, if any: a call whose
/// connection ended without a verdict of the peer (hyper's "operation was
/// canceled", a reset) after the peer refused this node's certificate at
/// the handshake was never handled by it (`tls::LastFailure`).
pub(crate) fn with_tls_failure(err: TransportError, noted: Option<String>) -> TransportError {
    match (err, noted) {
        (
            TransportError::Rpc {
                peer,
                code,
                verdict: PeerVerdict::Unknown,
                ..
            },
            Some(why),
        ) if matches!(
            code.grpc(),
            tonic::Code::Cancelled | tonic::Code::Unavailable | tonic::Code::Unknown
        ) =>
        {
            TransportError::NotSent {
                peer,
                message: handshake_failed(&why),
            }
        }
        (err, _) => err,
    }
}

/// tonic reports a failed connect as `UNAVAILABLE` with a `ConnectError` in
/// the source chain; nothing was sent then.
fn connect_failed(s: &tonic::Status) -> bool {
    let mut source = std::error::Error::source(s);
    while let Some(err) = source {
        if err.is::<tonic::ConnectError>() {
            return true;
        }
        source = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A replica's stale-view refusal reaches the coordinator typed, with
    /// the replica's layout version, and as "nothing applied".
    #[test]
    fn a_stale_view_refusal_is_typed_and_applied_nothing() {
        let s: tonic::Status = crate::error::GeokvError::StaleView {
            planned_on: 1,
            replica_version: 3,
        }
        .into();
        let e = status_error("dc1-n2", s, 100);
        assert!(
            matches!(&e, TransportError::StaleView { version: 3, peer } if peer == "dc1-n2"),
            "{e:?}"
        );
        assert!(e.nothing_applied());
    }
}
