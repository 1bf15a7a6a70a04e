//! The auth state as JSON, in `meta` and on the wire (`SyncAuth`):
//! `{"format": 2, "clock": STAMP, "roles": {NAME: cells}}`. The old
//! versioned form (`{"version": N, "roles": {NAME: {"secret", "grants"}}}`,
//! no `format`) still loads: its cells are stamped `(0 ms, N, node 0)`, so a
//! state upgraded from a higher version wins over one from a lower version
//! role by role, and any change made since wins over both. A node of the
//! old form refuses the new one (it has no `version`): it keeps its state
//! until it is upgraded too.
//!
//! Must not: merge states, or read or write the engine.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::cells::{RoleCells, Stamp};
use super::model::{AuthState, Role};

/// The format this build writes.
pub const FORMAT: u32 = 2;

#[derive(Serialize)]
struct Out<'a> {
    format: u32,
    clock: Stamp,
    roles: &'a BTreeMap<String, RoleCells>,
}

impl Serialize for AuthState {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Out {
            format: FORMAT,
            clock: self.clock,
            roles: &self.cells,
        }
        .serialize(s)
    }
}

/// Either form: `format` tells which `roles` holds.
#[derive(Deserialize)]
struct In {
    #[serde(default)]
    format: u32,
    /// The old form's version (format 0).
    #[serde(default)]
    version: Option<u64>,
    #[serde(default)]
    clock: Stamp,
    #[serde(default)]
    roles: serde_json::Value,
}

impl<'de> Deserialize<'de> for AuthState {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<AuthState, D::Error> {
        use serde::de::Error;
        let i = In::deserialize(d)?;
        let roles = match i.roles {
            serde_json::Value::Null => serde_json::Value::Object(Default::default()),
            v => v,
        };
        match (i.format, i.version) {
            (FORMAT, _) => {
                let mut cells: BTreeMap<String, RoleCells> =
                    serde_json::from_value(roles).map_err(D::Error::custom)?;
                cells.values_mut().for_each(RoleCells::normalize);
                Ok(AuthState::from_cells(i.clock, cells))
            }
            (0, Some(version)) => {
                let old: BTreeMap<String, Role> =
                    serde_json::from_value(roles).map_err(D::Error::custom)?;
                Ok(upgrade(version, old))
            }
            (0, None) => Err(D::Error::missing_field("format")),
            (f, _) => Err(D::Error::custom(format!(
                "auth state format {f} is newer than this build's ({FORMAT})"
            ))),
        }
    }
}

/// The old versioned state `version` with `roles`, as cells stamped
/// `(0, version, 0)`.
fn upgrade(version: u64, roles: BTreeMap<String, Role>) -> AuthState {
    let at = Stamp {
        ms: 0,
        n: version,
        node: 0,
    };
    let cells = (roles.into_iter())
        .map(|(name, role)| {
            let grants: Vec<(&str, _)> = (role.grants.iter())
                .flat_map(|(ks, perms)| perms.iter().map(move |p| (ks.as_str(), *p)))
                .collect();
            let mut c = RoleCells::default();
            c.create(at, role.secret.clone(), &grants);
            (name, c)
        })
        .collect();
    AuthState::from_cells(at, cells)
}
