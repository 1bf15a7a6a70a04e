//! The state upgraded from the old versioned format (`{"version": N,
//! "roles": ...}`, before per-cell stamps) as one snapshot, merged by the
//! old rule: the higher version wins whole, then the higher digest. Only
//! the winning snapshot's roles count, as cells stamped `(0 ms, N, node
//! 0)` under every change made since (review-auth29 H2: upgrading each old
//! state into cells of its own would bring back a role dropped in a newer
//! old state, and union two old states of the same version).
//!
//! Must not: hold a change made by this build (those are cells), or parse
//! the wire form (that is `format`).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::cells::{RoleCells, Stamp};
use super::model::Role;

/// One old versioned state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Legacy {
    pub version: u64,
    #[serde(default)]
    pub roles: BTreeMap<String, Role>,
}

impl Legacy {
    /// What the old rule compares: version, then digest (then the bytes,
    /// so that even a digest collision resolves the same on every node).
    /// The digest is the old build's (`AuthState::digest` before
    /// `2b4f5c2`): of the whole state's JSON, `{"version": N, "roles":
    /// ...}`, which is this struct's; so of two old states of one version,
    /// upgraded nodes keep the one the old nodes keep (`mixed_tests.rs`).
    fn key(&self) -> (u64, u64, Vec<u8>) {
        let json = serde_json::to_vec(self).expect("a legacy state serialises");
        (self.version, xxhash_rust::xxh3::xxh3_64(&json), json)
    }

    /// The snapshot both of `a` and `b` converge on: the old rule's winner.
    pub fn pick(a: Option<Legacy>, b: Option<Legacy>) -> Option<Legacy> {
        match (a, b) {
            (Some(a), Some(b)) => match a.key().cmp(&b.key()) {
                Ordering::Less => Some(b),
                _ => Some(a),
            },
            (a, b) => a.or(b),
        }
    }

    /// Its stamp: below every change made by this build, above the
    /// bootstrap floor for any version ≥ 1.
    pub fn stamp(&self) -> Stamp {
        Stamp {
            ms: 0,
            n: self.version,
            node: 0,
        }
    }

    /// Role `name` of the snapshot, as cells created at [`Legacy::stamp`].
    pub fn cells(&self, name: &str) -> Option<RoleCells> {
        let role = self.roles.get(name)?;
        let grants: Vec<(&str, _)> = (role.grants.iter())
            .flat_map(|(ks, perms)| perms.iter().map(move |p| (ks.as_str(), *p)))
            .collect();
        let mut c = RoleCells::default();
        c.create(self.stamp(), role.secret.clone(), &grants);
        Some(c)
    }
}
