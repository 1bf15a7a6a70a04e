//! The way out of a movement whose node died for good (issue 11, audit
//! W3; Cassandra's `removenode` of a joining node, Scylla's abort):
//! [`Layout::abort`], which `geokv removenode ID` proposes for a node that
//! is Joining, Leaving or replacing instead of `begin_remove`.
//!
//! - A joiner (`Join`) or a replacement (`Replace { new }`) that is still
//!   Joining, its movement reading from the old owners, becomes Removed
//!   with no tokens and its movement is cleared: it was only a pending
//!   replica, so nobody lost a range, and the pending replica stops
//!   raising blockFor. A replaced node stays as it was (Normal, dead):
//!   remove or replace it again.
//! - Once such a movement reads from the new owners (`reading_new`), the
//!   abort takes two versions, as Cassandra's transactional metadata
//!   cancels a sequence in progress: (1) reads go back to the old owners
//!   and the movement is kept (the node is a pending replica again, writes
//!   still go to both), and the datacenter is marked `aborting` so the
//!   movement cannot finish; (2) the abort again, proposed only once every
//!   live member is on (1) (`movement::abort`), drops the node as above.
//!   Either step alone moves reads between adjacent versions whose write
//!   and read quorums intersect; one step from the switch to the drop
//!   would not (a write acknowledged by the old owners only, read from the
//!   new ones).
//! - A decommissioning node (`Leave`, Leaving) is declared dead: its
//!   movement becomes `Remove`, and its ranges are re-replicated from the
//!   surviving replicas exactly as for a dead Normal node
//!   (`movement::remove`), which finishes it as Removed.
//!
//! A decommission being cancelled (`cancel.rs`) is `aborting` too, and
//! its second step is driven the same way. Must not: check liveness (the caller refuses a live node), wait for the
//! members (the driver's job), decide when a movement finishes, or change
//! the `finish_*` transitions.

use super::{Layout, LayoutError, Movement, NodeState};

/// Where one step back out of a datacenter's movement left it
/// ([`Layout::step_back`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SteppedBack {
    /// Reads went back to the old owners; the movement is kept, its
    /// datacenter `aborting`.
    ToOldReads,
    /// The movement is dropped: the caller settles its node.
    Dropped,
}

impl Layout {
    /// One step back out of `dc`'s movement, the two steps an abort (here)
    /// and a decommission's cancel (`cancel.rs`) share: while the movement
    /// reads from its new owners, reads go back to the old owners and `dc`
    /// is marked `aborting` (writes still go to both; the movement cannot
    /// finish); else the movement is dropped, with `dc`'s read switch and
    /// `aborting` mark.
    pub(super) fn step_back(&mut self, dc: &str) -> SteppedBack {
        if self.reads_new(dc) {
            self.reading_new.remove(dc);
            self.aborting.insert(dc.to_string());
            return SteppedBack::ToOldReads;
        }
        self.movements.remove(dc);
        self.reading_new.remove(dc);
        self.aborting.remove(dc);
        SteppedBack::Dropped
    }

    /// The layout one step further in abandoning the movement of the dead
    /// `node` (joining, leaving or replacing), as the module doc says.
    pub fn abort(&self, node: &str) -> Result<Layout, LayoutError> {
        let (dc, _, n) = (self.node(node)).ok_or_else(|| LayoutError::UnknownNode(node.into()))?;
        let dc = dc.to_string();
        let movement = self.movements.get(&dc).cloned();
        let mut out = self.clone();
        out.version += 1;
        match (n.state, movement) {
            (NodeState::Joining, Some(Movement::Join { node: j }))
            | (NodeState::Joining, Some(Movement::Replace { new: j, .. }))
                if j == node =>
            {
                if out.step_back(&dc) == SteppedBack::ToOldReads {
                    return Ok(out);
                }
                let n = out.node_mut(node).expect("found above");
                n.state = NodeState::Removed;
                n.tokens.clear();
            }
            (NodeState::Leaving, Some(Movement::Leave { node: l })) if l == node => {
                let remove = Movement::Remove {
                    node: node.into(),
                    also: Vec::new(),
                    force: false,
                    // A new removal attempt: its own identity.
                    began: out.version,
                };
                // A cancel between its steps reads old already, as the removal does.
                out.aborting.remove(&dc);
                out.movements.insert(dc, remove);
            }
            (state, _) => {
                return Err(LayoutError::WrongState {
                    node: node.into(),
                    state,
                    expected: "Joining, Leaving or replacing in a movement of its datacenter",
                })
            }
        }
        Ok(out)
    }

    /// The joiner or replacement whose movement in `dc` is being abandoned
    /// (between the two steps of its abort), or the leaver whose
    /// decommission is being cancelled (`cancel.rs`), if any.
    pub fn abandoning(&self, dc: &str) -> Option<&str> {
        if !self.aborting.contains(dc) {
            return None;
        }
        match self.movements.get(dc)? {
            Movement::Join { node } | Movement::Replace { new: node, .. } => Some(node),
            Movement::Leave { node } => Some(node),
            _ => None,
        }
    }
}
