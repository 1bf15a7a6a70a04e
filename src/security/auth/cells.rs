//! The cells of the replicated auth state and their merge, a state-based
//! CRDT (per-cell last-write-wins, as Cassandra's `system_auth` tables
//! behave): every change carries a hybrid-logical-clock [`Stamp`]; a role's
//! create (with its secret), its drop (a tombstone, kept: roles are few) and
//! each (keyspace, permission) grant or revoke is a cell, and two states
//! merge cell by cell, the higher stamp winning. A create or a drop resets
//! the role: cells stamped before it no longer count. The merge is
//! commutative, associative and idempotent, so nodes converge whatever order
//! states meet in, and a change is lost only to a later change of its cell.
//!
//! Must not: validate names, decide permissions, or know the wire format.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::model::{Perm, Role};

/// A hybrid-logical-clock timestamp: wall time, a counter within it, and
/// the writer (a node's random id) as the tie-break. Ordered in that order.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Stamp {
    /// Milliseconds since the Unix epoch (0: a cell upgraded from the old
    /// versioned format, whose version is then `n`).
    pub ms: u64,
    pub n: u64,
    pub node: u64,
}

impl Stamp {
    /// The lowest stamp, of the bootstrap admin role: every change, and
    /// every role upgraded from the old format, is later.
    pub const FLOOR: Stamp = Stamp {
        ms: 0,
        n: 0,
        node: 0,
    };

    /// The stamp of a change made by `node` at wall time `now_ms` on a state
    /// whose newest stamp is `seen`: later than both (so a change is later
    /// than everything its node knew, whatever its clock says). `None` when
    /// no stamp is later than `seen` (it is the largest there is): a change
    /// stamped lower would lose to what it supersedes (review-auth29 M2).
    pub fn next(seen: Stamp, now_ms: u64, node: u64) -> Option<Stamp> {
        if now_ms > seen.ms {
            return Some(Stamp {
                ms: now_ms,
                n: 0,
                node,
            });
        }
        if let Some(n) = seen.n.checked_add(1) {
            return Some(Stamp {
                ms: seen.ms,
                n,
                node,
            });
        }
        let ms = seen.ms.checked_add(1)?;
        Some(Stamp { ms, n: 0, node })
    }
}

/// A role's latest create: when, and the secret (argon2 PHC) it set.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Created {
    pub at: Stamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// One (keyspace, permission) cell: held or revoked, as of `at`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Cell {
    pub at: Stamp,
    pub held: bool,
}

/// One cell of a role that a change writes: its create, its drop, or a
/// (keyspace, permission) grant (`true`) or revoke (`false`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Slot {
    Created,
    Dropped,
    Grant(String, Perm, bool),
}

/// What a state holds of one cell a change wrote ([`RoleCells::kept`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kept {
    /// The change's write, or a later one asking the same.
    Ours,
    /// A later change, stamped so, that undoes it.
    Later(Stamp),
    /// Neither yet.
    NotYet,
}

/// Everything replicated about one role name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleCells {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<Created>,
    /// The latest drop (a tombstone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropped: Option<Stamp>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub grants: BTreeMap<String, BTreeMap<Perm, Cell>>,
}

impl RoleCells {
    /// The stamp before which nothing of this role counts.
    fn created_at(&self) -> Stamp {
        self.created.as_ref().map(|c| c.at).unwrap_or_default()
    }

    /// Whether the role exists: created after its last drop.
    pub fn exists(&self) -> bool {
        self.created
            .as_ref()
            .is_some_and(|c| self.dropped.is_none_or(|d| c.at > d))
    }

    /// Whether a cell stamped `at` still counts (no later create or drop).
    fn counts(&self, at: Stamp) -> bool {
        at >= self.created_at() && self.dropped.is_none_or(|d| at > d)
    }

    /// Both sides' cells, each the higher-stamped (ties: the greater value,
    /// the same on every node), then [`RoleCells::normalize`]d.
    pub fn merge(mut self, other: RoleCells) -> RoleCells {
        self.created = self.created.max(other.created);
        self.dropped = self.dropped.max(other.dropped);
        for (ks, cells) in other.grants {
            let mine = self.grants.entry(ks).or_default();
            for (perm, cell) in cells {
                let slot = mine.entry(perm).or_insert(cell);
                *slot = (*slot).max(cell);
            }
        }
        self.normalize();
        self
    }

