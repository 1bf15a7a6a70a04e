//! The auth state as JSON, in `meta` and on the wire (`SyncAuth`):
//! `{"format": 2, "clock": STAMP, "roles": {NAME: cells}, "legacy":
//! {"version": N, "roles": ...}}`. The old versioned form (`{"version": N,
//! "roles": {NAME: {"secret", "grants"}}}`, no `format`) still loads, as the
//! `legacy` snapshot (`legacy.rs`): of two upgraded states the higher
//! version wins whole, as before, and any change made since wins over it.
//! A node of the old form refuses the new one (it has no `version`): it
//! keeps its state until it is upgraded too.
//!
//! Must not: merge states, or read or write the engine.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::cells::{RoleCells, Stamp};
use super::legacy::Legacy;
use super::model::{AuthState, Role};

/// The format this build writes.
pub const FORMAT: u32 = 2;

#[derive(Serialize)]
struct Out<'a> {
    format: u32,
    clock: Stamp,
    roles: &'a BTreeMap<String, RoleCells>,
    #[serde(skip_serializing_if = "Option::is_none")]
    legacy: &'a Option<Legacy>,
}

impl Serialize for AuthState {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Out {
            format: FORMAT,
            clock: self.clock,
            roles: &self.cells,
            legacy: &self.legacy,
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
    #[serde(default)]
    legacy: Option<Legacy>,
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
                Ok(AuthState::from_cells(i.clock, cells, i.legacy))
            }
            (0, Some(version)) => {
                let old: BTreeMap<String, Role> =
                    serde_json::from_value(roles).map_err(D::Error::custom)?;
                Ok(AuthState::from_cells(Stamp::default(), BTreeMap::new(), upgrade(version, old)))
            }
            (0, None) => Err(D::Error::missing_field("format")),
            (f, _) if f > FORMAT => Err(D::Error::custom(format!(
                "auth state format {f} is newer than this build's ({FORMAT})"
            ))),
            (f, _) => Err(D::Error::custom(format!(
                "unknown auth state format {f} (this build reads {FORMAT} and the old versioned form)"
            ))),
        }
    }
}

/// The old versioned state `version` with `roles`, as the legacy snapshot
/// (none for the old empty state, version 0: a bootstrap still runs).
fn upgrade(version: u64, roles: BTreeMap<String, Role>) -> Option<Legacy> {
    (version > 0 || !roles.is_empty()).then_some(Legacy { version, roles })
}
