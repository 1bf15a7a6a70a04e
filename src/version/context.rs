//! The causal context a client hands back on a write: exactly the versions
//! that client was shown, and nothing else.
//!
//! Owns [`CausalContext`]: a downward-closed causal past (a
//! [`VersionVector`], what a read's clock covers) plus a few exact dots (the
//! client's own writes). Must not know about values, storage or encodings
//! (the byte format is in `codec.rs`).
//!
//! # Why a write's context is not the stored clock
//! A write at replica A gets the dot `(A, n)`. The clock `A: n` also covers
//! `(A, 1..n)`, which may be *concurrent* siblings other clients wrote
//! through A, and which this client never saw. Handing that clock back as
//! the write's context would let the client's next write silently drop
//! them (issue 9, defect 1). So a write returns `context ∪ {(A, n)}`: the
//! causal past the client's own context had, plus the one exact dot it just
//! made (dotted version vectors' "dot + causal past", Preguiça et al.).
//!
//! Exact dots that follow the past without a gap are folded into it, so a
//! client that keeps writing one key with the context of its last write
//! carries a context of one entry per actor plus at most one dot per actor.

use super::actor::{ActorId, Dot};
use super::clock::VersionVector;

/// What a client has seen of a key: `past` (every dot it covers) and the
/// exact `dots` (each seen, though the dots before it may not have been).
///
/// Invariant: `dots` sorted, unique, none covered by `past`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CausalContext {
    past: VersionVector,
    dots: Vec<Dot>,
}

impl CausalContext {
    /// The empty context: a write with it is a blind write.
    pub fn new() -> Self {
        Self::default()
    }

    /// A context of exactly `past` (what a read returns: the state's clock).
    pub fn from_past(past: VersionVector) -> Self {
        CausalContext {
            past,
            dots: Vec::new(),
        }
    }

    /// Builds from parts in any order, restoring the invariant.
    pub fn from_parts(past: VersionVector, dots: impl IntoIterator<Item = Dot>) -> Self {
        let mut c = CausalContext::from_past(past);
        for d in dots {
            c.add_dot(d);
        }
        c
    }

    /// The causal past: every dot of `(actor, 1..=n)` for its entries.
    pub fn past(&self) -> &VersionVector {
        &self.past
    }

    /// The exact dots beyond the past.
    pub fn dots(&self) -> &[Dot] {
        &self.dots
    }

    /// The client saw `d` (and so may overwrite it).
    pub fn covers(&self, d: Dot) -> bool {
        self.past.covers(d) || self.dots.binary_search(&d).is_ok()
    }

    pub fn is_empty(&self) -> bool {
        self.past.is_empty() && self.dots.is_empty()
    }

    /// The largest counter this context names for `actor`.
    pub fn max_counter(&self, actor: ActorId) -> u64 {
        let exact = self.dots.iter().filter(|d| d.actor == actor);
        exact
            .map(|d| d.counter)
            .fold(self.past.get(actor), u64::max)
    }

    /// The largest counter of any actor (for input validation).
    pub fn max_any_counter(&self) -> u64 {
        let past = self.past.iter().map(|(_, n)| n).max().unwrap_or(0);
        self.dots.iter().map(|d| d.counter).fold(past, u64::max)
    }

    /// The context of a write made with `self` that got the dot `dot`, where
    /// `clock_after` is the coordinating replica's clock after the write.
    /// Covers `self` and `dot`, never another dot of `dot`'s actor that
    /// `self` did not cover. Exact dots the write's replica had seen are
    /// now behind the write (it dropped them and its clock covers them), so
    /// they are not carried on; exact dots it had not seen yet are kept, so
    /// the client's next write can still drop them where they exist.
    pub fn after_write(&self, dot: Dot, clock_after: &VersionVector) -> CausalContext {
        let kept = self
            .dots
            .iter()
            .copied()
            .filter(|d| !clock_after.covers(*d));
        CausalContext::from_parts(self.past.clone(), kept.chain(std::iter::once(dot)))
    }

    /// Adds one exact dot, folding it (and any that then follow without a
    /// gap) into the past.
    fn add_dot(&mut self, d: Dot) {
        if self.covers(d) {
            return;
        }
        if self.past.get(d.actor).checked_add(1) == Some(d.counter) {
            self.past.advance_to(d.actor, d.counter);
            self.fold(d.actor);
            return;
        }
        let at = self.dots.partition_point(|x| *x < d);
        self.dots.insert(at, d);
    }

    /// Moves `actor`'s exact dots that now follow its past into the past.
    fn fold(&mut self, actor: ActorId) {
        while let Some(counter) = self.past.get(actor).checked_add(1) {
            match self.dots.binary_search(&Dot::new(actor, counter)) {
                Ok(i) => {
                    self.dots.remove(i);
                    self.past.advance_to(actor, counter);
                }
                Err(_) => break,
            }
        }
        let past = &self.past;
        self.dots.retain(|d| !past.covers(*d));
    }
}

impl From<VersionVector> for CausalContext {
    fn from(past: VersionVector) -> Self {
        CausalContext::from_past(past)
    }
}
