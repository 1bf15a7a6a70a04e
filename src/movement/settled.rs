//! Which removals this node's part of the copy is done for
//! (`remove::follow`), so a finished copy is not run again on every new
//! layout version: another datacenter's finish cuts the plan's pieces anew
//! (cursors are keyed by exact range, so they miss and the copy restarted
//! from zero, review-elastic28 M3) without changing the tokens this removal
//! gains. Keyed by the removal's name (`remove::movement_name`: the dead
//! nodes it removes and its attempt, `(attempt vN)`) only: a copy that completed unforced met quorum on
//! every range, more than forcing asks, so forcing the removal afterwards
//! does not run it again (review-elastic29 L3); a dead gainer removed with
//! it (audit11 D1) changes the plan and the name, so the copy runs again.
//!
//! Owns [`Settled`]. Must not copy, nor decide who copies.

use std::collections::BTreeSet;

/// The dead nodes whose removal's copy this node finished.
#[derive(Debug, Default)]
pub struct Settled(BTreeSet<String>);

impl Settled {
    /// Whether this node's copy for the removal of `dead` is done.
    pub fn contains(&self, dead: &str) -> bool {
        self.0.contains(dead)
    }

    /// This node's copy for the removal of `dead` is done.
    pub fn insert(&mut self, dead: &str) {
        self.0.insert(dead.to_string());
    }

    /// Forgets the removals not in `going` (over).
    pub fn retain(&mut self, going: &[String]) {
        self.0.retain(|dead| going.contains(dead));
    }
}
