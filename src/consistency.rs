//! Consistency levels and [`block_for`]: how many acknowledgements, from
//! which datacenters, a request needs before the coordinator answers.
//! Pure arithmetic after Cassandra's `ConsistencyLevel.blockFor`.
//!
//! Owns what a [`ConsistencyLevel`] (a type of the SDK, `geokv_client`)
//! requires: [`Requirement`], [`AckCounts`] and [`ConsistencyError`]. Must
//! not know which replicas are alive or where they are (that is `ring` and
//! `membership`), and does no I/O.
//!
//! | level        | requirement (quorum(n) = n/2 + 1)                     |
//! |--------------|-------------------------------------------------------|
//! | ANY          | writes only: 1 ack or stored hint, but the coordinating replica always acks first, so in effect ONE |
//! | ONE/TWO/THREE| 1/2/3 acks from any DC                                |
//! | LOCAL_ONE    | 1 ack from the local DC                               |
//! | LOCAL_QUORUM | quorum(rf of the local DC) from the local DC          |
//! | EACH_QUORUM  | quorum(rf of dc) from every DC with rf > 0 (reads too)|
//! | QUORUM       | quorum(Σ rf) from any DC                              |
//! | ALL          | Σ rf                                                  |
//!
//! An explicit ack count overrides the level: `Total { count }`, 1..=Σ rf.

use std::collections::BTreeMap;

/// The level type is the SDK's (clients name levels too); re-exported here,
/// the server's home for level semantics, so its path stays the same.
pub use geokv_client::{ConsistencyLevel, ParseLevelError};

mod pending;
pub use pending::with_pending;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum OpKind {
    Read,
    Write,
}

/// Replication factor per datacenter: dc -> rf.
pub type Replication = BTreeMap<String, u32>;

/// What a request must collect, as computed by [`block_for`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Requirement {
    /// ANY: one ack from any replica OR a durably stored hint.
    AnyOrHint,
    /// `count` acks from replicas in any DC.
    Total { count: u32 },
    /// `count` acks from replicas of `dc` only.
    Local { dc: String, count: u32 },
    /// per DC (only DCs with rf>0) `count` acks each.
    EachDc { per_dc: Vec<(String, u32)> },
}

/// Acks received so far: replica acks per DC, and hints stored (ANY only).
#[derive(Default, Clone, Debug)]
pub struct AckCounts {
    pub per_dc: BTreeMap<String, u32>,
    pub hints: u32,
}

impl AckCounts {
    fn in_dc(&self, dc: &str) -> u32 {
        self.per_dc.get(dc).copied().unwrap_or(0)
    }

    fn replicas(&self) -> u32 {
        self.per_dc.values().sum()
    }
}

/// The level can never be met for this replication from this DC. The API
/// maps every variant to gRPC `FAILED_PRECONDITION` (retrying cannot help).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsistencyError {
    #[error("consistency level ANY is only valid for writes; read with ONE or stronger")]
    AnyForRead,
    #[error("{level} needs replicas in the local datacenter '{dc}', but its replication factor there is 0")]
    NoLocalReplicas { level: ConsistencyLevel, dc: String },
    #[error("{level} needs {required} replica acknowledgement(s) but the keyspace has only {replication_total} replica(s) in total")]
    NotEnoughReplicas {
        level: ConsistencyLevel,
        required: u32,
        replication_total: u32,
    },
    #[error("explicit acknowledgement count {count} is out of range: it must be between 1 and the keyspace's {replication_total} replica(s)")]
    ExplicitOutOfRange { count: u32, replication_total: u32 },
}

/// Majority of `n`: `n / 2 + 1`.
pub fn quorum(n: u32) -> u32 {
    n / 2 + 1
}

