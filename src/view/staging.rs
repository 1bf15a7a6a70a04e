//! Gossip's staging of newer layouts (issue 11, session 29): a layout one
//! gossip peer shows newer than the one in force is *staged* (fetched and
//! kept, not in force) and *committed* (installed) only once the members'
//! gossip backs it, so a fork one peer holds does not spread by gossip
//! while the members show the chosen layout (Garage's staged/committed
//! split, with "committed" meaning "backed by the members' gossip").
//!
//! The rule ([`Staging::ready`]), from what each member last advertised
//! (its layout's version and digest, on every gossip digest):
//! - a quorum of the layout's own voters advertise it: committed (every
//!   change after it needs a quorum of them, each refusing a change built
//!   on another layout of that version: what `view/learn.rs` and
//!   `layout::acceptors::held_by_its_voters` take); else
//! - a member advertises another layout of that version (a fork is in
//!   sight): not committed; else
//! - at least two members advertise it: committed (the common case: the
//!   proposer's push reached most members); else
//! - one member alone and nobody shows another layout of that version for
//!   [`STAGE_GRACE`]: committed, as gossip did before (no worse than
//!   gossip: with the other holders down, e.g. a 3-node cluster with one
//!   dead, the layout could never be proven, and a node that never takes
//!   it would keep every later change BEHIND for good).
//!
//! A push from a proposer (`PushLayout`: the layout it saw chosen, or its
//! base to an acceptor that answered BEHIND, `cas::push_base`) is not
//! staged. Must not: do I/O or install (the caller, `sync.rs`, does).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::time::Instant;

use super::lineage::Lineage;
use crate::layout::acceptors::{voters, Quorum};
use crate::layout::Layout;

/// How long a staged layout only one member shows, with no other layout
/// of its version in sight, waits before it is committed: a few gossip
/// rounds, long enough for a member holding the chosen layout to show it.
pub const STAGE_GRACE: Duration = Duration::from_secs(10);

/// Why a staged layout was committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backing {
    /// A quorum of its own voters advertise it.
    Voters,
    /// Two members or more advertise it, and none another of its version.
    Agreed,
    /// One member showed it for [`STAGE_GRACE`], and none another.
    Uncontested,
}

/// What gossip showed: each member's layout, and the layouts staged.
#[derive(Default)]
pub struct Staging {
    /// Each member's last advertised layout version and digest.
    heard: BTreeMap<String, (u64, u128)>,
    /// Layouts fetched and not installed, by digest, with when staged.
    staged: BTreeMap<u128, (Layout, Instant)>,
    /// What the member it was fetched from knew of a staged layout's
    /// lineage (`super::lineage`), by digest, when it said.
    lineages: BTreeMap<u128, Lineage>,
}

impl Staging {
    /// Member `from` advertised a layout of `version` and `digest`.
    pub fn heard(&mut self, from: &str, version: u64, digest: u128) {
        self.heard.insert(from.to_string(), (version, digest));
    }

    /// Whether the layout of `digest` is staged.
    pub fn has(&self, digest: u128) -> bool {
        self.staged.contains_key(&digest)
    }

    /// Stages `layout` (fetched at `now`; kept from its first staging).
    pub fn stage(&mut self, layout: Layout, now: Instant) {
        self.staged.entry(layout.digest()).or_insert((layout, now));
    }

    /// [`Staging::stage`] with its `lineage` (kept if it is a proof of
    /// choice, or the first known).
    pub fn stage_with(&mut self, layout: Layout, lineage: Lineage, now: Instant) {
        let digest = layout.digest();
        self.stage(layout, now);
        let kept = self.lineages.entry(digest).or_default();
        if kept.chosen_at.is_none() && (lineage.chosen_at.is_some() || kept.prev.is_none()) {
            *kept = lineage;
        }
    }

    /// Takes what is known of the lineage of the layout of `digest` (the
    /// one [`Staging::ready`] returned).
    pub fn take_lineage(&mut self, digest: u128) -> Lineage {
        self.lineages.remove(&digest).unwrap_or_default()
    }

    /// The newest staged layout above `installed` that is backed (see the
    /// module doc), and why; staged layouts not above `installed` are
    /// dropped, the one returned too (the caller installs it).
    pub fn ready(&mut self, installed: u64, now: Instant) -> Option<(Layout, Backing)> {
        self.staged.retain(|_, (l, _)| l.version > installed);
        let mut ready: Vec<(u128, u64, Backing)> = (self.staged.iter())
            .filter_map(|(d, (l, since))| {
                let how = self.backing(l, *d, now.saturating_duration_since(*since))?;
                Some((*d, l.version, how))
            })
            .collect();
        ready.sort_by_key(|(_, version, _)| *version);
        let (digest, _, how) = ready.pop()?;
        let (layout, _) = self.staged.remove(&digest)?;
        let staged = &self.staged;
        (self.lineages).retain(|d, _| *d == digest || staged.contains_key(d));
        Some((layout, how))
    }

    fn backing(&self, l: &Layout, digest: u128, staged_for: Duration) -> Option<Backing> {
        let at_version = (self.heard.iter()).filter(|(_, (v, _))| *v == l.version);
        let (holders, others): (Vec<_>, Vec<_>) = at_version.partition(|(_, (_, d))| *d == digest);
        let holders: BTreeSet<String> = holders.into_iter().map(|(id, _)| id.clone()).collect();
        let quorum = Quorum::majority(voters(l));
        let voting: BTreeSet<String> = holders.intersection(&quorum.members).cloned().collect();
        if quorum.is_met(&voting) {
            return Some(Backing::Voters);
        }
        if !others.is_empty() {
            return None;
        }
        if holders.len() >= 2 {
            return Some(Backing::Agreed);
        }
        (!holders.is_empty() && staged_for >= STAGE_GRACE).then_some(Backing::Uncontested)
    }
}

/// A layout digest as gossip carries it (16 big-endian bytes); `None`
/// when absent or malformed.
pub fn digest_of(bytes: &[u8]) -> Option<u128> {
    Some(u128::from_be_bytes(bytes.try_into().ok()?))
}
