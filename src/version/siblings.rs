//! Sibling sets: a key's full replicated state (clock + concurrent values),
//! the coordinating replica's `update` and the replicas' state `merge`.
//!
//! Owns [`Sibling`], [`SiblingSet`] and [`SiblingError`]. Must not do I/O,
//! take locks or read the wall clock: the caller serialises updates per key
//! and passes the timestamp in.

use bytes::Bytes;

use super::actor::{ActorId, Dot};
use super::clock::VersionVector;
use super::context::CausalContext;

/// One concurrent version of a key. `value == None` is a tombstone (a
/// delete): it takes part in causality exactly like a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sibling {
    pub dot: Dot,
    pub value: Option<Bytes>,
    /// Wall-clock time at the coordinating replica; informational only, never
    /// used to order siblings.
    pub timestamp_ms: u64,
}

impl Sibling {
    pub fn is_tombstone(&self) -> bool {
        self.value.is_none()
    }
}

/// The write was rejected before anything changed.
#[derive(Debug, thiserror::Error)]
pub enum SiblingError {
    /// It would leave more siblings than the cap.
    #[error(
        "too many siblings: {count} > cap {cap}; resolve them with the causal context from a read"
    )]
    TooMany { count: usize, cap: usize },
    /// The context names a write of this replica's actor that this replica
    /// never made: it was not returned by geokv (forged or damaged).
    #[error(
        "the context covers write {claimed} of actor {actor}, but that replica has made only \
         {minted} writes to this key; pass back a context a read or write returned"
    )]
    ContextAhead {
        actor: ActorId,
        claimed: u64,
        minted: u64,
    },
    /// The actor's counter for this key is exhausted (cannot happen below
    /// `MAX_CONTEXT_COUNTER`; checked rather than wrapped).
    #[error("dot counter of actor {actor} is exhausted for this key")]
    CounterExhausted { actor: ActorId },
}

/// A key's state. Invariants (kept by every method and checked by `decode`):
/// `clock` covers every sibling's dot; siblings are sorted by dot, unique.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SiblingSet {
    pub clock: VersionVector,
    pub siblings: Vec<Sibling>,
}

impl SiblingSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// A new write (`Some`) or delete (`None`) coordinated by `actor`, given
    /// the client's causal `context`. Drops every sibling `context` covers,
    /// adds one sibling with dot `(actor, n+1)` where `n` is `actor`'s counter
    /// in `clock ∪ context.past`, and sets `clock = clock ∪ context.past ∪
    /// {dot}`. The context's exact dots this replica holds are dropped with
    /// the rest; one it has not received yet cannot join the clock (that
    /// would cover the dots before it too), so if it arrives later it stays
    /// as a sibling of this write: a false conflict, never a lost write.
    ///
    /// `actor`'s writes to a key are all made here, so `clock` knows the
    /// last one; a context naming a later one was not made by geokv and is
    /// refused (it could otherwise hide this actor's future writes). An
    /// actor that may have lost writes gets a new incarnation (`node`).
    ///
    /// Rejects the write, leaving `self` unchanged, if the result would hold
    /// more than `max_siblings` siblings.
    pub fn update(
        &mut self,
        actor: ActorId,
        context: &CausalContext,
        value: Option<Bytes>,
        timestamp_ms: u64,
        max_siblings: usize,
    ) -> Result<Dot, SiblingError> {
        let minted = self.clock.get(actor);
        let claimed = context.max_counter(actor);
        if claimed > minted {
            return Err(SiblingError::ContextAhead {
                actor,
                claimed,
                minted,
            });
        }
        // Never mint a counter a context could not carry back.
        let counter = minted
            .checked_add(1)
            .filter(|c| *c <= super::MAX_CONTEXT_COUNTER)
            .ok_or(SiblingError::CounterExhausted { actor })?;
        let kept = self
            .siblings
            .iter()
            .filter(|s| !context.covers(s.dot))
            .count();
        let count = kept + 1;
        if count > max_siblings {
            return Err(SiblingError::TooMany {
                count,
                cap: max_siblings,
            });
        }
        self.siblings.retain(|s| !context.covers(s.dot));
        self.clock.merge(context.past());
        let dot = Dot::new(actor, counter);
        self.clock.advance_to(actor, dot.counter);
        let sibling = Sibling {
            dot,
            value,
            timestamp_ms,
        };
        // The new counter exceeds every dot of `actor` held here, but another
        // actor may sort after it: insert in place to keep the order.
        let at = self.siblings.partition_point(|s| s.dot < dot);
        self.siblings.insert(at, sibling);
        Ok(dot)
    }

    /// State merge: commutative, associative, idempotent. A sibling of one
    /// side survives unless the other side has seen its dot (its clock covers
    /// it) and no longer holds it, i.e. the other side saw it overwritten.
    /// Never applies the sibling cap: dropping a sibling here would lose an
    /// acknowledged write.
    pub fn merge(&mut self, other: &SiblingSet) {
        let (a, b) = (&self.siblings, &other.siblings);
        let mut out = Vec::with_capacity(a.len().max(b.len()));
        let (mut i, mut j) = (0, 0);
        while i < a.len() || j < b.len() {
            let order = match (a.get(i), b.get(j)) {
                (Some(x), Some(y)) => x.dot.cmp(&y.dot),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, _) => std::cmp::Ordering::Greater,
            };
            match order {
                std::cmp::Ordering::Less => {
                    if !other.clock.covers(a[i].dot) {
                        out.push(a[i].clone());
                    }
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    if !self.clock.covers(b[j].dot) {
                        out.push(b[j].clone());
                    }
                    j += 1;
                }
                std::cmp::Ordering::Equal => {
                    out.push(same_dot(&a[i], &b[j]).clone());
                    i += 1;
                    j += 1;
                }
            }
        }
        self.siblings = out;
        self.clock.merge(&other.clock);
    }

    /// The causal context to hand a reader: it covers every sibling (and
    /// every dot already overwritten), exactly what the reader is shown.
    pub fn context(&self) -> CausalContext {
        CausalContext::from_past(self.clock.clone())
    }

    pub fn values(&self) -> impl Iterator<Item = &Sibling> {
        self.siblings.iter()
    }

    pub fn len(&self) -> usize {
        self.siblings.len()
    }

    pub fn is_empty(&self) -> bool {
        self.siblings.is_empty()
    }

    /// Every sibling is a tombstone (vacuously true with no siblings).
    pub fn is_tombstone_only(&self) -> bool {
        self.siblings.iter().all(Sibling::is_tombstone)
    }
}

/// Two siblings with one dot are the same write and should be identical. If
/// they are not (corruption, or a node that lost its data reusing a counter)
/// pick one by a total order so merge stays commutative.
fn same_dot<'a>(x: &'a Sibling, y: &'a Sibling) -> &'a Sibling {
    if x == y {
        return x;
    }
    let key = |s: &'a Sibling| (s.timestamp_ms, s.value.as_deref());
    if key(x) >= key(y) {
        x
    } else {
        y
    }
}
