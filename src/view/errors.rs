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
    /// The change built on this node's layout of `version`, which is not
    /// the one its members hold (a fork: review-layout26 M2).
    #[error("this node's layout v{version} ({ours:032x}) is not the one its members hold (a fork): {refused} of them refused the change for it; {}; {}", adopted_text(*version, *adopted), if *maybe_applied { "the change may still be applied: check the layout version before retrying" } else { "the change was not applied: retry it on the layout in force" })]
    Forked {
        version: u64,
        ours: u128,
        /// The layout adopted in place of this node's, if one is held by
        /// a quorum of its voters.
        adopted: Option<u128>,
        refused: usize,
        maybe_applied: bool,
    },
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
            ProposeError::NotNext { .. }
            | ProposeError::Concurrent { .. }
            | ProposeError::Forked { .. } => 409,
            ProposeError::Cas(_) => 503,
            ProposeError::View(_) | ProposeError::NotInstalled { .. } => 500,
        }
    }
}

fn adopted_text(version: u64, adopted: Option<u128>) -> String {
    match adopted {
        Some(d) => format!("this node adopted v{version} {d:032x}, held by a quorum of its voters"),
        None => format!("no other v{version} is held by a quorum of its voters among them, so nothing was adopted: find which nodes hold which (`geokv ring` on each)"),
    }
}
