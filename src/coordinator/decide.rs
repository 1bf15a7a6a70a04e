//! The coordinator's pure decisions before anything is sent: whether the
//! live replicas can meet a level at all ([`check_alive`]), and which
//! remote datacenters a write waits on through their streams
//! ([`awaited_dcs`]). Pure: counts in, a verdict out.
//!
//! Must not: look at liveness, the ring or the clock itself (the plan
//! hands the counts in), or send anything.

use super::consistency::{ConsistencyLevel, Requirement};
use crate::error::GeokvError;
use crate::mutation::Awaited;
use std::collections::BTreeMap;

/// `UNAVAILABLE` up front when the live replicas (`alive`, per
/// datacenter) cannot meet `req`: nothing is sent then, so nothing is
/// applied.
pub(super) fn check_alive(
    level: ConsistencyLevel,
    req: &Requirement,
    alive: &BTreeMap<String, u32>,
) -> Result<(), GeokvError> {
    let unavailable = |required: u32, alive: u32, scope: String| GeokvError::Unavailable {
        level: level.name().to_string(),
        required,
        alive,
        scope,
    };
    let in_dc = |dc: &str| alive.get(dc).copied().unwrap_or(0);
    let total: u32 = alive.values().sum();
    match req {
        // A write is minted by a replica, so ANY too needs one alive (a
        // hint alone cannot carry a new write).
        Requirement::AnyOrHint if total < 1 => Err(unavailable(1, total, String::new())),
        Requirement::Total { count } if total < *count => {
            Err(unavailable(*count, total, String::new()))
        }
        Requirement::Local { dc, count } if in_dc(dc) < *count => {
            Err(unavailable(*count, in_dc(dc), format!(" in {dc}")))
        }
        Requirement::EachDc { per_dc } => match per_dc.iter().find(|(dc, n)| in_dc(dc) < *n) {
            Some((dc, n)) => Err(unavailable(*n, in_dc(dc), format!(" in {dc}"))),
            None => Ok(()),
        },
        _ => Ok(()),
    }
}

/// The remote datacenters whose acknowledgements the level needs (and so
/// waits for through their streams): every other datacenter with a quorum
/// of its own for EACH_QUORUM, every remote one (`remote_dcs`) when a
/// total count exceeds what the live replicas of this node's datacenter
/// (`my_dc`) can give.
///
/// Each with the count its receiver must reach before acknowledging: the
/// datacenter's own quorum for EACH_QUORUM; for a total count, what the
/// live local replicas cannot give (so should one of them fail after all,
/// the level can fail although more remote replicas applied it).
pub(super) fn awaited_dcs(
    my_dc: &str,
    req: &Requirement,
    alive: &BTreeMap<String, u32>,
    remote_dcs: &[String],
) -> Vec<Awaited> {
    let local = alive.get(my_dc).copied().unwrap_or(0);
    let awaited = |dc: &String, need: u32| Awaited {
        dc: dc.clone(),
        need,
        pending: None,
    };
    match req {
        Requirement::AnyOrHint | Requirement::Local { .. } => Vec::new(),
        Requirement::Total { count } if *count > local => (remote_dcs.iter())
            .map(|dc| awaited(dc, count - local))
            .collect(),
        Requirement::Total { .. } => Vec::new(),
        Requirement::EachDc { per_dc } => (per_dc.iter())
            .filter(|(dc, n)| dc != my_dc && *n > 0)
            .map(|(dc, n)| awaited(dc, *n))
            .collect(),
    }
}

#[cfg(test)]
mod tests;
