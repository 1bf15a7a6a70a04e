//! The layout on the admin port, free of any HTTP framework (the admin
//! server maps these to routes): `GET /layout` ([`layout_json`]) and
//! `POST /keyspaces?name=NAME&rf=dc1:3,dc2:2` ([`create_keyspace`], CREATE
//! KEYSPACE semantics: a layout change that moves no data). Also the
//! per-node ownership report `geokv ring` prints ([`ownership`], pure).
//!
//! Must not: bind sockets or know the HTTP server in use.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Cluster, ProposeError};
use crate::layout::Layout;
use crate::ring::Ring;
use crate::topology::KeyspaceSpec;

/// The current layout as JSON (its `version` included).
pub fn layout_json(cluster: &Cluster) -> String {
    let view = cluster.current();
    serde_json::to_string_pretty(&*view.layout).expect("a layout always serialises") + "\n"
}

/// A keyspace could not be created.
#[derive(Debug, thiserror::Error)]
pub enum KeyspaceError {
    #[error("bad keyspace name '{0}' (use [A-Za-z0-9._-], at most 64 characters)")]
    BadName(String),
    #[error("keyspace '{0}' already exists")]
    Exists(String),
    #[error("bad replication '{0}' (use dc1:3,dc2:2)")]
    BadReplication(String),
    #[error("datacenter '{dc}' has {members} member(s), fewer than rf {rf}")]
    TooFewNodes { dc: String, rf: u32, members: usize },
    #[error("unknown datacenter '{0}'")]
    UnknownDc(String),
    #[error(transparent)]
    Propose(#[from] ProposeError),
}

impl KeyspaceError {
    /// The HTTP status an admin answer carries.
    pub fn status(&self) -> u16 {
        match self {
            KeyspaceError::Exists(_) => 409,
            KeyspaceError::Propose(e) => e.status(),
            _ => 400,
        }
    }

    /// The `geokv-applied` verdict an admin answer carries.
    pub fn applied(&self) -> &'static str {
        match self {
            KeyspaceError::Propose(e) => e.applied(),
            _ => "no",
        }
    }
}

/// Parses `dc1:3,dc2:2` (or `dc1=3,...`).
pub fn parse_replication(s: &str) -> Result<BTreeMap<String, u32>, KeyspaceError> {
    let bad = || KeyspaceError::BadReplication(s.to_string());
    let mut out = BTreeMap::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        let (dc, rf) = part.split_once([':', '=']).ok_or_else(bad)?;
        let rf: u32 = rf.trim().parse().map_err(|_| bad())?;
        out.insert(dc.trim().to_string(), rf);
    }
    if out.is_empty() || out.values().all(|&rf| rf == 0) {
        return Err(bad());
    }
    Ok(out)
}

/// `layout` + keyspace `name`: the next version, or why not.
pub fn with_keyspace(
    layout: &Layout,
    name: &str,
    replication: BTreeMap<String, u32>,
) -> Result<Layout, KeyspaceError> {
    let name_ok = !name.is_empty()
        && name.len() <= 64
        && (name.chars()).all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if !name_ok {
        return Err(KeyspaceError::BadName(name.to_string()));
    }
    if layout.keyspaces.contains_key(name) {
        return Err(KeyspaceError::Exists(name.to_string()));
    }
    for (dc, &rf) in &replication {
        let Some(d) = layout.datacenters.iter().find(|d| &d.name == dc) else {
            return Err(KeyspaceError::UnknownDc(dc.clone()));
        };
        let members = (d.racks.iter().flat_map(|r| &r.nodes))
            .filter(|n| n.state.owns_tokens())
            .count();
        if (rf as usize) > members {
            return Err(KeyspaceError::TooFewNodes {
                dc: dc.clone(),
                rf,
                members,
            });
        }
    }
    let mut next = layout.clone();
    next.version += 1;
    next.keyspaces
        .insert(name.to_string(), KeyspaceSpec { replication });
    Ok(next)
}

/// Proposes the current layout + keyspace `name`; should a concurrent
/// change win the version, re-reads the layout (now the winner's) and
/// re-checks (the keyspace may exist now) once more. Returns the new
/// version.
pub async fn create_keyspace(
    cluster: &Cluster,
    name: &str,
    rf: &str,
) -> Result<u64, KeyspaceError> {
    let replication = parse_replication(rf)?;
    let mut tries = 0;
    loop {
        let next = with_keyspace(&cluster.current().layout, name, replication.clone())?;
        match cluster.propose(next).await {
            Ok(view) => return Ok(view.version()),
            Err(ProposeError::NotNext { .. } | ProposeError::Concurrent { .. }) if tries < 2 => {
                tries += 1
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// One node's line of `geokv ring`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NodeOwnership {
    pub id: String,
    pub dc: String,
    pub rack: String,
    pub state: crate::layout::NodeState,
    pub tokens: usize,
    /// Share of the ring this node replicates in the keyspace, in percent
    /// (Cassandra's effective ownership: a datacenter's nodes sum to rf × 100).
    pub ownership_pct: f64,
}

/// Every node of `layout` with its effective ownership in `keyspace`.
pub fn ownership(layout: &Layout, keyspace: &str) -> Vec<NodeOwnership> {
    let ring = Ring::from_layout(layout);
    let mut width: BTreeMap<String, u128> = BTreeMap::new();
    if let Ok(ranges) = ring.ranges_with_replicas(keyspace) {
        for (range, set) in ranges {
            for d in &set.per_dc {
                for &n in &d.nodes {
                    *width.entry(ring.node(n).id.clone()).or_default() += range.width();
                }
            }
        }
    }
    let full = (u64::MAX as u128) + 1;
    layout
        .nodes()
        .map(|(dc, rack, n)| NodeOwnership {
            id: n.id.clone(),
            dc: dc.to_string(),
            rack: rack.to_string(),
            state: n.state,
            tokens: n.tokens.len(),
            ownership_pct: width
                .get(&n.id)
                .map_or(0.0, |&w| w as f64 * 100.0 / full as f64),
        })
        .collect()
}
