//! Which surviving replicas a range of a dead node is copied from, when a
//! node re-replicates it (replace: the new node takes the dead one's
//! tokens; removenode: the new owners of its ranges).
//!
//! The dead node cannot be a source, and a single survivor is not enough:
//! with rf 3, a LOCAL_QUORUM write acknowledged by the dead node and one
//! other replica is missing on the third. Cassandra's `replace_address`
//! streams each range from one replica and leaves the rest to a repair
//! afterwards. Here each range is copied from enough live survivors of the
//! gainer's datacenter that every set of a LOCAL_QUORUM of replicas meets
//! them: a quorum write has at least `q - 1` copies among the `rf - 1`
//! survivors, so `rf - q + 1` of them hold every one ([`needed`]; 2 of 2
//! survivors for rf 3, 3 of 4 for rf 5, 1 for rf 1 and 2). Pages are merged
//! (never overwritten), so copying a range from several sources gives the
//! union. Survivors are taken nearest first (same rack, then by id); if too
//! few are up the range waits ([`Shortfall`]) rather than being copied
//! from fewer. A range with no survivor in the datacenter (rf 1 there) is
//! copied from one live owner elsewhere, nearest first.
//!
//! Owns [`choose`] and [`by_source`]. Pure: liveness is an input; must not
//! do I/O or change the layout.

use std::collections::BTreeMap;

use super::plan::Gain;
use crate::layout::Layout;
use crate::ring::TokenRange;

/// How many of the `rf - 1` survivors of a replica set of `rf` hold every
/// write a quorum of it acknowledged: `rf - q + 1` (at least 1).
pub fn needed(rf: u32) -> usize {
    let q = rf / 2 + 1;
    (rf + 1).saturating_sub(q).max(1) as usize
}

/// Too few survivors of a range are up to copy it consistently.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{keyspace} {range:?} needs {need} live survivor(s) of its replicas to copy from, up: [{}], down: [{}]", .up.join(", "), .down.join(", "))]
pub struct Shortfall {
    pub keyspace: String,
    pub range: TokenRange,
    pub need: usize,
    pub up: Vec<String>,
    pub down: Vec<String>,
}

/// The sources `gainer` copies `gain` from when `dead` is gone: its live
/// survivors in `gainer`'s datacenter, [`needed`] of them, nearest first.
pub fn choose(
    layout: &Layout,
    gain: &Gain,
    gainer: &str,
    dead: &str,
    is_up: &dyn Fn(&str) -> bool,
) -> Result<Vec<String>, Shortfall> {
    let place = |id: &str| {
        layout
            .node(id)
            .map(|(dc, rack, _)| (dc.to_string(), rack.to_string()))
    };
    let (dc, rack) = place(gainer).unwrap_or_default();
    let rf = layout
        .keyspaces
        .get(&gain.keyspace)
        .and_then(|k| k.replication.get(&dc))
        .copied()
        .unwrap_or(1);
    let survivors: Vec<&String> = gain
        .sources
        .iter()
        .filter(|s| *s != dead && *s != gainer)
        .collect();
    let (mut local, remote): (Vec<&String>, Vec<&String>) = survivors
        .into_iter()
        .partition(|s| place(s).is_some_and(|(d, _)| d == dc));
    local.sort_by_key(|s| (place(s).is_some_and(|(_, r)| r != rack), s.to_string()));
    let (pool, need) = if local.is_empty() {
        (remote, 1)
    } else {
        let need = needed(rf).min(local.len());
        (local, need)
    };
    let (up, down): (Vec<&String>, Vec<&String>) = pool.into_iter().partition(|s| is_up(s));
    if up.len() < need {
        return Err(Shortfall {
            keyspace: gain.keyspace.clone(),
            range: gain.range,
            need,
            up: up.into_iter().cloned().collect(),
            down: down.into_iter().cloned().collect(),
        });
    }
    Ok(up.into_iter().take(need).cloned().collect())
}

/// `gains` regrouped by source: for each source, the gains it serves, each
/// with that source alone (`sources` and `losing`, so the streamer copies
/// it from there only). `choices[i]` are the sources of `gains[i]`.
pub fn by_source(gains: &[Gain], choices: &[Vec<String>]) -> BTreeMap<String, Vec<Gain>> {
    let mut out: BTreeMap<String, Vec<Gain>> = BTreeMap::new();
    for (gain, sources) in gains.iter().zip(choices) {
        for s in sources {
            out.entry(s.clone()).or_default().push(Gain {
                sources: vec![s.clone()],
                losing: vec![s.clone()],
                ..gain.clone()
            });
        }
    }
    out
}
