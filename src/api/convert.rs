//! Conversions between the wire types of `geokv.v1` and the coordinator's.
//! Must not: validate requests, decide levels or talk to the coordinator
//! (conversions only; `api` calls them).

use crate::consistency::ConsistencyLevel;
use crate::coordinator::ReadOutcome;
use crate::error::GeokvError;
use crate::membership::Gossiper;
use crate::proto::v1::*;
use crate::ring::Ring;

/// The wire level; `None` for UNSPECIFIED (the server default).
pub fn level(v: i32) -> Result<Option<ConsistencyLevel>, GeokvError> {
    let c = Consistency::try_from(v)
        .map_err(|_| GeokvError::InvalidArgument(format!("unknown consistency level {v}")))?;
    Ok(match c {
        Consistency::Unspecified => None,
        Consistency::Any => Some(ConsistencyLevel::Any),
        Consistency::One => Some(ConsistencyLevel::One),
        Consistency::Two => Some(ConsistencyLevel::Two),
        Consistency::Three => Some(ConsistencyLevel::Three),
        Consistency::LocalOne => Some(ConsistencyLevel::LocalOne),
        Consistency::LocalQuorum => Some(ConsistencyLevel::LocalQuorum),
        Consistency::EachQuorum => Some(ConsistencyLevel::EachQuorum),
        Consistency::Quorum => Some(ConsistencyLevel::Quorum),
        Consistency::All => Some(ConsistencyLevel::All),
    })
}

/// A read's merged state as returned to the client: every sibling, and a
/// context covering them all. A state made only of tombstones reads as empty
/// but still hands back its context.
pub fn get_response(out: ReadOutcome, keyspace: &str, key: &[u8]) -> GetResponse {
    let Some(set) = out.set else {
        return GetResponse {
            siblings: Vec::new(),
            context: Vec::new(),
            replicas_answered: out.answered,
        };
    };
    let siblings = if set.is_tombstone_only() {
        Vec::new()
    } else {
        set.values()
            .map(|s| Sibling {
                tombstone: s.value.is_none(),
                value: s.value.as_ref().map(|v| v.to_vec()),
                timestamp_ms: s.timestamp_ms,
            })
            .collect()
    };
    GetResponse {
        siblings,
        context: set.context().encode_for(keyspace, key),
        replicas_answered: out.answered,
    }
}

/// The cluster as this node sees it.
pub fn status(ring: &Ring, gossiper: &Gossiper, me: &str) -> StatusResponse {
    let topo = ring.topology();
    let snapshot = gossiper.snapshot();
    let me = me.to_string();
    let nodes = ring
        .nodes()
        .iter()
        .map(|n| {
            let peer = snapshot.iter().find(|p| p.id == n.id);
            NodeStatus {
                id: n.id.clone(),
                datacenter: n.dc.clone(),
                rack: n.rack.clone(),
                client_address: n.client_address.to_string(),
                admin_address: n.admin_address.to_string(),
                up: n.id == me || peer.map(|p| p.up).unwrap_or(false),
                phi: peer.map(|p| p.phi).unwrap_or(0.0),
                heartbeat: peer.map(|p| p.heartbeat).unwrap_or(0),
            }
        })
        .collect();
    let local_dc = ring
        .node_by_id(&me)
        .map(|n| n.dc.clone())
        .unwrap_or_default();
    StatusResponse {
        cluster: topo.cluster_name.clone(),
        answered_by: me,
        local_datacenter: local_dc,
        nodes,
        keyspaces: topo
            .keyspaces
            .iter()
            .map(|(name, ks)| KeyspaceStatus {
                name: name.clone(),
                replication: ks.replication.clone().into_iter().collect(),
            })
            .collect(),
    }
}
