//! The errors of installing and proposing a layout ([`super::Cluster`]):
//! what each says and the HTTP status an admin answer carries.
//! Must not: decide anything.

use super::cas::CasError;
use super::store::StoreError;
use crate::ring::NotAMember;

/// A layout could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error("layout v{version} cannot be derived: {source}")]
    Derive { version: u64, source: NotAMember },
    #[error("persisting layout v{version}: {source}")]
    Persist { version: u64, source: StoreError },
    /// Two different layouts of one version (a fork): the one in force
    /// stays, the other is refused (`geokv_layout_forks_total`).
    #[error("two different layouts have version {version}: refused {refused:032x}, the one in force ({installed:032x}) stays; a fork (nodes seeded from different topology files, a node not running the layout CAS, or an acceptor that lost its state): find which nodes hold which")]
    Fork {
        version: u64,
        installed: u128,
        refused: u128,
    },
}

/// A proposed layout was refused.
#[derive(Debug, thiserror::Error)]
pub enum ProposeError {
    /// A change must be exactly the current version + 1.
    #[error("layout v{proposed} refused: the current layout is v{current}, a change must be v{}", current + 1)]
    NotNext { current: u64, proposed: u64 },
    /// Another change won the version (it is installed here now).
    #[error("the layout changed concurrently: version {version} is now {now}; retry")]
    Concurrent { version: u64, now: String },
    /// No decision: the error says whether it may still be applied.
    #[error(transparent)]
    Cas(#[from] CasError),
    #[error(transparent)]
    View(#[from] ViewError),
    /// Decided (applied cluster-wide), but this node could not install it.
    #[error("layout v{version} was chosen ({}), but this node could not install it: {source}", if *ours { "the change is applied" } else { "another change won the version" })]
    NotInstalled {
        version: u64,
        ours: bool,
        source: ViewError,
    },
}

impl ProposeError {
    /// The HTTP status an admin answer carries: 409 when another change
    /// won (re-read and retry), 503 when undecided (the text says whether
    /// it may still be applied), 500 when this node failed.
    pub fn status(&self) -> u16 {
        match self {
            ProposeError::NotNext { .. } | ProposeError::Concurrent { .. } => 409,
            ProposeError::Cas(_) => 503,
            ProposeError::View(_) | ProposeError::NotInstalled { .. } => 500,
        }
    }
}