/// The acks `level` (or the `explicit` count, which overrides it) needs for
/// `op` on a keyspace replicated as `replication`, coordinated in `local_dc`.
pub fn block_for(
    level: ConsistencyLevel,
    explicit: Option<u32>,
    op: OpKind,
    replication: &Replication,
    local_dc: &str,
) -> Result<Requirement, ConsistencyError> {
    let replication_total: u32 = replication.values().sum();
    if let Some(count) = explicit {
        if count == 0 || count > replication_total {
            return Err(ConsistencyError::ExplicitOutOfRange {
                count,
                replication_total,
            });
        }
        return Ok(Requirement::Total { count });
    }
    let local_rf = replication.get(local_dc).copied().unwrap_or(0);
    let local = |count: u32| {
        if local_rf == 0 {
            return Err(ConsistencyError::NoLocalReplicas {
                level,
                dc: local_dc.to_string(),
            });
        }
        Ok(Requirement::Local {
            dc: local_dc.to_string(),
            count,
        })
    };
    let req = match level {
        ConsistencyLevel::Any if op == OpKind::Read => return Err(ConsistencyError::AnyForRead),
        ConsistencyLevel::Any => Requirement::AnyOrHint,
        ConsistencyLevel::One => Requirement::Total { count: 1 },
        ConsistencyLevel::Two => Requirement::Total { count: 2 },
        ConsistencyLevel::Three => Requirement::Total { count: 3 },
        ConsistencyLevel::LocalOne => local(1)?,
        ConsistencyLevel::LocalQuorum => local(quorum(local_rf))?,
        ConsistencyLevel::EachQuorum => Requirement::EachDc {
            per_dc: replication
                .iter()
                .filter(|(_, rf)| **rf > 0)
                .map(|(dc, rf)| (dc.clone(), quorum(*rf)))
                .collect(),
        },
        ConsistencyLevel::Quorum => Requirement::Total {
            count: quorum(replication_total),
        },
        ConsistencyLevel::All => Requirement::Total {
            count: replication_total,
        },
    };
    // A keyspace with no replicas at all cannot meet any level (ANY too: a
    // hint needs a replica to be handed to).
    let required = req.total().max(1);
    if required > replication_total {
        return Err(ConsistencyError::NotEnoughReplicas {
            level,
            required,
            replication_total,
        });
    }
    Ok(req)
}

impl Requirement {
    /// Acks needed overall (ANY: 1; EACH_QUORUM: the sum over DCs).
    pub fn total(&self) -> u32 {
        match self {
            Requirement::AnyOrHint => 1,
            Requirement::Total { count } | Requirement::Local { count, .. } => *count,
            Requirement::EachDc { per_dc } => per_dc.iter().map(|(_, n)| n).sum(),
        }
    }

    /// The datacenters still short of their count, e.g. `dc2 has 0 of 2`
    /// (empty unless the requirement is per datacenter).
    pub fn shortfall(&self, acks: &AckCounts) -> String {
        let short = |dc: &str, n: u32| {
            let got = acks.in_dc(dc);
            (got < n).then(|| format!("{dc} has {got} of {n}"))
        };
        match self {
            Requirement::Local { dc, count } => short(dc, *count).unwrap_or_default(),
            Requirement::EachDc { per_dc } => per_dc
                .iter()
                .filter_map(|(dc, n)| short(dc, *n))
                .collect::<Vec<_>>()
                .join(", "),
            Requirement::AnyOrHint | Requirement::Total { .. } => String::new(),
        }
    }

    /// The acks received so far satisfy the requirement. Hints count only
    /// for ANY.
    pub fn is_met(&self, acks: &AckCounts) -> bool {
        match self {
            Requirement::AnyOrHint => acks.replicas() + acks.hints >= 1,
            Requirement::Total { count } => acks.replicas() >= *count,
            Requirement::Local { dc, count } => acks.in_dc(dc) >= *count,
            Requirement::EachDc { per_dc } => per_dc.iter().all(|(dc, n)| acks.in_dc(dc) >= *n),
        }
    }

    /// Could the requirement still be met if every request still pending
    /// (`pending_per_dc`: outstanding requests per DC) succeeded? `false`
    /// means fail now instead of waiting for the timeout. For ANY the
    /// coordinator stores its hint before waiting, so with nothing pending
    /// and no ack or hint it cannot be met.
    pub fn can_still_be_met(
        &self,
        acks: &AckCounts,
        pending_per_dc: &BTreeMap<String, u32>,
    ) -> bool {
        let pending = |dc: &str| pending_per_dc.get(dc).copied().unwrap_or(0);
        let all_pending: u32 = pending_per_dc.values().sum();
        match self {
            Requirement::AnyOrHint => self.is_met(acks) || all_pending > 0,
            Requirement::Total { count } => acks.replicas() + all_pending >= *count,
            Requirement::Local { dc, count } => acks.in_dc(dc) + pending(dc) >= *count,
            Requirement::EachDc { per_dc } => per_dc
                .iter()
                .all(|(dc, n)| acks.in_dc(dc) + pending(dc) >= *n),
        }
    }
}

#[cfg(test)]
mod tests;
