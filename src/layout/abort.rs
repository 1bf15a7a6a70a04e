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

impl Layout {
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
                if self.reads_new(&dc) {
                    out.reading_new.remove(&dc);
                    out.aborting.insert(dc);
                    return Ok(out);
                }
                out.movements.remove(&dc);
                out.reading_new.remove(&dc);
                out.aborting.remove(&dc);
                let n = out.node_mut(node).expect("found above");
                n.state = NodeState::Removed;
                n.tokens.clear();
            }
            (NodeState::Leaving, Some(Movement::Leave { node: l })) if l == node => {
                let remove = Movement::Remove {
                    node: node.into(),
                    also: Vec::new(),
                    force: false,
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
