//! The errors of installing and proposing a layout ([`super::Cluster`])
//! and of its compare-and-set ([`CasError`], `super::cas`): what each
//! says, whether it may be applied, and the HTTP status an admin answer
//! carries; why one CAS call brought no answer ([`CallError`]); why this
//! node takes no requests ([`NotServing`]).
//! Must not: decide anything.

use super::acceptor::AcceptorError;
use super::store::StoreError;
use crate::layout::Layout;
use crate::ring::NotAMember;
use crate::transport::TransportError;

/// Why this node takes no requests (`Cluster::serving`): owned by
/// `crate::error`, which wraps it typed in `GeokvError::NotReady` (an
/// import of `view` there would close a module cycle).
pub use crate::error::NotServing;

/// Why one layout CAS call (or the push of its base) brought no answer:
/// the proposer logs it and counts the acceptor as silent.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// A proposer with no network reached past its own acceptor.
    #[error("no network to the other members")]
    NoNetwork,
    /// A network that does not push layouts (`AcceptorNet::push`'s
    /// default).
    #[error("this network does not push layouts")]
    NoPush,
    /// This node's own acceptor's task failed.
    #[error("acceptor task: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// This node's acceptor state could not be read or written, or a
    /// peer's answer did not decode.
    #[error(transparent)]
    Acceptor(#[from] AcceptorError),
    /// The call to a peer failed (not sent, no answer in time, refused).
    #[error(transparent)]
    Transport(#[from] TransportError),
}

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
    /// A layout on one peer's word that the install guard refused
    /// (`view::guard`): `reason` is the metric's label, `why` says more.
    #[error("layout v{version} ({refused:032x}) refused on one peer's word ({reason}): {why}; it is installed once a quorum of its voters shows it, or with proof that it was chosen")]
    Unbacked {
        version: u64,
        refused: u128,
        reason: &'static str,
        why: String,
    },
    /// This node's acceptor state could not be read to check a layout, or
    /// to put the fork's Paxos instance aside in an adoption (`on_wrong_base`).
    #[error("layout v{version} not installed: reading this node's layout CAS state: {source}")]
    Acceptor {
        version: u64,
        source: super::acceptor::AcceptorError,
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
    /// won or the slot is decided elsewhere and this change was certainly
    /// not applied (re-read and retry; an `Undecided` slot is decided,
    /// this node learns it by gossip: review-layout28 L5), 503 when it
    /// may still be applied (review-final28 L2) or is undecided, 500 when
    /// this node failed.
    pub fn status(&self) -> u16 {
        match self {
            ProposeError::NotNext { .. }
            | ProposeError::Concurrent { .. }
            | ProposeError::Forked {
                maybe_applied: false,
                ..
            }
            | ProposeError::Cas(CasError::Undecided {
                maybe_applied: false,
                ..
            }) => 409,
            ProposeError::Forked { .. } => 503,
            ProposeError::Cas(_) => 503,
            ProposeError::View(_) | ProposeError::NotInstalled { .. } => 500,
        }
    }

    /// The `geokv-applied` verdict an admin answer carries: `no` only
    /// when the change was certainly not applied, else `maybe`.
    pub fn applied(&self) -> &'static str {
        match self {
            ProposeError::NotNext { .. } | ProposeError::Concurrent { .. } => "no",
            ProposeError::Forked { maybe_applied, .. } => verdict(*maybe_applied),
            ProposeError::Cas(e) => verdict(e.maybe_applied()),
            ProposeError::View(_) | ProposeError::NotInstalled { .. } => "maybe",
        }
    }
}

fn verdict(maybe_applied: bool) -> &'static str {
    if maybe_applied {
        "maybe"
    } else {
        "no"
    }
}

fn adopted_text(version: u64, adopted: Option<u128>) -> String {
    match adopted {
        Some(d) => format!("this node adopted v{version} {d:032x}, held by a quorum of its voters"),
        None => format!("no other v{version} is held by a quorum of its voters among them, so nothing was adopted: find which nodes hold which (`geokv ring` on each)"),
    }
}

