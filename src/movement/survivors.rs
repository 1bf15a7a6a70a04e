//! Which surviving replicas a range of a dead node is copied from, when a
//! node re-replicates it (replace: the new node takes the dead one's
//! tokens; removenode: the new owners of its ranges).
//!
//! The dead node cannot be a source, and a single survivor is not enough:
//! with rf 3, a LOCAL_QUORUM write acknowledged by the dead node and one
//! other replica is missing on the third. Cassandra's `replace_address`
//! streams each range from one replica and leaves the rest to a repair
//! afterwards. Here each range is copied from enough live survivors, in
//! every datacenter, that the sources meet every write set a quorum level
//! could have acknowledged without the new node ([`need`]):
//!
//! - LOCAL_QUORUM and EACH_QUORUM of the dead node's datacenter: a quorum
//!   `q` of its `rf` replicas has at least `q - 1` copies among the `rf - 1`
//!   survivors there, so `rf - q + 1` of those survivors hold every one (2
//!   of 2 for rf 3, 3 of 4 for rf 5, 1 for rf 2);
//! - global QUORUM: a quorum `Q` of all `N` replicas (`N` the sum of rf over
//!   the datacenters, `Q = N / 2 + 1`) may have a single copy in the dead
//!   node's datacenter, on the dead node (dc1:3 + dc2:2: 3 of 5 can be the
//!   dead node and both of dc2), so `N - Q + 1` survivors of any
//!   datacenter are taken, local ones first. Remote sources are read over
//!   the same `RangeScan` as local ones.
//!
//! A down remote datacenter does not hold a copy up: when the only sources
//! missing are survivors in other datacenters that are down, the copy is
//! made from every survivor that is up (the local need still holds, so
//! every LOCAL_QUORUM of the dead node's datacenter is met). What it can
//! miss then is a global QUORUM write held only by the dead node and down
//! remote replicas; those replicas still hold it, and it reaches the new
//! node by read repair or anti-entropy once they are back. Waiting for an
//! outage of another datacenter instead would leave the dead node's ranges
//! short of a replica for as long as it lasts.
//!
//! Not covered, by any choice of sources: a write acknowledged by the dead
//! node alone — ONE, TWO, THREE or an explicit count below a quorum, or
//! LOCAL_QUORUM in a datacenter where the dead node was the only replica
//! (rf 1) — reaches the new owner only through hints its coordinator
//! stored for the other replicas, or a repair.
//!
//! Pages are merged (never overwritten), so copying a range from several
//! sources gives the union. Survivors are taken nearest first (the dead
//! node's datacenter, same rack as the gainer first, then by id; then other
//! datacenters by name and id). If too few are up the choice fails with a
//! [`Shortfall`]; the caller waits (bounded) or, forced, copies from the
//! survivors that are up and reports the range as possibly incomplete.
//!
//! A removal of several dead nodes copies each range as from its one dead
//! owner; a range two of them owned keeps the second as a survivor that
//! is down (a shortfall until forced).
//!
//! Owns [`need`], [`choose`] and [`by_source`]. Pure: liveness is an input;
//! must not do I/O or change the layout.

use std::collections::BTreeMap;

use super::plan::Gain;
use crate::consistency::quorum;
use crate::layout::Layout;
use crate::ring::TokenRange;

/// How many sources a range needs: `local` among the survivors in the
/// dead node's datacenter, `total` among the survivors everywhere (local
/// ones count towards both).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Need {
    pub local: usize,
    pub total: usize,
}

/// The sources a range needs when the dead node's datacenter replicates it
/// `rf_dc` times and all datacenters `rf_total` times, with
/// `local_survivors` and `survivors` (all datacenters, local included) of
/// its owners left besides the dead node. A requirement no set of
/// survivors can meet (rf 1 in the datacenter) is capped at what exists;
/// `total` is at least 1, so a range with no survivor at all is a
/// [`Shortfall`].
pub fn need(rf_dc: u32, rf_total: u32, local_survivors: usize, survivors: usize) -> Need {
    // Owners are the survivors plus the dead node: `owners - q + 1`.
    let beyond = |n: usize, rf: u32| (n + 2).saturating_sub(quorum(rf) as usize).min(n);
    let local = beyond(local_survivors, rf_dc);
    let total = beyond(survivors, rf_total).max(local).max(1);
    Need { local, total }
}

