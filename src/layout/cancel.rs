//! The way out of a decommission a dead gainer holds up (issue 11,
//! audit11 D1): a decommission waits for every gainer's copy, so a gainer
//! that died wedged it, and its datacenter's movement slot, for good
//! (a dead gainer of a removal is removed with it instead: `remove.rs`).
//!
//! [`Layout::cancel_leave`]: a decommission stopped (Cassandra's
//! stoppable decommission): the leaver is Normal again and the movement
//! cleared. Once the movement reads from its new owners it takes two
//! versions, as the abort of a join does (`abort.rs`): (1) reads back to
//! the old owners, the datacenter marked `aborting` (the leave cannot
//! finish; writes still go to both); (2) the movement cleared, proposed by
//! the abort driver (`movement::abort`) once every live member is on (1).
//! Both steps are the abort's own ([`Layout::step_back`]).
//! A leaver that has Left is refused ([`LayoutError::AlreadyLeft`]).
//!
//! Must not check liveness, nor decide when to propose a step.

use super::abort::SteppedBack;
use super::{Layout, LayoutError, Movement, NodeState};

impl Layout {
    /// The layout one step further in cancelling `node`'s decommission,
    /// as the module doc says.
    pub fn cancel_leave(&self, node: &str) -> Result<Layout, LayoutError> {
        let (dc, _, n) = (self.node(node)).ok_or_else(|| LayoutError::UnknownNode(node.into()))?;
        let dc = dc.to_string();
        let mine =
            matches!(self.movements.get(&dc), Some(Movement::Leave { node: l }) if l == node);
        if n.state == NodeState::Left {
            return Err(LayoutError::AlreadyLeft(node.into()));
        }
        if !mine || n.state != NodeState::Leaving {
            return Err(LayoutError::NoSuchMovement {
                dc,
                expected: Movement::Leave { node: node.into() },
            });
        }
        let mut out = self.clone();
        out.version += 1;
        if out.step_back(&dc) == SteppedBack::Dropped {
            out.set_state(node, NodeState::Normal);
        }
        Ok(out)
    }

    /// The leaver whose decommission in `dc` is being cancelled (between
    /// the two steps of [`Layout::cancel_leave`]), if any.
    pub fn cancelling(&self, dc: &str) -> Option<&str> {
        match self.movements.get(dc)? {
            Movement::Leave { node } if self.aborting.contains(dc) => Some(node),
            _ => None,
        }
    }
}
