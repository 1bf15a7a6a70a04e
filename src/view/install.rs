//! Putting a layout in force on this node's [`Cluster`]: a layout learned
//! from elsewhere is merged with the one in force ([`Layout::merge`]; a
//! fork is refused), and a node whose change was refused for its base
//! adopts the layout its members hold (review-layout26 M2). Either way the
//! view is derived first, persisted with its lineage (`super::lineage`),
//! then swapped and subscribers told; a proof of choice that comes after
//! the layout in force is kept. A layout on one peer's word is checked by
//! the install guard first (`super::guard`).
//! Must not: decide layouts (the CAS does), talk to peers, or take the
//! install lock itself except in [`Cluster::install_from`],
//! [`Cluster::on_wrong_base`] (written) and
//! [`Cluster::current_with_lineage`] (read).

use std::sync::Arc;

use super::acceptor::Swapped;
use super::cluster::publish_gauges;
use super::errors::{ProposeError, ViewError};
use super::instances::Swap;
use super::lineage::{self, Lineage};
use super::{Cluster, ClusterView, Installed, Source};
use crate::layout::Layout;

impl Cluster {
    /// Installs a layout learned from elsewhere, with what is known of its
    /// `lineage`, backed by `source`: checked by the install guard
    /// (`super::guard`), merged with the current one, and if that changes
    /// it, persisted (with its lineage), swapped, subscribers notified.
    pub fn install_from(
        &self,
        incoming: Layout,
        lineage: Lineage,
        source: Source,
    ) -> Result<Installed, ViewError> {
        let _guard = crate::blocking::write(&self.inner.install);
        self.install_locked(incoming, lineage, source)
    }

    /// The layout in force and its lineage.
    pub fn current_with_lineage(&self) -> (Arc<Layout>, Lineage) {
        let _guard = crate::blocking::read(&self.inner.install);
        (
            self.current().layout.clone(),
            self.inner.lineage.lock().clone(),
        )
    }

    /// The lineage of `layout` when it is the one in force, else none.
    pub fn lineage_of(&self, layout: &Layout) -> Lineage {
        let (current, lineage) = self.current_with_lineage();
        if *current == *layout {
            lineage
        } else {
            Lineage::default()
        }
    }

    /// [`Cluster::install_from`] with the install lock held (written).
    pub(super) fn install_locked(
        &self,
        incoming: Layout,
        lineage: Lineage,
        source: Source,
    ) -> Result<Installed, ViewError> {
        let current = self.current();
        let from = current.version();
        self.check_backed(&current.layout, &incoming, &lineage, source)?;
        let (newer, same) = (incoming.version > from, incoming == *current.layout);
        let merged = (*current.layout).clone().merge(incoming);
        if let Some(c) = &merged.conflict {
            // Only chosen layouts are installed, so a second one of a
            // version is a fork: keep what this node may have acted on.
            let installed = current.layout.digest();
            let refused = if c.kept == installed {
                c.dropped
            } else {
                c.kept
            };
            metrics::counter!("geokv_layout_forks_total").increment(1);
            tracing::error!(
                version = c.version,
                installed = %format!("{installed:032x}"),
                refused = %format!("{refused:032x}"),
                "layout: refused a fork"
            );
            return Err(ViewError::Fork {
                version: c.version,
                installed,
                refused,
            });
        }
        if merged.layout == *current.layout {
            if same {
                self.keep_lineage(&current.layout, lineage)?;
            }
            return Ok(Installed::Unchanged { version: from });
        }
        let to = merged.layout.version;
        let lineage = if newer {
            self.with_known_prev(&current.layout, &merged.layout, lineage)
        } else {
            Lineage::default()
        };
        self.swap_in(merged.layout, lineage, None)?;
        tracing::info!(from, to, "layout: new view in force");
        Ok(Installed::Swapped {
            from,
            to,
            conflict: merged.conflict,
        })
    }

    /// What `incoming` knows of the lineage of `layout`, the layout in
    /// force, is kept where this node knew nothing and the two do not
    /// name different predecessors (its proof of choice, come after the
    /// layout: learned from an older acceptor, or before the upgrade), so
    /// it passes the proof on (review-layout31 H1, review-layout32a M1).
    /// Persisted first. The install lock is held (written).
    fn keep_lineage(&self, layout: &Layout, incoming: Lineage) -> Result<(), ViewError> {
        let known = self.inner.lineage.lock().clone();
        if known.prev.zip(incoming.prev).is_some_and(|(k, i)| k != i) {
            return Ok(()); // Said to be built on another base: not ours.
        }
        let kept = Lineage {
            prev: known.prev.or(incoming.prev),
            chosen_at: known.chosen_at.clone().or(incoming.chosen_at),
        };
        if kept == known {
            return Ok(());
        }
        if let Some(engine) = &self.inner.engine {
            (lineage::save(&**engine, layout, &kept)).map_err(|source| ViewError::Persist {
                version: layout.version,
                source,
            })?;
        }
        *self.inner.lineage.lock() = kept;
        Ok(())
    }