/// Too few survivors of a range are up to copy it consistently.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{keyspace} {range:?} needs {need} live survivor(s) of its replicas to copy from ({need_local} in the dead node's datacenter), up: [{}], down: [{}]", .up.join(", "), .down.join(", "))]
pub struct Shortfall {
    pub keyspace: String,
    pub range: TokenRange,
    pub need: usize,
    pub need_local: usize,
    /// The survivors that are up (a forced copy takes these).
    pub up: Vec<String>,
    pub down: Vec<String>,
}

/// The sources `gainer` copies `gain` from when `dead` is gone: live
/// survivors meeting [`need`], nearest first; every live survivor when
/// only down survivors of other datacenters are missing (module docs).
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
    // In a removal of several dead nodes (audit11 D1) a range is copied
    // as from its one dead owner; a second dead owner stays a survivor
    // that is down, so that range needs `--force` (a write those two alone
    // held is lost).
    let removed = removed_with(layout, dead);
    let dead = match gain.sources.iter().any(|s| s == dead) {
        true => dead,
        false => (gain.sources.iter())
            .find(|s| removed.contains(&s.as_str()))
            .map_or(dead, String::as_str),
    };
    let rack = place(gainer).unwrap_or_default().1;
    let dc = place(dead).or_else(|| place(gainer)).unwrap_or_default().0;
    let replication = layout.keyspaces.get(&gain.keyspace).map(|k| &k.replication);
    let rf_dc = replication.and_then(|r| r.get(&dc)).copied().unwrap_or(1);
    let rf_total = replication.map_or(1, |r| r.values().sum());
    let mut survivors: Vec<(String, String, String)> = gain
        .sources
        .iter()
        .filter(|s| *s != dead && *s != gainer)
        .map(|s| {
            let (d, r) = place(s).unwrap_or_default();
            (s.clone(), d, r)
        })
        .collect();
    survivors.sort_by_key(|(s, d, r)| (*d != dc, d.clone(), *r != rack, s.clone()));
    survivors.dedup_by(|a, b| a.0 == b.0);
    let local_count = survivors.iter().filter(|(_, d, _)| *d == dc).count();
    let n = need(rf_dc, rf_total, local_count, survivors.len());
    let (up, down): (Vec<_>, Vec<_>) = survivors.into_iter().partition(|(s, _, _)| is_up(s));
    let up_local = up.iter().filter(|(_, d, _)| *d == dc).count();
    // Short of the global-QUORUM extra only because survivors in another
    // datacenter are down: every up survivor is taken, and the copy goes on.
    let remote_down = down.iter().any(|(_, d, _)| *d != dc);
    let relaxed = up.len() < n.total && remote_down && !up.is_empty();
    if up_local < n.local || (up.len() < n.total && !relaxed) {
        let ids = |v: Vec<(String, String, String)>| v.into_iter().map(|(s, _, _)| s).collect();
        return Err(Shortfall {
            keyspace: gain.keyspace.clone(),
            range: gain.range,
            need: n.total,
            need_local: n.local,
            up: ids(up),
            down: ids(down),
        });
    }
    // Local survivors sort first, so the first `total` meet both needs
    // (relaxed: every up survivor, fewer than `total`).
    Ok(up.into_iter().take(n.total).map(|(s, _, _)| s).collect())
}

/// Every node the removal of `dead` in `layout` removes (`dead` alone
/// when none, or in a replacement).
fn removed_with<'a>(layout: &'a Layout, dead: &'a str) -> Vec<&'a str> {
    (layout.movements.values())
        .filter(|m| matches!(m, crate::layout::Movement::Remove { .. }))
        .map(|m| m.declared_dead())
        .find(|d| d.contains(&dead))
        .unwrap_or_else(|| vec![dead])
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
