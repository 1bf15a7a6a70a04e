//! The replicated authorization state, pure: roles, their hashed secrets
//! and their permissions per keyspace ([`AuthState`]), the permission
//! decision ([`AuthState::decide`]), the changes an administrator makes
//! (each stamped later than everything its node has seen, [`Draft`]) and
//! the merge every node converges with ([`AuthState::merge`]: per cell, the
//! higher stamp; `cells.rs`).
//!
//! Must not: hash, verify secrets, persist, or talk to peers.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::cells::{RoleCells, Stamp};
use super::legacy::Legacy;

/// The keyspace wildcard of a grant: every keyspace, present and future.
pub const ANY_KEYSPACE: &str = "*";

/// What a role may do in a keyspace. `Admin` implies `Read` and `Write`;
/// `Admin` on [`ANY_KEYSPACE`] is the admin credential of the admin port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Perm {
    Read,
    Write,
    Admin,
}

impl Perm {
    /// Whether holding `self` grants `wanted`.
    pub fn implies(self, wanted: Perm) -> bool {
        self == wanted || self == Perm::Admin
    }

    pub fn name(self) -> &'static str {
        match self {
            Perm::Read => "read",
            Perm::Write => "write",
            Perm::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Perm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Perm {
    type Err = ChangeError;
    fn from_str(s: &str) -> Result<Perm, ChangeError> {
        match s.to_ascii_lowercase().as_str() {
            "read" => Ok(Perm::Read),
            "write" => Ok(Perm::Write),
            "admin" => Ok(Perm::Admin),
            _ => Err(ChangeError::BadPerm(s.to_string())),
        }
    }
}

/// One role.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    /// The secret's argon2 PHC string (never the secret itself). `None`: the
    /// role authenticates only with a client certificate naming it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Permissions per keyspace name or [`ANY_KEYSPACE`].
    #[serde(default)]
    pub grants: BTreeMap<String, BTreeSet<Perm>>,
}

impl Role {
    /// Whether this role may do `perm` in `keyspace`.
    pub fn allows(&self, keyspace: &str, perm: Perm) -> bool {
        [keyspace, ANY_KEYSPACE].iter().any(|k| {
            self.grants
                .get(*k)
                .is_some_and(|held| held.iter().any(|p| p.implies(perm)))
        })
    }
}

/// Every role of the cluster: the replicated cells ([`RoleCells`], merged
/// per cell by stamp) and, derived from them, the roles in force.
/// Serialised as `format.rs` says (the old versioned form still loads).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthState {
    /// The newest stamp this state has seen (its hybrid logical clock).
    pub(super) clock: Stamp,
    pub(super) cells: BTreeMap<String, RoleCells>,
    /// The state upgraded from the old versioned format, if any: its roles
    /// count under `cells` ([`Legacy`]).
    pub(super) legacy: Option<Legacy>,
    /// Derived from `cells` and `legacy` ([`AuthState::derive`]).
    roles: BTreeMap<String, Role>,
}

/// The outcome of a permission check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// The role no longer exists (dropped after it authenticated).
    UnknownRole,
    /// The role lacks the permission in the keyspace.
    Deny,
}

/// A change an administrator asked for could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    #[error("bad role name '{0}' (use [A-Za-z0-9._-], at most 64 characters)")]
    BadName(String),
    #[error("bad keyspace '{0}' (a keyspace name or *)")]
    BadKeyspace(String),
    #[error("bad permission '{0}' (read, write or admin)")]
    BadPerm(String),
    #[error("role '{0}' already exists")]
    Exists(String),
    #[error("no role '{0}'")]
    NoRole(String),
}

fn keyspace_ok(keyspace: &str) -> bool {
    keyspace == ANY_KEYSPACE || name_ok(keyspace)
}

fn name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

