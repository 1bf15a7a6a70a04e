//! Layout changes as a compare-and-set on the cluster: single-decree Paxos
//! per layout version, sans I/O (events in, replies and outcomes out).
//!
//! Owns the [`Ballot`], the acceptor's per-slot state ([`AcceptorSlot`],
//! [`respond_on`]) and re-exports the proposer ([`Proposer`], in
//! `proposer.rs`). The slot
//! of a change is the version it creates: the change from layout v is
//! decided in slot v+1, among the acceptors named by layout v; a [`Quorum`]
//! of them must promise, then accept (which sets are quorums, and why any
//! two meet: `layout::acceptors`).
//! Must not: do I/O, persist, time out or retry; the caller (the view's
//! layout CAS) sends messages, persists an acceptor's state *before* its
//! reply leaves, installs chosen layouts and decides when to give up.
//!
//! Invariants (checked by the property tests in `consensus_tests.rs`):
//! - I1, at most one value is chosen per slot (accepted by a majority at
//!   one ballot), under loss, duplication, reordering and any number of
//!   competing proposers.
//! - I2, a chosen value is never replaced: every ballot above the one that
//!   chose it carries the same value (a proposer with a majority of
//!   promises that reports an accepted value proposes the one with the
//!   highest ballot, never its own).
//! - I3, a proposer reports [`Outcome::Chosen`] only for the value chosen
//!   in its slot, and `ours` only when that value is its own.
//! - I4, a proposer that gets a majority of promises none of which reports
//!   an accepted value gets its own value chosen once a majority of its
//!   accepts arrive with no higher ballot in between.
//! - I5, an acceptor that already installed the slot's layout answers
//!   [`Reply::Decided`] with it (only chosen layouts are installed), so its
//!   Paxos state for installed slots may be dropped.
//! - I6, a proposal builds on one value of the version before its slot
//!   (its `base`, a digest): an acceptor that installed another value of
//!   that version refuses it ([`Reply::WrongBase`], no state change), so a
//!   proposer holding a value that was not chosen (a fork) cannot get a
//!   change built on it chosen by acceptors that hold the chosen one
//!   (review-layout26 M2). Promises still report every accepted value.
//! - I7, an acceptor still behind the version before the slot cannot
//!   check the base, so it refuses too ([`Reply::Behind`], no state
//!   change; refusing is always safe in Paxos): a change is chosen only
//!   by a quorum that installed its base, so a change built on a fork
//!   needs a quorum of fork holders, and a chosen value of version v is
//!   never lost to a fork-based v+1 accepted by acceptors behind v
//!   (review-layout27 M2). The proposer ends with [`Outcome::Behind`];
//!   the caller pushes them its base with what it knows of its lineage
//!   (the proof of choice: `view::lineage`), which their install guard
//!   takes or refuses (`view::guard`), and retries at a higher ballot: a
//!   ballot is used by one attempt only, so no acceptor sees two Accepts
//!   of different values at one ballot (an acceptor overwrites its value
//!   on an equal-ballot Accept; review-layout28 L1). "Quorum" is the
//!   proposer's own, derived from its base's voters: a fork whose voters
//!   barely overlap the chosen layout's (another seed file) is checked
//!   only by the acceptors it names (review-layout27 L3).
//! - I8, a [`Reply::Decided`] is a hint, not a decision (one acceptor may
//!   hold a fork): the proposer ends with [`Outcome::Chosen`] from them
//!   only when a quorum answered it with one value; when too many
//!   answered `Decided` for a quorum to promise, it ends with
//!   [`Outcome::Decided`] and the caller learns the slot from what they
//!   hold (review-layout27 M3), taking their common value only when they
//!   alone leave no quorum (`blocking`; review-layout28 M1). That is no
//!   worse than gossip, not a proof of what was chosen: an acceptor that
//!   accepted the chosen value may have installed a fork by gossip first.
//!   When the calls run out with answers BEHIND or `Decided` among them,
//!   [`Proposer::on_exhausted`] ends the attempt so (review-layout28 M2).

use serde::{Deserialize, Serialize};

pub use super::acceptors::Quorum;
pub use super::proposer::{Outcome, Proposer, Step};