    /// Forgets what can never count again: cells older than the last create
    /// or drop, and a dropped role's create and secret (the tombstone
    /// stays). The same on every node for the same cells.
    pub fn normalize(&mut self) {
        if self
            .created
            .as_ref()
            .zip(self.dropped)
            .is_some_and(|(c, d)| c.at <= d)
        {
            self.created = None;
        }
        let (created_at, dropped) = (self.created_at(), self.dropped);
        let counts = |at: Stamp| at >= created_at && dropped.is_none_or(|d| at > d);
        for cells in self.grants.values_mut() {
            cells.retain(|_, c| counts(c.at));
        }
        self.grants.retain(|_, cells| !cells.is_empty());
    }

    /// The role in force, if it exists.
    pub fn role(&self) -> Option<Role> {
        let created = self.created.as_ref().filter(|_| self.exists())?;
        let grants: BTreeMap<String, BTreeSet<Perm>> = (self.grants.iter())
            .map(|(ks, cells)| {
                let held = (cells.iter())
                    .filter(|(_, c)| c.held && self.counts(c.at))
                    .map(|(p, _)| *p);
                (ks.clone(), held.collect::<BTreeSet<Perm>>())
            })
            .filter(|(_, held)| !held.is_empty())
            .collect();
        Some(Role {
            secret: created.secret.clone(),
            grants,
        })
    }

    /// A role created at `at` with `secret` and `grants` (replacing any
    /// earlier one of the name).
    pub fn create(&mut self, at: Stamp, secret: Option<String>, grants: &[(&str, Perm)]) {
        self.created = self.created.take().max(Some(Created { at, secret }));
        for (ks, perm) in grants {
            self.set(at, ks, *perm, true);
        }
        self.normalize();
    }

    /// The newest stamp in these cells.
    pub fn newest(&self) -> Stamp {
        let cells = self.grants.values().flat_map(|c| c.values().map(|c| c.at));
        (cells
            .chain(self.dropped)
            .chain(self.created.as_ref().map(|c| c.at)))
        .max()
        .unwrap_or_default()
    }

    /// The cells of this role stamped `at`: what the change stamped `at`
    /// wrote (each change has its own stamp).
    pub fn written_at(&self, at: Stamp) -> Vec<Slot> {
        let mut out = Vec::new();
        if self.created.as_ref().is_some_and(|c| c.at == at) {
            out.push(Slot::Created);
        }
        if self.dropped == Some(at) {
            out.push(Slot::Dropped);
        }
        for (ks, cells) in &self.grants {
            let ours = cells.iter().filter(|(_, c)| c.at == at);
            out.extend(ours.map(|(p, c)| Slot::Grant(ks.clone(), *p, c.held)));
        }
        out
    }

    /// What these cells hold of `slot` as a change stamped `at` wrote it:
    /// that write ([`Kept::Ours`], or a later one of the same outcome: a
    /// later drop, grant or revoke asking the same), a later change that
    /// undoes it (a later revoke of a grant, a drop or re-create of the
    /// role), or not yet (review-clock34b M2).
    pub fn kept(&self, slot: &Slot, at: Stamp) -> Kept {
        let created = self.created.as_ref().map(|c| c.at);
        let after = |s: Option<Stamp>| s.filter(|s| *s > at);
        match slot {
            Slot::Created => match (created, after(self.dropped)) {
                (_, Some(d)) => Kept::Later(d),
                (Some(c), None) if c == at => Kept::Ours,
                (Some(c), None) if c > at => Kept::Later(c),
                _ => Kept::NotYet,
            },
            Slot::Dropped => match (after(created), self.dropped) {
                (Some(c), _) => Kept::Later(c),
                (None, Some(d)) if d >= at => Kept::Ours,
                _ => Kept::NotYet,
            },
            Slot::Grant(ks, perm, held) => {
                if let Some(reset) = after(created).max(after(self.dropped)) {
                    return Kept::Later(reset);
                }
                match self.grants.get(ks).and_then(|c| c.get(perm)) {
                    Some(c) if c.at == at || (c.at > at && c.held == *held) => Kept::Ours,
                    Some(c) if c.at > at => Kept::Later(c.at),
                    _ => Kept::NotYet,
                }
            }
        }
    }

    /// Sets one grant cell.
    pub fn set(&mut self, at: Stamp, keyspace: &str, perm: Perm, held: bool) {
        let cells = self.grants.entry(keyspace.to_string()).or_default();
        let slot = cells.entry(perm).or_insert(Cell { at, held });
        *slot = (*slot).max(Cell { at, held });
    }
}
