//! The auth state on the wire (`SyncAuth`): the message form and what the
//! receiving side does (install the offer, answer with the state in force,
//! record the sender's clock offset).
//! The calling side — anti-entropy with one random member every second and
//! a push right after a change — is `node::auth_sync` (it needs the peer
//! channels, which sit above this module).
//!
//! Must not: merge states itself (that is [`super::Auth::install`]).

use super::{Auth, AuthState};
use crate::proto::v1::internode::AuthMessage;

/// A state as sent on the wire, with this node's wall clock now (its
/// peers measure their offset to it: `peer_clocks`).
pub fn to_message(state: &AuthState) -> AuthMessage {
    AuthMessage {
        version: state.version(),
        json: serde_json::to_vec(state).expect("auth state serialises"),
        sent_at_ms: super::now_ms(),
    }
}

/// A state received from a peer (`None` for an empty offer).
pub fn from_message(msg: &AuthMessage) -> Result<Option<AuthState>, serde_json::Error> {
    if msg.json.is_empty() {
        return Ok(None);
    }
    serde_json::from_slice(&msg.json).map(Some)
}

/// Why `SyncAuth` did not take an offer.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The offer does not decode: nothing was installed.
    #[error("auth state does not decode: {0}")]
    Decode(serde_json::Error),
    /// Saving the merged state failed: the engine may have written it (it
    /// then loads on the next start).
    #[error("{0}; it may have been saved")]
    Store(#[from] super::store::StoreError),
    /// Its clock is too far ahead of this node's: nothing was installed.
    /// The message opens with the reason ([`super::spread::CLOCK_AHEAD`]),
    /// which the pushing node names in its answer.
    #[error("{reason}: {0}", reason = .0.reason())]
    Refused(super::InstallError),
}

impl From<super::InstallError> for ServeError {
    fn from(e: super::InstallError) -> Self {
        match e {
            super::InstallError::Store(e) => ServeError::Store(e),
            e => ServeError::Refused(e),
        }
    }
}

/// Its answer: "nothing applied" (INVALID_ARGUMENT) for an offer that does
/// not decode, "maybe" (INTERNAL) for a failed save (review-fix-types T2:
/// both said "no").
impl From<ServeError> for crate::error::GeokvError {
    fn from(e: ServeError) -> Self {
        use crate::error::GeokvError;
        match e {
            ServeError::Decode(_) | ServeError::Refused(_) => {
                GeokvError::InvalidArgument(e.to_string())
            }
            ServeError::Store(_) => GeokvError::Internal(e.to_string()),
        }
    }
}

/// What `SyncAuth` does on the receiving side: install the offer, answer
/// with the state in force.
pub fn serve(auth: &Auth, msg: &AuthMessage) -> Result<AuthMessage, ServeError> {
    if let Some(offered) = from_message(msg).map_err(ServeError::Decode)? {
        auth.install(offered)?;
    }
    Ok(to_message(&auth.state()))
}

/// [`serve`] of an offer from the peer `from` (its id; empty: unknown)
/// that arrived at `received_ms` (this node's wall clock, read when the
/// call reached its handler, before any queue: review-clock34b L2), whose
/// clock offset is recorded first ([`Auth::heard_clock`]: one way, low by
/// the message's delay).
pub fn serve_from(
    auth: &Auth,
    from: &str,
    received_ms: u64,
    msg: &AuthMessage,
) -> Result<AuthMessage, ServeError> {
    let offset = super::peer_clocks::one_way(msg.sent_at_ms, received_ms);
    auth.heard_clock(from, offset);
    serve(auth, msg)
}
