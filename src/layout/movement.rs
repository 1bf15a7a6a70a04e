//! [`Movement`]: the range movement in progress in one datacenter, as the
//! layout records it (its serde form: fields older builds lack are absent
//! when empty, so what they wrote decodes and keeps its digest) and names
//! it (`Display`: the name on every node's movement board, per removal
//! attempt).
//!
//! Must not change a layout: the transitions (`transition.rs`,
//! `remove.rs`, `withdraw.rs`, `abort.rs`) do.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A range movement in progress in one datacenter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Movement {
    Join {
        node: String,
    },
    Leave {
        node: String,
    },
    /// A dead node's ranges re-replicated from the survivors; `force`d,
    /// from the survivors that are up even when too few are to meet every
    /// quorum (`geokv removenode --force`). `also`: the other dead nodes
    /// removed with it (a gainer of the removal that died, `remove.rs`),
    /// absent when none, so what older builds wrote decodes as is.
    /// `began`: the layout version that began this attempt (its identity,
    /// in its name and pull cursors, so an attempt after a withdraw,
    /// `withdraw.rs`, never takes the old one's reports or cursors); 0 and
    /// absent when written by an older build.
    Remove {
        node: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        also: Vec<String>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        force: bool,
        #[serde(default, skip_serializing_if = "is_zero")]
        began: u64,
    },
    /// `new` takes over the tokens of the dead node `dead`; `force`d, it
    /// copies from the survivors that are up even when too few are
    /// (`removenode DEAD --force`, `withdraw.rs`), absent when not.
    Replace {
        dead: String,
        new: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        force: bool,
    },
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl fmt::Display for Movement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Movement::Join { node } => write!(f, "join of {node}"),
            Movement::Leave { node } => write!(f, "decommission of {node}"),
            Movement::Remove {
                node, also, began, ..
            } => {
                write!(f, "removal of {node}")?;
                also.iter().try_for_each(|n| write!(f, ", {n}"))?;
                match began {
                    0 => Ok(()),
                    v => write!(f, " (attempt v{v})"),
                }
            }
            Movement::Replace { dead, new, .. } => write!(f, "replacement of {dead} by {new}"),
        }
    }
}