impl AuthState {
    /// The state of `cells` that has seen stamps up to `clock` (at least
    /// the newest in `cells`, so no change here is stamped below a cell).
    pub(super) fn from_cells(
        clock: Stamp,
        cells: BTreeMap<String, RoleCells>,
        legacy: Option<Legacy>,
    ) -> AuthState {
        let newest = (cells.values().map(RoleCells::newest))
            .chain(legacy.as_ref().map(Legacy::stamp))
            .max();
        let mut s = AuthState {
            clock: clock.max(newest.unwrap_or_default()),
            cells,
            legacy,
            roles: BTreeMap::new(),
        };
        s.derive();
        s
    }

    /// The roles in force: each role's cells merged with the legacy
    /// snapshot's (which every change made since is stamped above).
    fn derive(&mut self) {
        let legacy = self.legacy.as_ref();
        let names: BTreeSet<&String> = (self.cells.keys())
            .chain(legacy.into_iter().flat_map(|l| l.roles.keys()))
            .collect();
        self.roles = (names.into_iter())
            .filter_map(|name| {
                let mine = self.cells.get(name).cloned().unwrap_or_default();
                let c = match legacy.and_then(|l| l.cells(name)) {
                    Some(old) => mine.merge(old),
                    None => mine,
                };
                Some((name.clone(), c.role()?))
            })
            .collect();
    }

    /// The roles in force (existing, with their secret and grants).
    pub fn roles(&self) -> &BTreeMap<String, Role> {
        &self.roles
    }

    /// The decision for `role` doing `perm` in `keyspace`.
    pub fn decide(&self, role: &str, keyspace: &str, perm: Perm) -> Decision {
        match self.roles.get(role) {
            None => Decision::UnknownRole,
            Some(r) if r.allows(keyspace, perm) => Decision::Allow,
            Some(_) => Decision::Deny,
        }
    }

    /// Content digest (xxh3-64 of the canonical JSON; maps are ordered):
    /// equal on two nodes exactly when their states are (anti-entropy's
    /// "do we differ?").
    pub fn digest(&self) -> u64 {
        xxhash_rust::xxh3::xxh3_64(&serde_json::to_vec(self).expect("auth state serialises"))
    }

    /// The newest stamp seen.
    pub fn clock(&self) -> Stamp {
        self.clock
    }

    /// The wall time (ms) of the newest change seen, `geokv_auth_version`:
    /// equal on nodes that converged; 0 before any change (or when the only
    /// changes were upgraded from the old versioned format).
    pub fn version(&self) -> u64 {
        self.clock.ms
    }

    /// Whether no change was ever made (nor learned).
    pub fn is_empty(&self) -> bool {
        self.clock == Stamp::default() && self.cells.is_empty() && self.legacy.is_none()
    }

    /// The state every node converges on from `self` and `other`: per role
    /// and per cell, the higher stamp (`cells.rs`). Commutative, associative
    /// and idempotent.
    pub fn merge(mut self, other: AuthState) -> AuthState {
        for (name, theirs) in other.cells {
            let mine = self.cells.remove(&name).unwrap_or_default();
            self.cells.insert(name, mine.merge(theirs));
        }
        let legacy = Legacy::pick(self.legacy, other.legacy);
        AuthState::from_cells(self.clock.max(other.clock), self.cells, legacy)
    }

    /// The stamp of a change made now by `node` (wall time `now_ms`): later
    /// than every stamp this state has seen (`None`: there is none).
    pub fn stamp(&self, now_ms: u64, node: u64) -> Option<Stamp> {
        Stamp::next(self.clock, now_ms, node)
    }

    /// `self` with the cells of `name` changed by `f`, at `at`.
    fn changed(&self, at: Stamp, name: &str, f: impl FnOnce(&mut RoleCells)) -> AuthState {
        let mut cells = self.cells.clone();
        f(cells.entry(name.to_string()).or_default());
        AuthState::from_cells(self.clock.max(at), cells, self.legacy.clone())
    }

