//! What the layout CAS driver (`super::cas`) concludes when an attempt
//! ended without choosing: the slot learned from acceptors that answered
//! it is decided ([`learn`], I8 of `layout::consensus`), whether a
//! decided layout leaves this change's fate unknown ([`settled`]), or the
//! error after the retries ran out ([`given_up`]).
//! Must not: do I/O, install or spread layouts, or take one acceptor's
//! word for the slot unless its holders alone leave no quorum.

use super::cas::Decided;
use super::errors::CasError;
use super::lineage::Lineages;
use super::Source;
use crate::layout::Layout;

/// The slot learned from acceptors that answered it is decided without a
/// quorum of them agreeing on one layout (`held`, each and its layout):
/// a layout of a later version (the slot is decided; merged on install as
/// gossip would be); the one they all hold, only when `blocking` (they
/// alone leave no quorum: every quorum meets a holder, so no other value
/// can be chosen in the slot from now on); the one a quorum of its own
/// voters holds (`held_by_its_voters`); else none. This is no worse than
/// gossip, not a proof of what was chosen: an acceptor that accepted the
/// chosen layout may have installed a fork by gossip first. Only the last
/// is installed as backed (`Source::Voters`); the others are one
/// holder's word, which the install guard checks (`super::guard`). Holders that
/// do not block (acceptors behind or on another base make up the rest)
/// are never taken on their word (review-layout28 M1). The layout learned
/// keeps what its holders' answers carried of its lineage (`proofs`: its
/// proof of choice, so the install guard can take it, review-layout31 H1).
pub(super) fn learn(
    slot: u64,
    own: &Layout,
    held: Vec<(String, Layout)>,
    blocking: bool,
    maybe_applied: bool,
    proofs: &Lineages,
) -> Result<Decided, CasError> {
    let newer = (held.iter().map(|(_, l)| l))
        .filter(|l| l.version > slot)
        .max_by_key(|l| l.version);
    let agreed = (held.split_first())
        .filter(|_| blocking)
        .and_then(|((_, first), rest)| rest.iter().all(|(_, l)| l == first).then_some(first));
    let by_voters = crate::layout::acceptors::held_by_its_voters(&held);
    let learned = (newer.or(agreed)).or(by_voters);
    // Backed by a quorum of its voters, or one holder's word (the install
    // checks the latter: `super::guard`).
    let source = match learned {
        Some(l) if by_voters == Some(l) => Source::Voters,
        _ => Source::Peer,
    };
    match learned {
        Some(layout) => Ok(Decided {
            ours: layout == own,
            layout: layout.clone(),
            source,
            lineage: proofs.of(layout),
        }),
        None => Err(CasError::Undecided {
            slot,
            answered: held.len(),
            maybe_applied,
        }),
    }
}

/// A decided layout (`decided`) newer than `slot`, once this change's
/// Accept was sent (`maybe_applied`), may be built on this change: the
/// slot's value is not known from it, so the change may have been
/// applied ([`CasError::Superseded`]), not refused (review-layout28 L4).
/// A layout of the slot itself that is not ours is its value: refused.
pub(super) fn settled(
    slot: u64,
    decided: Decided,
    maybe_applied: bool,
) -> Result<Decided, CasError> {
    if decided.ours || !maybe_applied || decided.layout.version <= slot {
        return Ok(decided);
    }
    let (layout, lineage) = (Box::new(decided.layout), decided.lineage);
    Err(CasError::Superseded {
        slot,
        layout,
        lineage,
    })
}

/// Why attempts at slot `slot` stopped after `secs`: the acceptors behind
/// the base at the last attempt, if it ended so, else contention.
pub(super) fn given_up(
    slot: u64,
    secs: u64,
    behind: Option<Vec<String>>,
    maybe_applied: bool,
) -> CasError {
    match behind {
        Some(behind) => CasError::Behind {
            slot,
            secs,
            behind,
            maybe_applied,
        },
        None => CasError::Contended {
            slot,
            secs,
            maybe_applied,
        },
    }
}
