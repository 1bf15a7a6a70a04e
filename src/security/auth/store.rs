//! The auth state in node metadata: serde JSON under the `auth` key of the
//! `meta` column family (next to the layout).
//!
//! Must not: merge states or talk to peers.

use super::model::AuthState;
use crate::engine::{Cf, Engine, EngineError, WriteBatch};

/// The `meta` key of the persisted auth state.
pub const AUTH_KEY: &[u8] = b"auth";

/// The persisted auth state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("auth state in meta: {0}")]
    Engine(#[from] EngineError),
    #[error("the auth state in meta does not decode: {0}")]
    Decode(#[from] serde_json::Error),
}

/// The persisted state, or the empty one (version 0).
pub fn load(engine: &dyn Engine) -> Result<AuthState, StoreError> {
    match engine.get_raw(Cf::Meta, AUTH_KEY)? {
        None => Ok(AuthState::default()),
        Some(bytes) => Ok(serde_json::from_slice(&bytes)?),
    }
}

/// Persists `state` (replacing the one stored), synced whatever the
/// node's durability: a change acknowledged here, or a peer's answer that
/// it holds one, survives a power loss (audit12-32 M1). Auth states change
/// rarely, so the fsync costs nothing that matters.
pub fn save(engine: &dyn Engine, state: &AuthState) -> Result<(), StoreError> {
    let mut batch = WriteBatch::new();
    batch.put_raw(Cf::Meta, AUTH_KEY, &serde_json::to_vec(state)?);
    engine.write(batch)?;
    if !engine.write_waits_for_sync() {
        engine.flush()?;
    }
    Ok(())
}