    /// A new role `name` created at `at`, whose secret hashes to `phc`
    /// (`None`: certificate only), with `grants`.
    pub fn create_role(
        &self,
        at: Stamp,
        name: &str,
        phc: Option<String>,
        grants: &[(&str, Perm)],
    ) -> Result<AuthState, ChangeError> {
        if !name_ok(name) {
            return Err(ChangeError::BadName(name.to_string()));
        }
        if let Some((ks, _)) = grants.iter().find(|(ks, _)| !keyspace_ok(ks)) {
            return Err(ChangeError::BadKeyspace(ks.to_string()));
        }
        if self.roles.contains_key(name) {
            return Err(ChangeError::Exists(name.to_string()));
        }
        Ok(self.changed(at, name, |c| c.create(at, phc, grants)))
    }

    /// Role `name` dropped at `at` (a tombstone: nothing of it stamped
    /// before counts, on any node).
    pub fn drop_role(&self, at: Stamp, name: &str) -> Result<AuthState, ChangeError> {
        if !self.roles.contains_key(name) {
            return Err(ChangeError::NoRole(name.to_string()));
        }
        Ok(self.changed(at, name, |c| {
            c.dropped = c.dropped.max(Some(at));
            c.normalize();
        }))
    }

    /// `role` holds `perm` in `keyspace` (or, `held` false, no longer holds
    /// it itself: a permission implied by another it still holds stays
    /// implied), as of `at`.
    pub fn set_grant(
        &self,
        at: Stamp,
        role: &str,
        keyspace: &str,
        perm: Perm,
        held: bool,
    ) -> Result<AuthState, ChangeError> {
        if !keyspace_ok(keyspace) {
            return Err(ChangeError::BadKeyspace(keyspace.to_string()));
        }
        if !self.roles.contains_key(role) {
            return Err(ChangeError::NoRole(role.to_string()));
        }
        Ok(self.changed(at, role, |c| c.set(at, keyspace, perm, held)))
    }

    /// The roles and their grants, without secrets (for `GET /auth/roles`).
    pub fn public(&self) -> serde_json::Value {
        let roles: BTreeMap<&String, serde_json::Value> = (self.roles.iter())
            .map(|(name, r)| {
                let grants: BTreeMap<&String, Vec<&str>> = (r.grants.iter())
                    .map(|(ks, ps)| (ks, ps.iter().map(|p| p.name()).collect()))
                    .collect();
                let v = serde_json::json!({"grants": grants, "token": r.secret.is_some()});
                (name, v)
            })
            .collect();
        serde_json::json!({"version": self.version(), "roles": roles})
    }
}

/// A change being made on one node: the state in force and the stamp the
/// change gets ([`super::Auth::change`]). Reads through to the state.
pub struct Draft<'a> {
    pub state: &'a AuthState,
    pub at: Stamp,
}

impl std::ops::Deref for Draft<'_> {
    type Target = AuthState;
    fn deref(&self) -> &AuthState {
        self.state
    }
}

impl Draft<'_> {
    /// [`AuthState::create_role`] now.
    pub fn with_role(
        &self,
        name: &str,
        phc: Option<String>,
        grants: &[(&str, Perm)],
    ) -> Result<AuthState, ChangeError> {
        self.state.create_role(self.at, name, phc, grants)
    }

    /// [`AuthState::drop_role`] now.
    pub fn without_role(&self, name: &str) -> Result<AuthState, ChangeError> {
        self.state.drop_role(self.at, name)
    }

    /// `role` holds `perm` in `keyspace` from now on.
    pub fn with_grant(&self, role: &str, ks: &str, perm: Perm) -> Result<AuthState, ChangeError> {
        self.state.set_grant(self.at, role, ks, perm, true)
    }

    /// `role` no longer holds `perm` itself in `keyspace` from now on.
    pub fn with_revoke(&self, role: &str, ks: &str, perm: Perm) -> Result<AuthState, ChangeError> {
        self.state.set_grant(self.at, role, ks, perm, false)
    }
}
