//! Who decides a layout change: the acceptors of slot v+1 and which sets
//! of them make a quorum, a function of the chosen layout v and of the
//! change proposed (issue 11, review M2).
//!
//! The rule. The *voters* of slot v+1 are the members of v (neither Left
//! nor Removed) except
//! - Joining nodes (a joiner or a replacement that may never have started:
//!   it votes once `finish_*` made it Normal), and
//! - the nodes v declares dead: the node of a `Movement::Remove`, the
//!   `dead` of a `Movement::Replace`
//!
//! (all members when that leaves nobody). Let M be the voters, N = |M|
//! and m the first of M by id (the tie-breaker). A change that declares
//! one voter x dead (x is in a `Remove` or a `Replace`'s `dead` of the
//! proposed layout but not of v: `begin_remove`, `begin_replace`, the
//! abort of a leaving node) is decided without x:
//! - by ⌊N/2⌋ + 1 of M \ {x}, or
//! - when N is even and x ≠ m, by N/2 of M \ {x} with m among them.
//!
//! Any other change needs ⌊N/2⌋ + 1 of M.
//!
//! Why it is safe. Paxos stays safe when every quorum a proposer may use
//! in phase 1 meets every quorum that may have accepted in phase 2, even
//! when the two proposers use different quorum rules ("flexible Paxos").
//! All quorums of slot v+1 are subsets of M, and M and m depend on v
//! alone: v is the one layout chosen for its version (only chosen layouts
//! are installed), so every proposer of slot v+1 derives the same M and m,
//! whatever it proposes and whatever accepted value it adopts. Two
//! quorums of sizes a and b within M with a + b > N meet. The sizes are
//! ⌊N/2⌋ + 1 (plain, or excluding m, or N odd) and N/2 (N even, x ≠ m):
//! every pair sums to N + 1 or more, except two of size N/2, and those
//! both hold m. So no two different layouts are chosen for one version.
//!
//! What it costs. A partition in two equal halves of an even M lets only
//! m's half remove a node of the other; in a 2-node cluster only the
//! first node by id can remove the second (either could be the one cut
//! off, and both removing the other would fork the cluster). A change
//! that declares nobody dead (a keyspace, a join, a decommission) still
//! needs a majority of all voters, across datacenters: with a whole
//! datacenter of a 3 + 3 cluster down, it waits; removals of the dead
//! datacenter's nodes go on when m is in the live one.
//!
//! Must not: look at liveness (two proposers would derive different
//! sets), or do I/O.

use std::collections::BTreeSet;

use super::{Layout, Movement, NodeState};

/// The quorum rule of slot `base.version + 1` for a proposer of `next`.
pub fn quorum(base: &Layout, next: &Layout) -> Quorum {
    let voters = voters(base);
    let before = declared_dead(base);
    let newly: Vec<String> = (declared_dead(next).into_iter())
        .filter(|x| !before.contains(x) && voters.contains(x))
        .collect();
    match newly.as_slice() {
        [x] => rule(voters, Some(x.as_str())),
        _ => rule(voters, None),
    }
}

/// The quorums of `voters` for a change that declares `excluded` (one of
/// them) dead, or nobody (see the module doc).
pub fn rule(voters: BTreeSet<String>, excluded: Option<&str>) -> Quorum {
    let Some(x) = excluded.filter(|x| voters.contains(*x)) else {
        return Quorum::majority(voters);
    };
    let n = voters.len();
    let first = voters.first().cloned();
    let mut members = voters;
    members.remove(x);
    if n % 2 == 0 && first.as_deref() != Some(x) {
        Quorum {
            members,
            needed: n / 2,
            required: first,
        }
    } else {
        Quorum {
            members,
            needed: n / 2 + 1,
            required: None,
        }
    }
}

/// The voters of slot `base.version + 1` (see the module doc).
pub fn voters(base: &Layout) -> BTreeSet<String> {
    let dead = declared_dead(base);
    let members: Vec<_> = (base.nodes())
        .filter(|(_, _, n)| n.state.is_member())
        .map(|(_, _, n)| n)
        .collect();
    let voters: BTreeSet<String> = (members.iter())
        .filter(|n| n.state != NodeState::Joining && !dead.contains(&n.id))
        .map(|n| n.id.clone())
        .collect();
    if voters.is_empty() {
        return members.iter().map(|n| n.id.clone()).collect();
    }
    voters
}

/// The nodes `layout`'s movements declare dead.
fn declared_dead(layout: &Layout) -> BTreeSet<String> {
    (layout.movements.values())
        .flat_map(Movement::declared_dead)
        .map(String::from)
        .collect()
}

/// Which sets of acceptors decide a slot: at least `needed` of `members`,
/// with `required` among them when set. Every two quorums that proposers
/// of one slot may use must meet (`layout::acceptors` proves it for the
/// layout's rule).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quorum {
    pub members: BTreeSet<String>,
    pub needed: usize,
    pub required: Option<String>,
}

impl Quorum {
    /// A plain majority of `members`.
    pub fn majority(members: BTreeSet<String>) -> Quorum {
        let needed = members.len() / 2 + 1;
        Quorum {
            members,
            needed,
            required: None,
        }
    }

    /// Whether `by` (acceptors of `members`) is a quorum.
    pub fn is_met(&self, by: &BTreeSet<String>) -> bool {
        by.len() >= self.needed && self.required.as_ref().is_none_or(|r| by.contains(r))
    }

    /// Whether a quorum can still be met without any of `out`.
    pub fn is_possible_without(&self, out: &BTreeSet<String>) -> bool {
        let left = self.members.iter().filter(|m| !out.contains(*m)).count();
        left >= self.needed && self.required.as_ref().is_none_or(|r| !out.contains(r))
    }
}

/// Among `held` (acceptors and the layout each installed, all of one
/// version), the layout a quorum of its own voters holds, if one does:
/// every change after it needs a quorum of those voters, each of which
/// refuses a change built on another layout of that version, so it is the
/// one the cluster builds on (review-layout26 M2: what a node on a fork
/// adopts). `None` when no layout has that backing among `held`.
pub fn held_by_its_voters(held: &[(String, Layout)]) -> Option<&Layout> {
    let mut seen = BTreeSet::new();
    for (_, candidate) in held {
        let digest = candidate.digest();
        if !seen.insert(digest) {
            continue;
        }
        let quorum = Quorum::majority(voters(candidate));
        let holders: BTreeSet<String> = (held.iter())
            .filter(|(id, l)| quorum.members.contains(id) && l.digest() == digest)
            .map(|(id, _)| id.clone())
            .collect();
        if quorum.is_met(&holders) {
            return Some(candidate);
        }
    }
    None
}
