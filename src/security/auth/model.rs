//! The replicated authorization state, pure: roles, their hashed secrets
//! and their permissions per keyspace ([`AuthState`]), the permission
//! decision ([`AuthState::decide`]), the changes an administrator makes
//! (each one version + 1) and the merge every node converges with
//! ([`AuthState::merge`]: the higher version wins; of two different states
//! of one version, the higher digest wins on every node).
//!
//! Must not: hash, verify secrets, persist, or talk to peers.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

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

/// Every role of the cluster, versioned.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthState {
    /// 0: nothing was ever created. Each change is + 1.
    pub version: u64,
    #[serde(default)]
    pub roles: BTreeMap<String, Role>,
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

fn name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

impl AuthState {
    /// The decision for `role` doing `perm` in `keyspace`.
    pub fn decide(&self, role: &str, keyspace: &str, perm: Perm) -> Decision {
        match self.roles.get(role) {
            None => Decision::UnknownRole,
            Some(r) if r.allows(keyspace, perm) => Decision::Allow,
            Some(_) => Decision::Deny,
        }
    }

    /// Content digest (xxh3-64 of the canonical JSON; maps are ordered).
    pub fn digest(&self) -> u64 {
        xxhash_rust::xxh3::xxh3_64(&serde_json::to_vec(self).expect("auth state serialises"))
    }

    /// The state every node keeps of `self` and `other`: the higher version,
    /// or of one version the higher digest (the same on every node).
    pub fn merge(self, other: AuthState) -> AuthState {
        use std::cmp::Ordering;
        match self.version.cmp(&other.version) {
            Ordering::Greater => self,
            Ordering::Less => other,
            Ordering::Equal if self.digest() >= other.digest() => self,
            Ordering::Equal => other,
        }
    }

    fn next(&self) -> AuthState {
        let mut n = self.clone();
        n.version += 1;
        n
    }

    /// Version + 1 with a new role `name` whose secret hashes to `phc`
    /// (`None`: certificate only), and `grants`.
    pub fn with_role(
        &self,
        name: &str,
        phc: Option<String>,
        grants: &[(&str, Perm)],
    ) -> Result<AuthState, ChangeError> {
        if !name_ok(name) {
            return Err(ChangeError::BadName(name.to_string()));
        }
        if self.roles.contains_key(name) {
            return Err(ChangeError::Exists(name.to_string()));
        }
        let mut n = self.next();
        let mut role = Role {
            secret: phc,
            grants: BTreeMap::new(),
        };
        for (ks, p) in grants {
            role.grants.entry(ks.to_string()).or_default().insert(*p);
        }
        n.roles.insert(name.to_string(), role);
        Ok(n)
    }

    /// Version + 1 without role `name`.
    pub fn without_role(&self, name: &str) -> Result<AuthState, ChangeError> {
        let mut n = self.next();
        n.roles
            .remove(name)
            .ok_or_else(|| ChangeError::NoRole(name.to_string()))?;
        Ok(n)
    }

    /// Version + 1 where `role` holds `perm` in `keyspace`.
    pub fn with_grant(
        &self,
        role: &str,
        keyspace: &str,
        perm: Perm,
    ) -> Result<AuthState, ChangeError> {
        self.change_grant(role, keyspace, |held| {
            held.insert(perm);
        })
    }

    /// Version + 1 where `role` no longer holds `perm` itself in `keyspace`
    /// (a permission implied by another one it still holds stays implied).
    pub fn with_revoke(
        &self,
        role: &str,
        keyspace: &str,
        perm: Perm,
    ) -> Result<AuthState, ChangeError> {
        self.change_grant(role, keyspace, |held| {
            held.remove(&perm);
        })
    }

    fn change_grant(
        &self,
        role: &str,
        keyspace: &str,
        f: impl FnOnce(&mut BTreeSet<Perm>),
    ) -> Result<AuthState, ChangeError> {
        if keyspace != ANY_KEYSPACE && !name_ok(keyspace) {
            return Err(ChangeError::BadKeyspace(keyspace.to_string()));
        }
        let mut n = self.next();
        let r = n
            .roles
            .get_mut(role)
            .ok_or_else(|| ChangeError::NoRole(role.to_string()))?;
        let held = r.grants.entry(keyspace.to_string()).or_default();
        f(held);
        if held.is_empty() {
            r.grants.remove(keyspace);
        }
        Ok(n)
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
        serde_json::json!({"version": self.version, "roles": roles})
    }
}
