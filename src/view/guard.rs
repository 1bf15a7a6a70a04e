//! The install guard (issue 11, review-layout29b High, review-layout30 H1,
//! H2, M1): a layout newer than the one in force is not put in force on
//! one peer's word when it may contradict a chosen layout, and it never
//! stays refused when it carries proof that it was chosen.
//!
//! What backs an incoming layout ([`Source`]):
//! - [`Source::Chosen`]: this node's own CAS saw it chosen: installed.
//! - [`Source::Voters`]: a quorum of its own voters holds it (gossip's
//!   staging, `held_by_its_voters`): every later change needs a quorum of
//!   them, so it is the one the cluster builds on: installed.
//! - [`Source::Peer`]: one peer's word (a push, a fetch, a layout learned
//!   from one holder), with its [`Lineage`]: checked as below.
//!
//! The rules for one peer's word, with v the version in force:
//! 1. `accepted_other`: this node's acceptor accepted another layout X in
//!    the incoming layout's slot, at ballot b. It is installed only with
//!    proof that it was chosen at a ballot b* > b, built on the layout in
//!    force (Paxos, I2 of `layout::consensus`: every proposal above the
//!    choosing ballot carries the chosen value, so X, accepted lower, was
//!    not chosen; the same base makes it the same Paxos instance). One
//!    peer's word without proof cannot be told from a fork holder's push.
//! 2. `wrong_prev`: a layout of v+1 built on another layout of v than
//!    the one in force (its lineage's `prev`) is refused unless it has
//!    proof of choice: then the one in force is the fork (a chosen v+1
//!    needs a quorum that installed its base, I7). An unknown `prev` (an
//!    older peer) is not checked: a mixed-version cluster keeps working.
//! 3. `skips_accepted`: a layout above v+1 (it skips versions) while this
//!    acceptor accepted a value in slot v+1 is refused unless it has proof
//!    of choice: what it was built on cannot be checked against that
//!    value (a fork two versions deep, review-layout30 H2).
//!
//! A proof is never a proposer's push of its base alone: it is the ballot
//! a proposer saw a quorum accept the layout at, kept beside the installed
//! layout and passed on with it (pushes, fetches, the CAS's DECIDED and
//! WRONG_BASE answers; one that comes after its layout is kept), except
//! by older builds (`super::lineage`). Refusals count
//! `geokv_layout_installs_refused_total{reason}` and are logged at warn
//! once per layout, at debug on repeats.
//!
//! The check reads the acceptor with the install lock held (written), and
//! [`super::Cluster::accept`] holds it (read) while answering, so no
//! accept comes in between the check and the install.
//! Must not: decide layouts, talk to peers, or take the install lock.

use super::errors::ViewError;
use super::lineage::Lineage;
use super::Cluster;
use crate::layout::Layout;

/// What backs a layout being installed (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// One peer's word: a push, a fetch, a layout learned from one holder.
    Peer,
    /// This node's CAS saw a quorum choose it.
    Chosen,
    /// A quorum of its own voters hold it.
    Voters,
}

/// The metric of refused installs, by reason.
pub const REFUSED_METRIC: &str = "geokv_layout_installs_refused_total";

impl Cluster {
    /// Whether `incoming` (with `lineage`) may be installed over
    /// `current` given `source`. The install lock is held (written).
    pub(super) fn check_backed(
        &self,
        current: &Layout,
        incoming: &Layout,
        lineage: &Lineage,
        source: Source,
    ) -> Result<(), ViewError> {
        if source != Source::Peer || incoming.version <= current.version {
            return Ok(());
        }
        let (version, next) = (incoming.version, current.version + 1);
        let accepted = (self.inner.acceptor.accepted(next))
            .map_err(|source| ViewError::Acceptor { version, source })?;
        let proven = lineage.chosen_at.is_some();
        let refusal = if version > next {
            (accepted.is_some() && !proven).then(|| {
                let why = format!("it skips v{next}, in which this node's acceptor accepted a layout it cannot be checked against");
                ("skips_accepted", why)
            })
        } else if let Some((b, x)) = accepted.filter(|(_, x)| x != incoming) {
            let above = (lineage.chosen_at.as_ref()).is_some_and(|at| *at > b);
            let on_ours = lineage.prev == Some(current.digest());
            (!(above && on_ours)).then(|| {
                let why = format!("this node's acceptor accepted another layout of that version ({:032x}, round {}), and no proof that this one was chosen above it on the layout in force", x.digest(), b.round);
                ("accepted_other", why)
            })
        } else {
            let other_base = lineage.prev.is_some_and(|p| p != current.digest());
            (other_base && !proven).then(|| {
                let why = format!(
                    "it was built on another v{} than the one in force ({:032x})",
                    current.version,
                    current.digest()
                );
                ("wrong_prev", why)
            })
        };
        match refusal {
            None => Ok(()),
            Some((reason, why)) => Err(self.refused(incoming, reason, why)),
        }
    }

    /// Counts and logs a refusal (warn once per layout, then debug).
    fn refused(&self, incoming: &Layout, reason: &'static str, why: String) -> ViewError {
        let (version, refused) = (incoming.version, incoming.digest());
        metrics::counter!(REFUSED_METRIC, "reason" => reason).increment(1);
        let repeat = self.inner.last_refused.lock().replace((version, refused));
        let digest = format!("{refused:032x}");
        if repeat == Some((version, refused)) {
            tracing::debug!(version, refused = %digest, reason, "layout: refused again on one peer's word");
        } else {
            tracing::warn!(version, refused = %digest, reason, why = %why, "layout: refused on one peer's word");
        }
        ViewError::Unbacked {
            version,
            refused,
            reason,
            why,
        }
    }
}
