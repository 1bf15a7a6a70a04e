//! Version vectors: the downward-closed set of dots a replica (or a client's
//! context) has seen, and the causal order between two of them.
//!
//! Owns [`VersionVector`] and [`Causality`]. Must not know about values or
//! siblings; its byte encoding lives in `codec.rs`.

use super::actor::{ActorId, Dot};

/// How two clocks relate.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Causality {
    Equal,
    /// `self` has seen everything `other` has, and more.
    Descends,
    /// `other` has seen everything `self` has, and more.
    Dominated,
    /// Each has seen something the other has not.
    Concurrent,
}

impl Causality {
    /// The same relation seen from the other side.
    pub fn reverse(self) -> Causality {
        match self {
            Causality::Descends => Causality::Dominated,
            Causality::Dominated => Causality::Descends,
            c => c,
        }
    }
}

/// `actor -> n`: dots `(actor, 1..=n)` have all been seen.
///
/// Invariant: entries sorted by actor, actors unique, counters > 0. There is
/// one entry per node that ever coordinated a write to the key, so the Vec is
/// small and a linear merge beats a map.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VersionVector {
    entries: Vec<(ActorId, u64)>,
}

impl VersionVector {
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds from entries in any order; zero counters are dropped and
    /// duplicate actors keep their largest counter.
    pub fn from_entries(entries: impl IntoIterator<Item = (ActorId, u64)>) -> Self {
        let mut vv = VersionVector::new();
        for (a, n) in entries {
            vv.advance_to(a, n);
        }
        vv
    }

    /// Wraps entries already known to satisfy the invariant (used by the codec).
    pub(super) fn from_sorted_unchecked(entries: Vec<(ActorId, u64)>) -> Self {
        debug_assert!(entries.windows(2).all(|w| w[0].0 < w[1].0));
        debug_assert!(entries.iter().all(|e| e.1 > 0));
        VersionVector { entries }
    }

    pub fn get(&self, a: ActorId) -> u64 {
        match self.entries.binary_search_by_key(&a, |e| e.0) {
            Ok(i) => self.entries[i].1,
            Err(_) => 0,
        }
    }

    pub fn covers(&self, d: Dot) -> bool {
        self.get(d.actor) >= d.counter
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number of actors.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// `(actor, counter)` pairs in actor order.
    pub fn iter(&self) -> impl Iterator<Item = (ActorId, u64)> + '_ {
        self.entries.iter().copied()
    }

    /// Raises `a`'s counter to `n` if it is lower (never lowers it).
    pub fn advance_to(&mut self, a: ActorId, n: u64) {
        if n == 0 {
            return;
        }
        match self.entries.binary_search_by_key(&a, |e| e.0) {
            Ok(i) => self.entries[i].1 = self.entries[i].1.max(n),
            Err(i) => self.entries.insert(i, (a, n)),
        }
    }

    /// Pointwise maximum (the join of the two downward-closed sets).
    pub fn merge(&mut self, other: &Self) {
        if other.entries.is_empty() {
            return;
        }
        let mut out = Vec::with_capacity(self.entries.len() + other.entries.len());
        let (mut i, mut j) = (0, 0);
        let (a, b) = (&self.entries, &other.entries);
        while i < a.len() && j < b.len() {
            match a[i].0.cmp(&b[j].0) {
                std::cmp::Ordering::Less => {
                    out.push(a[i]);
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    out.push(b[j]);
                    j += 1;
                }
                std::cmp::Ordering::Equal => {
                    out.push((a[i].0, a[i].1.max(b[j].1)));
                    i += 1;
                    j += 1;
                }
            }
        }
        out.extend_from_slice(&a[i..]);
        out.extend_from_slice(&b[j..]);
        self.entries = out;
    }

    pub fn compare(&self, other: &Self) -> Causality {
        let (mut greater, mut less) = (false, false);
        let (a, b) = (&self.entries, &other.entries);
        let (mut i, mut j) = (0, 0);
        while i < a.len() || j < b.len() {
            let order = match (a.get(i), b.get(j)) {
                (Some(x), Some(y)) => x.0.cmp(&y.0),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, _) => std::cmp::Ordering::Greater,
            };
            match order {
                std::cmp::Ordering::Less => {
                    greater = true;
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    less = true;
                    j += 1;
                }
                std::cmp::Ordering::Equal => {
                    greater |= a[i].1 > b[j].1;
                    less |= a[i].1 < b[j].1;
                    i += 1;
                    j += 1;
                }
            }
            if greater && less {
                return Causality::Concurrent;
            }
        }
        match (greater, less) {
            (false, false) => Causality::Equal,
            (true, false) => Causality::Descends,
            (false, true) => Causality::Dominated,
            (true, true) => Causality::Concurrent,
        }
    }

    /// `self` has seen everything `other` has (Equal or Descends).
    pub fn descends_or_equals(&self, other: &Self) -> bool {
        matches!(self.compare(other), Causality::Equal | Causality::Descends)
    }
}
