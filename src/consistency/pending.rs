//! Writes during a range movement: the acknowledgements a level needs once
//! the range has pending replicas (Cassandra's `blockForWrite`: blockFor +
//! pending). Pure arithmetic on a [`Requirement`]; must not know which
//! replicas are pending (that is [`crate::ring::PendingRanges`]).

use std::collections::BTreeMap;

use super::Requirement;

/// `req` for a write whose range has `pending_per_dc` pending replicas
/// (dc → count), which the write is also sent to. Each pending replica
/// raises the count it could be counted towards by one, so a quorum written
/// during the movement still meets a quorum of the owners before it and a
/// quorum of the owners after it:
///
/// - LOCAL_ONE / LOCAL_QUORUM: + pending in the local datacenter;
/// - EACH_QUORUM: + pending in each datacenter, per datacenter;
/// - ONE / TWO / THREE / QUORUM / ALL / an explicit count: + all pending;
/// - ANY: unchanged (a hint is enough by definition).
///
/// Reads need no change: they use the current owners until the switch.
pub fn with_pending(req: Requirement, pending_per_dc: &BTreeMap<String, u32>) -> Requirement {
    let pending = |dc: &str| pending_per_dc.get(dc).copied().unwrap_or(0);
    match req {
        Requirement::AnyOrHint => Requirement::AnyOrHint,
        Requirement::Total { count } => Requirement::Total {
            count: count + pending_per_dc.values().sum::<u32>(),
        },
        Requirement::Local { count, dc } => Requirement::Local {
            count: count + pending(&dc),
            dc,
        },
        Requirement::EachDc { per_dc } => Requirement::EachDc {
            per_dc: per_dc
                .into_iter()
                .map(|(dc, n)| {
                    let n = n + pending(&dc);
                    (dc, n)
                })
                .collect(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consistency::{block_for, ConsistencyLevel as L, OpKind};

    #[test]
    fn pending_raises_the_count_where_it_counts() {
        let repl: BTreeMap<String, u32> = [("dc1".into(), 3), ("dc2".into(), 3)].into();
        let pending: BTreeMap<String, u32> = [("dc1".into(), 1), ("dc2".into(), 2)].into();
        let req = |l| block_for(l, None, OpKind::Write, &repl, "dc1").unwrap();
        let local = |dc: &str, count| Requirement::Local {
            dc: dc.into(),
            count,
        };
        assert_eq!(with_pending(req(L::LocalQuorum), &pending), local("dc1", 3));
        assert_eq!(with_pending(req(L::LocalOne), &pending), local("dc1", 2));
        assert_eq!(
            with_pending(req(L::EachQuorum), &pending),
            Requirement::EachDc {
                per_dc: vec![("dc1".into(), 3), ("dc2".into(), 4)]
            }
        );
        assert_eq!(
            with_pending(req(L::Quorum), &pending),
            Requirement::Total { count: 7 }
        );
        assert_eq!(
            with_pending(req(L::All), &pending),
            Requirement::Total { count: 9 }
        );
        assert_eq!(
            with_pending(req(L::One), &pending),
            Requirement::Total { count: 4 }
        );
        assert_eq!(with_pending(req(L::Any), &pending), Requirement::AnyOrHint);
        for l in L::ALL_LEVELS {
            assert_eq!(with_pending(req(l), &BTreeMap::new()), req(l), "{l}");
        }
    }
}
