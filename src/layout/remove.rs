//! Removals of dead nodes beyond `begin_remove` (`transition.rs`): the
//! nodes a movement declares dead, [`Layout::force_remove`] (copy from the
//! survivors that are up), [`Layout::join_removal`] (a dead Normal node
//! that gains in its datacenter's removal is removed with it: audit11 D1,
//! Scylla's `removenode` of several dead nodes; it becomes Leaving and is
//! added to the removal's `also`, so the plan is made over the layout
//! without all of them, `settled`, and the remaining gainers copy its
//! ranges too; refused once the removal reads from its new owners,
//! [`LayoutError::RemovalReadsNew`]: its copies are done then and it
//! finishes without that gainer) and [`Layout::finish_remove`].
//!
//! Must not check liveness or plans (the caller, `movement::remove`, says
//! the node is dead and gains), nor decide when to propose a step.

use super::transition::expect_state;
use super::{Layout, LayoutError, Movement, NodeState};

type Result<T> = std::result::Result<T, LayoutError>;

impl Movement {
    /// The nodes this movement declares dead: every node of a removal, the
    /// replaced node of a replacement.
    pub fn declared_dead(&self) -> Vec<&str> {
        match self {
            Movement::Remove { node, also, .. } => std::iter::once(node.as_str())
                .chain(also.iter().map(String::as_str))
                .collect(),
            Movement::Replace { dead, .. } => vec![dead.as_str()],
            Movement::Join { .. } | Movement::Leave { .. } => Vec::new(),
        }
    }
}

impl Layout {
    /// The dead Normal `node` joins the removal in progress in its
    /// datacenter (the caller checked it is dead and gains in it).
    pub fn join_removal(&self, node: &str) -> Result<Layout> {
        let (dc, _, n) = (self.node(node)).ok_or_else(|| LayoutError::UnknownNode(node.into()))?;
        expect_state(n, NodeState::Normal, "Normal")?;
        let in_progress = self.movements.get(dc).cloned();
        let Some(Movement::Remove { .. }) = in_progress else {
            return Err(LayoutError::NoSuchMovement {
                dc: dc.into(),
                expected: Movement::Remove {
                    node: "?".into(),
                    also: vec![node.into()],
                    force: false,
                    began: 0,
                },
            });
        };
        let in_progress = in_progress.expect("matched above");
        if self.reads_new(dc) {
            return Err(LayoutError::RemovalReadsNew {
                node: node.into(),
                dc: dc.into(),
                in_progress,
            });
        }
        self.enough_left(dc, node)?;
        let dc = dc.to_string();
        let mut out = self.clone();
        out.version += 1;
        // A join drops the removal's `--force`, for the whole removal (the
        // first node's ranges too): it was not given for this node's
        // ranges; give it again if a range is short (review-cancel31 L5,
        // review-cancel2-31 L2).
        if let Some(Movement::Remove { also, force, .. }) = out.movements.get_mut(&dc) {
            also.push(node.into());
            also.sort();
            *force = false;
        }
        out.set_state(node, NodeState::Leaving);
        Ok(out)
    }

    /// The removal of `node` in progress goes on from the survivors that
    /// are up even where too few are (`geokv removenode --force`); the
    /// layout unchanged when it is forced already.
    pub fn force_remove(&self, node: &str) -> Result<Layout> {
        let (dc, _, _) = self
            .node(node)
            .ok_or_else(|| LayoutError::UnknownNode(node.into()))?;
        let out = super::withdraw::forced(self.clone(), dc, |m| match m {
            Movement::Remove {
                node: n,
                also,
                force,
                ..
            } if n == node || also.contains(&node.to_string()) => Some(force),
            _ => None,
        });
        out.ok_or_else(|| LayoutError::NoSuchMovement {
            dc: dc.into(),
            expected: Movement::Remove {
                node: node.into(),
                also: Vec::new(),
                force: true,
                began: 0,
            },
        })
    }

    /// The removal of `node` (and of the nodes removed with it, `also`) is
    /// complete: each becomes Removed.
    pub fn finish_remove(&self, node: &str) -> Result<Layout> {
        let (dc, _, _) = self
            .node(node)
            .ok_or_else(|| LayoutError::UnknownNode(node.into()))?;
        let movement = match self.movements.get(dc) {
            Some(m @ Movement::Remove { node: n, .. }) if n == node => m.clone(),
            _ => Movement::Remove {
                node: node.into(),
                also: Vec::new(),
                force: false,
                began: 0,
            },
        };
        let gone = movement.declared_dead().into_iter().map(String::from);
        let gone: Vec<String> = gone.collect();
        self.finish(node, movement, |l| {
            gone.iter().for_each(|n| l.set_state(n, NodeState::Removed))
        })
    }
}
