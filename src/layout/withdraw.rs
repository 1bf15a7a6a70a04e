//! The way out of a removal before its switch, and a forced replacement
//! (issue 11, review-cancel31 H1, audit11 D3). In a datacenter of rf+1
//! nodes where two die together, the removal of the first waits for ever
//! on the second (a gainer), which cannot join it (too few would be left):
//! [`Layout::withdraw_remove`] drops the removal, the second node is then
//! replaced ([`Layout::force_replace`]: its ranges the first also held have
//! one survivor), then the first is removed.
//!
//! A withdraw is one version, safe for the reason the one-step cancel of a
//! decommission is: reads never left the old owners, and a write
//! acknowledged at blockFor+pending has at least blockFor acknowledgements
//! among them. Refused once the removal reads from its new owners
//! ([`LayoutError::WithdrawAfterSwitch`]): its copies are done, it
//! finishes by itself.
//!
//! Must not check liveness nor decide when to propose (the admin route
//! does); pure, like every transition.

use super::{Layout, LayoutError, Movement, NodeState};

type Result<T> = std::result::Result<T, LayoutError>;

impl Layout {
    /// The removal in progress in `dc` withdrawn: the movement cleared and
    /// every node it removes Normal again (with its tokens), one version on.
    pub fn withdraw_remove(&self, dc: &str) -> Result<Layout> {
        let Some(m @ Movement::Remove { .. }) = self.movements.get(dc) else {
            return Err(no_removal(dc, "?"));
        };
        if self.reads_new(dc) {
            return Err(LayoutError::WithdrawAfterSwitch {
                dc: dc.into(),
                in_progress: m.clone(),
            });
        }
        let mut out = self.clone();
        out.version += 1;
        out.movements.remove(dc);
        out.reading_new.remove(dc);
        out.aborting.remove(dc);
        for node in m.declared_dead() {
            out.set_state(node, NodeState::Normal);
            out.withdrawn.insert(node.to_string(), out.version);
        }
        Ok(out)
    }

    /// [`Layout::withdraw_remove`] of the removal that removes `node`
    /// (its first node or one removed with it).
    pub fn withdraw_removal_of(&self, node: &str) -> Result<Layout> {
        let (dc, _, _) = (self.node(node)).ok_or_else(|| LayoutError::UnknownNode(node.into()))?;
        match self.movements.get(dc) {
            Some(m @ Movement::Remove { .. }) if m.declared_dead().contains(&node) => {
                self.withdraw_remove(dc)
            }
            _ => Err(no_removal(dc, node)),
        }
    }

    /// The replacement of the dead `dead` in progress copies from the
    /// survivors that are up even where too few are (`geokv removenode
    /// DEAD --force`); the layout unchanged when it is forced already.
    pub fn force_replace(&self, dead: &str) -> Result<Layout> {
        let (dc, _, _) = (self.node(dead)).ok_or_else(|| LayoutError::UnknownNode(dead.into()))?;
        let out = forced(self.clone(), dc, |m| match m {
            Movement::Replace { dead: d, force, .. } if d == dead => Some(force),
            _ => None,
        });
        out.ok_or_else(|| LayoutError::NoSuchMovement {
            dc: dc.into(),
            expected: Movement::Replace {
                dead: dead.into(),
                new: "?".into(),
                force: true,
            },
        })
    }
}

/// `out` with the `force` flag `pick` finds in its movement of `dc` set,
/// one version on, or unchanged when set already; `None` when `pick`
/// finds none. [`Layout::force_remove`] and [`Layout::force_replace`]
/// share it (issue 10 D7).
pub(super) fn forced(
    mut out: Layout,
    dc: &str,
    pick: impl FnOnce(&mut Movement) -> Option<&mut bool>,
) -> Option<Layout> {
    let flag = out.movements.get_mut(dc).and_then(pick)?;
    if !std::mem::replace(flag, true) {
        out.version += 1;
    }
    Some(out)
}

fn no_removal(dc: &str, node: &str) -> LayoutError {
    LayoutError::NoSuchMovement {
        dc: dc.into(),
        expected: Movement::Remove {
            node: node.into(),
            also: Vec::new(),
            force: false,
            began: 0,
        },
    }
}
