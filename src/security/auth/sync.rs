//! The auth state on the wire (`SyncAuth`): the message form and what the
//! receiving side does (install the offer, answer with the state in force).
//! The calling side — anti-entropy with one random member every second and
//! a push right after a change — is `node::auth_sync` (it needs the peer
//! channels, which sit above this module).
//!
//! Must not: merge states itself (that is [`super::Auth::install`]).

use super::{Auth, AuthState};
use crate::proto::v1::internode::AuthMessage;

/// A state as sent on the wire.
pub fn to_message(state: &AuthState) -> AuthMessage {
    AuthMessage {
        version: state.version,
        json: serde_json::to_vec(state).expect("auth state serialises"),
    }
}

/// A state received from a peer (`None` for an empty offer).
pub fn from_message(msg: &AuthMessage) -> Result<Option<AuthState>, serde_json::Error> {
    if msg.json.is_empty() {
        return Ok(None);
    }
    serde_json::from_slice(&msg.json).map(Some)
}

/// What `SyncAuth` does on the receiving side: install the offer, answer
/// with the state in force.
pub fn serve(auth: &Auth, msg: &AuthMessage) -> Result<AuthMessage, String> {
    if let Some(offered) =
        from_message(msg).map_err(|e| format!("auth state does not decode: {e}"))?
    {
        auth.install(offered).map_err(|e| e.to_string())?;
    }
    Ok(to_message(&auth.state()))
}
