//! The way out of a movement whose node died for good (issue 11, audit
//! W3; Cassandra's `removenode` of a joining node, Scylla's abort):
//! [`Layout::abort`], which `geokv removenode ID` proposes for a node that
//! is Joining, Leaving or replacing instead of `begin_remove`.
//!
//! - A joiner (`Join`) or a replacement (`Replace { new }`) that is still
//!   Joining, its movement still reading from the old owners, becomes Removed with no tokens and its movement is cleared:
//!   it was only a pending replica, so nobody lost a range, and the
//!   pending replica stops raising blockFor. A replaced node stays as it
//!   was (Normal, dead): remove or replace it again.
//! - A decommissioning node (`Leave`, Leaving) is declared dead: its
//!   movement becomes `Remove`, and its ranges are re-replicated from the
//!   surviving replicas exactly as for a dead Normal node
//!   (`movement::remove`), which finishes it as Removed.
//! - Once a joiner's or replacement's movement reads from the new owners
//!   (`reading_new`), it is refused ([`LayoutError::ReadsSwitched`]):
//!   going back would be a one-step switch of reads. Left open: such a
//!   dead node must be restarted to finish before it can be removed.
//!
//! Must not: check liveness (the caller refuses a live node), decide when
//! a movement finishes, or change the `finish_*` transitions.

use super::{Layout, LayoutError, Movement, NodeState};

impl Layout {
    /// The layout with the movement of the dead `node` (joining, leaving
    /// or replacing) abandoned, as the module doc says.
    pub fn abort(&self, node: &str) -> Result<Layout, LayoutError> {
        let (dc, _, n) = (self.node(node)).ok_or_else(|| LayoutError::UnknownNode(node.into()))?;
        let dc = dc.to_string();
        let movement = self.movements.get(&dc).cloned();
        if n.state == NodeState::Joining && self.reads_new(&dc) {
            // Dropping the joiner now would move reads back to the old
            // owners in one version (the one-step switch, audit W2) and
            // leave `reading_new` to the next movement (review of stop 26,
            // H1/M1).
            return Err(LayoutError::ReadsSwitched {
                node: node.into(),
                dc,
            });
        }
        let mut out = self.clone();
        out.version += 1;
        match (n.state, movement) {
            (NodeState::Joining, Some(Movement::Join { node: j }))
            | (NodeState::Joining, Some(Movement::Replace { new: j, .. }))
                if j == node =>
            {
                out.movements.remove(&dc);
                let n = out.node_mut(node).expect("found above");
                n.state = NodeState::Removed;
                n.tokens.clear();
            }
            (NodeState::Leaving, Some(Movement::Leave { node: l })) if l == node => {
                let remove = Movement::Remove {
                    node: node.into(),
                    force: false,
                };
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
}