    /// `lineage` with its predecessor filled in when unknown and this
    /// node's acceptor accepted `incoming` itself in the slot after
    /// `current`: the acceptor took it on `current` as its base (its live
    /// slots are the instance built on the installed layout, since
    /// `on_wrong_base` swaps instances: review-layout31 M1 (a),
    /// review-layout32b M2). The install lock is held (written).
    fn with_known_prev(
        &self,
        current: &Layout,
        incoming: &Layout,
        mut lineage: Lineage,
    ) -> Lineage {
        if lineage.prev.is_some() || incoming.version != current.version + 1 {
            return lineage;
        }
        let accepted = self.inner.acceptor.accepted(incoming.version);
        if (accepted.ok().flatten()).is_some_and(|(_, x)| x == *incoming) {
            lineage.prev = Some(current.digest());
        }
        lineage
    }

    /// A change built on `base` (in force when it was proposed) was
    /// refused by acceptors holding another layout of its version
    /// (`held`): adopt the one a quorum of its own voters holds, if one
    /// does ([`crate::layout::acceptors::held_by_its_voters`]), in place
    /// of `base`, with what the refusals carried of its lineage
    /// (`lineages`: its holders' proof of choice, review-layout31 H1). The
    /// error says what was adopted; the change itself is not applied
    /// unless `maybe_applied`.
    pub(super) fn on_wrong_base(
        &self,
        base: &Layout,
        held: &[(String, Layout)],
        lineages: &lineage::Lineages,
        maybe_applied: bool,
    ) -> ProposeError {
        let chosen = crate::layout::acceptors::held_by_its_voters(held);
        let refused = |adopted| ProposeError::Forked {
            version: base.version,
            ours: base.digest(),
            adopted,
            refused: held.len(),
            maybe_applied,
        };
        let Some(chosen) = chosen else {
            metrics::counter!("geokv_layout_forks_total").increment(1);
            tracing::error!(version = base.version, refused = held.len(),
                "layout: this node's layout is not its members', and no other is held by a quorum of its voters");
            return refused(None);
        };
        let _guard = crate::blocking::write(&self.inner.install);
        let current = self.current();
        let known = lineages.of(chosen);
        let swapped = if *current.layout == *base {
            // The fork's Paxos instance of the slots above is not the
            // members': put aside in the swap's write, and the members'
            // one comes back (review-layout32a M3, review-layout32b M1, M2).
            let swap = Swap {
                version: base.version,
                from: base.digest(),
                to: chosen.digest(),
            };
            self.swap_in(chosen.clone(), known, Some(swap)).map(|_| ())
        } else {
            // Something newer came in meanwhile: merged as usual.
            (self.install_locked(chosen.clone(), known, Source::Voters)).map(|_| ())
        };
        if let Err(e) = swapped {
            return ProposeError::View(e);
        }
        metrics::counter!("geokv_layout_forks_total").increment(1);
        tracing::warn!(
            version = base.version,
            ours = %format!("{:032x}", base.digest()),
            adopted = %format!("{:032x}", chosen.digest()),
            "layout: adopted the layout a quorum of its voters holds in place of a fork"
        );
        refused(Some(chosen.digest()))
    }

    /// Derives `layout`'s view (so one that cannot be used is never
    /// persisted), persists it with its `lineage` ([`Self::persist`]),
    /// swaps it in and tells subscribers. The install lock is held
    /// (written).
    fn swap_in(
        &self,
        layout: Layout,
        lineage: Lineage,
        swap: Option<Swap>,
    ) -> Result<Arc<ClusterView>, ViewError> {
        let to = layout.version;
        let view = Arc::new(
            ClusterView::derive(layout, &self.inner.me).map_err(|source| ViewError::Derive {
                version: to,
                source,
            })?,
        );
        if let Some(swapped) = self.persist(&view.layout, &lineage, swap)? {
            self.inner.acceptor.set_written(swapped);
        }
        *self.inner.lineage.lock() = lineage;
        self.inner.view.store(view.clone());
        publish_gauges(&view);
        self.inner.tx.send_replace(view.clone());
        Ok(view)
    }

    /// Writes `layout` with its `lineage` in one batch and, given a
    /// `swap` (`on_wrong_base`), this acceptor's state after it
    /// ([`super::acceptor::Acceptor::swap_into`]) in the same batch, then
    /// synced: a crash or a failed write leaves neither or both
    /// (review-layout32b M1). A failed write fails the swap. Returns the
    /// acceptor state to set.
    fn persist(
        &self,
        layout: &Layout,
        lineage: &Lineage,
        swap: Option<Swap>,
    ) -> Result<Option<Swapped>, ViewError> {
        let version = layout.version;
        let persist = |source| ViewError::Persist { version, source };
        let mut batch = super::store::batch(layout).map_err(persist)?;
        lineage::put(&mut batch, layout, lineage);
        let swapped = swap.map(|swap| self.inner.acceptor.swap_into(&mut batch, swap));
        let swapped =
            (swapped.transpose()).map_err(|source| ViewError::Acceptor { version, source })?;
        if let Some(engine) = &self.inner.engine {
            engine.write(batch).map_err(|e| persist(e.into()))?;
            if swapped.is_some() {
                engine.flush().map_err(|e| persist(e.into()))?;
            }
        }
        Ok(swapped)
    }
}