/// A layout change that was not decided.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CasError {
    #[error("layout change v{slot} needs a majority of {members} members ({needed}{}); {answered} answered{}{}; {}", among(required), refusing(refused), silent(unanswered), applied(*maybe_applied))]
    NoMajority {
        slot: u64,
        members: usize,
        needed: usize,
        /// An acceptor that must be among them (the tie-breaker).
        required: Option<String>,
        /// How many answered for this attempt (promised, accepted, or
        /// refused a lower ballot).
        answered: usize,
        /// The acceptors that answered but refused for another reason
        /// (behind the base, on another base, or the slot decided there),
        /// by id (review-layout28 M2).
        refused: Vec<String>,
        /// The acceptors that did not answer, by id.
        unanswered: Vec<String>,
        maybe_applied: bool,
    },
    #[error("layout change v{slot} not decided within {secs} s: competing proposals kept preempting it; {}", applied(*maybe_applied))]
    Contended {
        slot: u64,
        secs: u64,
        maybe_applied: bool,
    },
    /// Too many acceptors hold another layout of version `slot - 1` than
    /// the one the change builds on for a quorum (review-layout26 M2).
    #[error("layout change v{slot} refused: {} acceptors hold another layout v{} than the one it builds on (a fork); {}", held.len(), slot - 1, applied(*maybe_applied))]
    WrongBase {
        slot: u64,
        /// Each refusing acceptor and the layout it holds.
        held: Vec<(String, Layout)>,
        /// What their answers carried of those layouts' lineages
        /// (`super::lineage::Lineages`; unknown from older acceptors).
        lineages: super::lineage::Lineages,
        maybe_applied: bool,
    },
    /// Too many acceptors have not installed version `slot - 1` yet for a
    /// quorum: they cannot check the change's base, so they refuse it
    /// (review-layout27 M2) until gossip or a push brings it.
    #[error("layout change v{slot} not decided within {secs} s: {} acceptors ({}) have not installed v{} yet and refuse changes built on it until they do (gossip brings it within seconds): retry; {}", behind.len(), behind.join(", "), slot - 1, applied(*maybe_applied))]
    Behind {
        slot: u64,
        secs: u64,
        behind: Vec<String>,
        maybe_applied: bool,
    },
    /// This change's Accept was sent, and the answers then showed a layout
    /// newer than the slot (`layout`, learned or held by a quorum): the
    /// slot is decided, but its value is not known from `layout` (it may be
    /// this change, built on since). `layout` is installed as gossip would
    /// (review-layout28 L4).
    #[error("layout change v{slot}: the layout moved on to v{} ({}) while this change was being accepted, so whether v{slot} is this change is not known; {}", layout.version, super::cas::describe(layout), applied(true))]
    Superseded {
        slot: u64,
        layout: Box<Layout>,
        /// What its holders' answers carried of its lineage (its proof of
        /// choice; unknown from older acceptors): installed with it.
        lineage: super::lineage::Lineage,
    },
    /// Acceptors answered that the slot is decided, but no quorum of them
    /// holds one layout of it, nor a quorum of its own voters: this node
    /// is behind and learns it by gossip (review-layout27 M3).
    #[error("layout v{slot} is already decided at {answered} acceptors, but no quorum of them holds one layout of it (a fork among them?), so this node took none: it learns v{slot} by gossip within seconds; re-read the layout before retrying; {}", applied(*maybe_applied))]
    Undecided {
        slot: u64,
        answered: usize,
        maybe_applied: bool,
    },
}

impl CasError {
    /// Whether an acceptor may hold the change (a later proposer may
    /// finish it): the outcome is unknown, not "refused".
    pub fn maybe_applied(&self) -> bool {
        match self {
            CasError::NoMajority { maybe_applied, .. }
            | CasError::Contended { maybe_applied, .. }
            | CasError::WrongBase { maybe_applied, .. }
            | CasError::Behind { maybe_applied, .. }
            | CasError::Undecided { maybe_applied, .. } => *maybe_applied,
            CasError::Superseded { .. } => true,
        }
    }
}

fn among(required: &Option<String>) -> String {
    (required.as_ref()).map_or(String::new(), |r| format!(", {r} among them"))
}

fn refusing(ids: &[String]) -> String {
    if ids.is_empty() {
        return String::new();
    }
    format!(
        ", {} refused (behind, on another base or decided there)",
        ids.join(", ")
    )
}

fn silent(ids: &[String]) -> String {
    if ids.is_empty() {
        return String::new();
    }
    format!(" (no answer from {})", ids.join(", "))
}

fn applied(maybe: bool) -> &'static str {
    if maybe {
        "it may still be applied: check the layout version before retrying"
    } else {
        "it was not applied"
    }
}
