//! The errors of [`super::Auth`]: a request refused ([`AuthError`], with
//! its metric label and whether it is 401 or 403), a state that could not
//! be changed ([`AuthStateError`]) or a peer's state not installed
//! ([`InstallError`]), and the clock offset bound they share.
//! Must not: decide anything (the model and `Auth` do), or know gRPC or
//! HTTP.

use std::net::IpAddr;

use super::model::{ChangeError, Perm};
use super::{secret, store};

/// A request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("authentication required: send `authorization: Bearer ROLE:SECRET` (GEOKV_TOKEN) or a client certificate")]
    Missing,
    #[error("malformed authorization: expected `Bearer ROLE:SECRET`")]
    Malformed,
    #[error("invalid token for role '{0}'")]
    BadToken(String),
    #[error("the client certificate names role '{0}', which does not exist")]
    UnknownRole(String),
    /// The verification ended without a verdict (it panicked, or the node
    /// is shutting down): nothing is known about the token.
    #[error(
        "the token could not be verified now (its verification ended without a verdict); try again"
    )]
    Unverified,
    #[error("too many failed authentications from {addr}; try again in {retry_after_secs} s")]
    Throttled { addr: IpAddr, retry_after_secs: u64 },
    #[error("role '{role}' lacks {perm} permission on keyspace '{keyspace}'")]
    Denied {
        role: String,
        keyspace: String,
        perm: Perm,
    },
}

impl AuthError {
    /// The `reason` label of [`DENIED_METRIC`].
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing",
            AuthError::Malformed => "malformed",
            AuthError::BadToken(_) => "bad_token",
            AuthError::UnknownRole(_) => "unknown_role",
            AuthError::Unverified => "unverified",
            AuthError::Throttled { .. } => "throttled",
            AuthError::Denied { .. } => "permission",
        }
    }

    /// Authenticated but not allowed (403 / `PERMISSION_DENIED`), as
    /// opposed to not authenticated (401 / `UNAUTHENTICATED`).
    pub fn is_denied(&self) -> bool {
        matches!(self, AuthError::Denied { .. })
    }
}

/// A state could not be installed or changed.
#[derive(Debug, thiserror::Error)]
pub enum AuthStateError {
    #[error(transparent)]
    Change(#[from] ChangeError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Hash(#[from] secret::HashError),
    /// The state's newest change is stamped more than [`MAX_OFFSET_MS`]
    /// ahead of this node's wall clock: a change made now would be stamped
    /// in the future too (nothing was changed).
    #[error("clock ahead: the auth state's newest change is {ahead_ms} ms ahead of this node's clock (more than {MAX_OFFSET_MS} ms); nothing was changed: check the nodes' clocks (NTP) and retry once this node's clock has caught up")]
    ClockAhead { ahead_ms: u64 },
    /// This node's clock is more than [`MAX_OFFSET_MS`] ahead of or behind
    /// most of its peers' (review-authq33 H1, review-clock34 H1): nothing
    /// was stamped or saved.
    #[error(transparent)]
    FarFromPeers(#[from] super::peer_clocks::FarFromPeers),
    /// Fewer than a quorum of the members (this node counted) are known
    /// within the bound since this node started, heard with an offset
    /// within it or with no clock (review-clock35 M1, review-clock35b H1):
    /// nothing was stamped or saved; it passes once a quorum of the
    /// members is heard and known within (seconds when they are reachable;
    /// after a restart, members down since count for neither side).
    #[error(transparent)]
    NotYetHeard(#[from] super::peer_clocks::NotYetHeard),
    /// The newest stamp seen is the largest there is (nothing was changed).
    #[error("the auth state's clock is exhausted (its newest stamp is the largest there is); nothing was changed")]
    ClockExhausted,
}

impl From<super::peer_clocks::Hold> for AuthStateError {
    fn from(hold: super::peer_clocks::Hold) -> Self {
        use super::peer_clocks::Hold;
        match hold {
            Hold::NotHeard(wait) | Hold::NotWithin(wait) => wait.into(),
            Hold::Far(far) => far.into(),
        }
    }
}

/// How far (ms) a state's clock may be ahead of this node's wall clock:
/// further, a peer's state is refused and no change is made here (as
/// CockroachDB's maximum clock offset; review-auth29 M2); and how far this
/// node's clock may be ahead of most of its peers' for a change to be made
/// here (`peer_clocks`).
pub const MAX_OFFSET_MS: u64 = 60_000;

/// A peer's state was not installed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// Its clock is more than [`MAX_OFFSET_MS`] ahead of this node's.
    #[error("refused a peer's auth state whose clock is {ahead_ms} ms ahead of this node's (more than {MAX_OFFSET_MS} ms): check the nodes' clocks (NTP); nothing was installed")]
    ClockAhead { ahead_ms: u64 },
}

impl InstallError {
    /// The reason as a label (`SyncAuth`'s refusal, the metric).
    pub fn reason(&self) -> &'static str {
        match self {
            InstallError::Store(_) => "store",
            InstallError::ClockAhead { .. } => super::spread::CLOCK_AHEAD,
        }
    }
}
