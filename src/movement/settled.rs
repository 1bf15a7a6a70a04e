//! Which removals this node's part of the copy is done for
//! (`remove::follow`), so a finished copy is not run again on every new
//! layout version: another datacenter's finish cuts the plan's pieces anew
//! (cursors are keyed by exact range, so they miss and the copy restarted
//! from zero, review-elastic28 M3) without changing the tokens this removal
//! gains. Keyed by the dead node and whether its removal is forced (forcing
//! changes what is copied: it runs again).
//!
//! Owns [`Settled`]. Must not copy, nor decide who copies.

use std::collections::BTreeSet;

use crate::layout::Layout;

/// The removals whose copy this node finished, each under the key
/// [`Settled::key`] gives it.
#[derive(Debug, Default)]
pub struct Settled(BTreeSet<(String, bool)>);

impl Settled {
    fn key(layout: &Layout, dead: &str) -> (String, bool) {
        (dead.to_string(), super::remove::forced(layout, dead))
    }

    /// Whether this node's copy for `layout`'s removal of `dead` is done.
    pub fn contains(&self, layout: &Layout, dead: &str) -> bool {
        self.0.contains(&Self::key(layout, dead))
    }

    /// This node's copy for `layout`'s removal of `dead` is done.
    pub fn insert(&mut self, layout: &Layout, dead: &str) {
        self.0.insert(Self::key(layout, dead));
    }

    /// Forgets the removals not in `going` (over).
    pub fn retain(&mut self, going: &[String]) {
        self.0.retain(|(dead, _)| going.contains(dead));
    }
}
