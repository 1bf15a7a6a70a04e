//! Whether a join can leave its datacenter balanced at all: the warning a
//! join gives (in the joiner's log and on its `GET /movement` board, which
//! `geokv ring` shows) when the datacenter's racks make keys-per-node
//! balance unreachable whatever tokens [`super::allocate_tokens`] picks.
//!
//! Rack-aware placement puts at most one replica of a range in a rack while
//! racks remain (rf ≤ racks), so a rack holds at most one copy of the data:
//! balance (each of N nodes holding rf/N) needs every rack to have at most
//! N/rf nodes. With more replicas than racks every rack holds at least one
//! and at most rf - racks + 1 copies, so every rack needs between N/rf and
//! N(rf - racks + 1)/rf nodes (rf 3 over racks of 3 and 2 balances). Counts
//! nodes, not weights. Owns [`balance_warning`]. Pure; must not allocate
//! tokens, refuse a join or consult liveness.

use std::collections::BTreeMap;

use crate::layout::Layout;

/// Why `joiner` joining `rack` of `dc` cannot leave `dc`'s nodes within a
/// few percent of the same keys at replication factor `rf`; `None` when
/// balance is reachable. Members of the layout other than `joiner` count.
pub fn balance_warning(
    layout: &Layout,
    dc: &str,
    rack: &str,
    rf: u32,
    joiner: &str,
) -> Option<String> {
    let mut sizes: BTreeMap<&str, usize> = BTreeMap::new();
    let others = layout
        .nodes()
        .filter(|(d, _, n)| *d == dc && n.id != joiner && n.state.is_member());
    for (_, r, _) in others {
        *sizes.entry(r).or_default() += 1;
    }
    *sizes.entry(rack).or_default() += 1;
    let nodes: usize = sizes.values().sum();
    let rf = rf as usize;
    if rf < 2 || sizes.len() < 2 || rf >= nodes {
        return None;
    }
    let (big, most) = sizes
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(r, n)| (*r, *n))?;
    let least = *sizes.values().min()?;
    let racks_n = sizes.len();
    // Per key a rack holds at most one replica when there are at least as
    // many racks as replicas; with fewer racks, at least one and at most
    // rf - racks + 1. A rack of n nodes balanced holds n * rf / nodes
    // replicas of every key on average, so it must fit those bounds.
    let reachable = if rf <= racks_n {
        most * rf <= nodes
    } else {
        least * rf >= nodes && most * rf <= nodes * (rf - racks_n + 1)
    };
    if reachable {
        return None;
    }
    let racks: Vec<String> = sizes.iter().map(|(r, n)| format!("{r}: {n}")).collect();
    let fix = if rf <= racks_n {
        format!("racks of at most {} nodes each", nodes / rf)
    } else {
        format!("racks of at least {} nodes each", nodes.div_ceil(rf))
    };
    Some(format!(
        "datacenter {dc} cannot be balanced after this join: replication factor {rf} over \
         racks {{{}}} (rack-aware placement; rack {big} has {most} of {nodes} nodes) leaves \
         keys per node more than 5 % apart whatever the tokens; join a new rack, or make {fix}",
        racks.join(", ")
    ))
}
