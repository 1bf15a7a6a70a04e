//! Hints during a range movement. A write acknowledged while an owner C was
//! down waits on other nodes as a hint for C; a gainer copies a moving
//! range from the owner losing it (strict source), so if that hint reaches
//! C only after the stream passed the key, the gainer never gets it from
//! C. So a hint delivered while its key's range is moving also goes to the
//! range's pending replicas in C's datacenter ([`also_to`]): durably
//! queued for them (or applied here, when this node is one) before the
//! hint for C can leave its queue. [`also_to`] is pure; [`copy`] stores
//! one copy. Must not send anything.

use super::Hints;
use crate::proto::v1::internode::StreamEntry;
use crate::ring::token_of;
use crate::version::SiblingSet;
use crate::view::ClusterView;

/// The nodes other than `target` that must also get a hint for `key`
/// bound for `target`: the pending replicas in `target`'s datacenter of
/// the key's range (none when nothing moves there, or `target` is not a
/// member).
pub fn also_to(view: &ClusterView, target: &str, keyspace: &str, key: &[u8]) -> Vec<String> {
    let Some(t) = view.node(target) else {
        return Vec::new();
    };
    view.pending
        .for_token(keyspace, token_of(key))
        .iter()
        .filter(|d| d.dc == t.dc)
        .flat_map(|d| d.nodes.iter())
        .map(|&i| view.ring.node(i).id.clone())
        .filter(|id| id != target)
        .collect()
}

/// Gives `to` a copy of the hint `entry` (whose record is `set`): a durable
/// hint, or a merge into this node's engine when `to` is this node (`me`).
pub(crate) async fn copy(
    hints: &Hints,
    me: &str,
    to: &str,
    entry: &StreamEntry,
    set: &SiblingSet,
) -> Result<(), String> {
    if to != me {
        return (hints.hint_node(to, &entry.keyspace, &entry.key, set).await)
            .map_err(|e| e.to_string());
    }
    (hints.merge_here(&entry.keyspace, &entry.key, set).await).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{Layout, NewNode};
    use crate::topology::Topology;

    #[test]
    fn a_hint_for_a_key_whose_range_moves_also_goes_to_its_pending_replica() {
        let seed = Layout::seed(&Topology::dev());
        let tokens = crate::ring::allocate_tokens(&seed, "dc1", "r1", 64, 3).unwrap();
        let node = NewNode {
            id: "dc1-new".into(),
            client_address: "127.0.0.14:7070".parse().unwrap(),
            peer_address: "127.0.0.14:7071".parse().unwrap(),
            admin_address: "127.0.0.14:7072".parse().unwrap(),
        };
        let joining = seed.begin_join(node, "dc1", "r1", &tokens).unwrap();
        let view = ClusterView::derive(joining, "dc1-n2").unwrap();
        let settled = ClusterView::derive(seed, "dc1-n2").unwrap();
        let joiner = view.node("dc1-new").unwrap().idx;
        let (mut moving, mut still) = (0, 0);
        for k in 0..300u32 {
            let key = k.to_be_bytes();
            let owners = view.ring.replicas("default", &key).unwrap();
            let target = &view.ring.node(owners.in_dc("dc1")[0]).id;
            let pending = view.pending.for_token("default", token_of(&key));
            let gains = pending.iter().any(|d| d.nodes.contains(&joiner));
            let also = also_to(&view, target, "default", &key);
            if gains {
                moving += 1;
                assert_eq!(also, vec!["dc1-new".to_string()]);
            } else {
                still += 1;
                assert!(also.is_empty());
            }
            // Nothing moves in dc2, nor anywhere once the movement is over.
            let remote = &view.ring.node(owners.in_dc("dc2")[0]).id;
            assert!(also_to(&view, remote, "default", &key).is_empty());
            assert!(also_to(&settled, target, "default", &key).is_empty());
        }
        assert!(moving > 0 && still > 0, "{moving} moving, {still} not");
    }
}