/// A proposal number: ordered by round, then by proposer id. The id must
/// be unique per proposer (the driver draws one per proposal), so two
/// proposers never share a ballot.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Ballot {
    pub round: u64,
    pub node: String,
}

/// What a proposer sends to every acceptor of its slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Msg<V> {
    /// Phase 1: promise to ignore ballots below `ballot`, and report what
    /// you accepted. `base` is the digest of the value of version
    /// `slot - 1` the proposal builds on (I6).
    Prepare {
        slot: u64,
        ballot: Ballot,
        base: u128,
    },
    /// Phase 2: accept `value` at `ballot` unless you promised higher.
    Accept {
        slot: u64,
        ballot: Ballot,
        base: u128,
        value: V,
    },
}

/// An acceptor's answer to a [`Msg`], naming the ballot it answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply<V> {
    Promise {
        ballot: Ballot,
        accepted: Option<(Ballot, V)>,
    },
    Accepted {
        ballot: Ballot,
    },
    /// The acceptor promised `promised` > `ballot`.
    Rejected {
        ballot: Ballot,
        promised: Ballot,
    },
    /// The slot is decided and installed there: this is its value.
    Decided {
        value: V,
    },
    /// The acceptor installed `installed` as the version before the slot,
    /// not the proposal's base (I6): one of the two is a fork.
    WrongBase {
        ballot: Ballot,
        installed: V,
    },
    /// The acceptor has not installed the version before the slot, so it
    /// cannot check the proposal's base and refuses (I7).
    Behind {
        ballot: Ballot,
    },
}

/// What an acceptor knows of a slot from the value it installed.
#[derive(Clone, Copy, Debug)]
pub enum Known<'a, V> {
    /// The slot's value (or a later one) is installed: this one.
    Decided(&'a V),
    /// The version before the slot is installed: `value`, of `digest`.
    Base { value: &'a V, digest: u128 },
    /// An older one: nothing to check a proposal's base against (it
    /// refuses: I7).
    Behind,
}

/// An acceptor's durable state for one slot. Persisted (synced) by the
/// caller whenever [`respond`] says it changed, before the reply is sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptorSlot<V> {
    pub promised: Option<Ballot>,
    pub accepted: Option<(Ballot, V)>,
}

impl<V> Default for AcceptorSlot<V> {
    fn default() -> Self {
        AcceptorSlot {
            promised: None,
            accepted: None,
        }
    }
}

/// The acceptor: answers `msg` for its slot given its state there and
/// what it installed (`known`). Returns the reply and whether `state`
/// changed (persist it first).
pub fn respond_on<V: Clone>(
    state: &mut AcceptorSlot<V>,
    known: Known<'_, V>,
    msg: &Msg<V>,
) -> (Reply<V>, bool) {
    let (ballot, base) = match msg {
        Msg::Prepare { ballot, base, .. } | Msg::Accept { ballot, base, .. } => (ballot, *base),
    };
    match known {
        Known::Decided(value) => {
            let value = value.clone();
            return (Reply::Decided { value }, false);
        }
        Known::Base { value, digest } if digest != base => {
            let (ballot, installed) = (ballot.clone(), value.clone());
            return (Reply::WrongBase { ballot, installed }, false);
        }
        Known::Behind => {
            let ballot = ballot.clone();
            return (Reply::Behind { ballot }, false);
        }
        Known::Base { .. } => {}
    }
    if let Some(p) = &state.promised {
        if p > ballot {
            let promised = p.clone();
            return (
                Reply::Rejected {
                    ballot: ballot.clone(),
                    promised,
                },
                false,
            );
        }
    }
    let changed = state.promised.as_ref() != Some(ballot);
    state.promised = Some(ballot.clone());
    match msg {
        Msg::Prepare { ballot, .. } => (
            Reply::Promise {
                ballot: ballot.clone(),
                accepted: state.accepted.clone(),
            },
            changed,
        ),
        Msg::Accept { ballot, value, .. } => {
            let again = matches!(&state.accepted, Some((b, _)) if b == ballot);
            state.accepted = Some((ballot.clone(), value.clone()));
            (
                Reply::Accepted {
                    ballot: ballot.clone(),
                },
                changed || !again,
            )
        }
    }
}
