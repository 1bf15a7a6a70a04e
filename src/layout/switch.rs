//! The end of a range movement in steps (issue 11, audit W2), each a pure
//! function of the layout.
//!
//! A movement's versions: (1) `begin_*`: writes go to the old and the new
//! owners, reads to the old ones (the new ones are pending replicas);
//! (2) the switch ([`FinishStep::SwitchReads`]): writes still go to both,
//! reads to the new owners (the old owners that lose a range are now its
//! pending replicas, still written and counted); (3) `finish_*`: writes and
//! reads go to the new owners only. Between any two adjacent versions a
//! write quorum of one meets a read quorum of the other, so a coordinator
//! one version behind still reads what a coordinator one version ahead had
//! acknowledged (the driver, `movement::switch`, proposes a step only once
//! every live member is on the previous one). A single step from (1) to
//! (3) would let a write acknowledged by new owners only be missed by a
//! read of old owners only.
//!
//! Owns [`FinishStep`], [`Layout::next_finish_step`], which nodes a version
//! reads from ([`Layout::reads_from`]) and which it also writes to
//! ([`Layout::also_written`]). Must not decide when to step nor do I/O.

use super::{Layout, LayoutError, LayoutNode, Movement};

/// The next version at the end of a movement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FinishStep {
    /// Step 2: reads go to the new owners; writes still to both.
    SwitchReads(Layout),
    /// Step 3: the movement is over (`finish_*`).
    Finish(Layout),
}

impl FinishStep {
    /// The layout to propose.
    pub fn layout(&self) -> &Layout {
        match self {
            FinishStep::SwitchReads(l) | FinishStep::Finish(l) => l,
        }
    }
}

impl Movement {
    /// Whether `id` gains or loses ranges in this movement.
    pub fn moves(&self, id: &str) -> bool {
        match self {
            Movement::Join { node } | Movement::Leave { node } => node == id,
            Movement::Remove { node, also, .. } => node == id || also.iter().any(|a| a == id),
            Movement::Replace { dead, new, .. } => dead == id || new == id,
        }
    }
}

impl Layout {
    /// Whether `dc`'s movement reads from its new owners (step 2).
    pub fn reads_new(&self, dc: &str) -> bool {
        self.reading_new.contains(dc) && self.movements.contains_key(dc)
    }

    /// Whether the member `n` of `dc` owns its tokens for reads in this
    /// version: a Normal or Leaving node, except that once its DC's
    /// movement reads new, the nodes it moves swap (a joining or replacing
    /// node owns, a leaving, removed or replaced one does not).
    pub fn reads_from(&self, dc: &str, n: &LayoutNode) -> bool {
        let swapped = self.reads_new(dc) && self.movements.get(dc).is_some_and(|m| m.moves(&n.id));
        n.state.owns_tokens() != swapped
    }

    /// The layout whose owners get this version's writes besides its own
    /// readers (what [`crate::ring::PendingRanges`] is computed against):
    /// per movement, its new owners while it reads old, its old owners
    /// once it reads new.
    pub fn also_written(&self) -> Layout {
        let mut out = self.clone();
        for (dc, m) in &self.movements {
            if self.reads_new(dc) {
                out.reading_new.remove(dc);
            } else {
                out = out
                    .finish_movement(m)
                    .expect("a layout's own movement can finish");
            }
        }
        out
    }

    /// This layout with every movement reading old: the owners before the
    /// switch (what a movement's plan streams from, in either step).
    pub fn reading_old(&self) -> Layout {
        let mut out = self.clone();
        out.reading_new.clear();
        out
    }

    /// The next version at the end of the movement moving `node`: the
    /// switch of reads while the movement reads old, else its finish.
    pub fn next_finish_step(&self, node: &str) -> Result<FinishStep, LayoutError> {
        let (dc, _, _) = self
            .node(node)
            .ok_or_else(|| LayoutError::UnknownNode(node.into()))?;
        let m = self.movements.get(dc).filter(|m| m.moves(node));
        let Some(m) = m else {
            return Err(LayoutError::NoMovementOf(node.into()));
        };
        // A stale `aborting` that no driver drops (on a Remove: a leave
        // cancelled past its switch, then removed by an older build) does
        // not hold the finish (review-cancel31 M2).
        if self.abandoning(dc).is_some() {
            return Err(LayoutError::Abandoned {
                node: node.into(),
                dc: dc.into(),
            });
        }
        if self.reads_new(dc) {
            return Ok(FinishStep::Finish(self.finish_movement(m)?));
        }
        let dc = dc.to_string();
        let mut out = self.clone();
        out.version += 1;
        out.reading_new.insert(dc);
        Ok(FinishStep::SwitchReads(out))
    }

    /// `finish_*` of `m`.
    pub(crate) fn finish_movement(&self, m: &Movement) -> Result<Layout, LayoutError> {
        match m {
            Movement::Join { node } => self.finish_join(node),
            Movement::Leave { node } => self.finish_leave(node),
            Movement::Remove { node, .. } => self.finish_remove(node),
            Movement::Replace { new, .. } => self.finish_replace(new),
        }
    }
}
