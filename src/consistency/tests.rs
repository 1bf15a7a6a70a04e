//! The spec table for `block_for` (expected values written by hand from
//! Cassandra's definitions) and property tests of the requirement arithmetic.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::ConsistencyLevel::{self, *};
use super::{block_for, AckCounts, ConsistencyError as E, OpKind, Replication, Requirement as R};

fn repl(e: &[(&str, u32)]) -> Replication {
    e.iter().map(|(d, n)| (d.to_string(), *n)).collect()
}

fn total(count: u32) -> Result<R, E> {
    Ok(R::Total { count })
}
fn local(dc: &str, count: u32) -> Result<R, E> {
    Ok(R::Local {
        dc: dc.into(),
        count,
    })
}
fn each(e: &[(&str, u32)]) -> Result<R, E> {
    Ok(R::EachDc {
        per_dc: e.iter().map(|(d, n)| (d.to_string(), *n)).collect(),
    })
}
fn short(level: ConsistencyLevel, required: u32, replication_total: u32) -> Result<R, E> {
    Err(E::NotEnoughReplicas {
        level,
        required,
        replication_total,
    })
}
fn no_local(level: ConsistencyLevel, dc: &str) -> Result<R, E> {
    Err(E::NoLocalReplicas {
        level,
        dc: dc.into(),
    })
}

type Row = (ConsistencyLevel, Result<R, E>, Result<R, E>);

/// Checks one table: every level, (expected for Read, expected for Write).
fn check(replication: &[(&str, u32)], local_dc: &str, rows: Vec<Row>) {
    let r = repl(replication);
    let levels: Vec<_> = rows.iter().map(|row| row.0).collect();
    assert_eq!(
        levels,
        ConsistencyLevel::ALL_LEVELS,
        "the table must list every level"
    );
    for (level, read, write) in rows {
        for (op, want) in [(OpKind::Read, read), (OpKind::Write, write)] {
            let got = block_for(level, None, op, &r, local_dc);
            assert_eq!(got, want, "{level} {op:?} {replication:?} local={local_dc}");
        }
    }
}

#[test]
fn two_dcs_of_three() {
    // Σrf = 6, quorum(6) = 4, quorum(3) = 2.
    check(
        &[("dc1", 3), ("dc2", 3)],
        "dc1",
        vec![
            (Any, Err(E::AnyForRead), Ok(R::AnyOrHint)),
            (One, total(1), total(1)),
            (Two, total(2), total(2)),
            (Three, total(3), total(3)),
            (LocalOne, local("dc1", 1), local("dc1", 1)),
            (LocalQuorum, local("dc1", 2), local("dc1", 2)),
            (
                EachQuorum,
                each(&[("dc1", 2), ("dc2", 2)]),
                each(&[("dc1", 2), ("dc2", 2)]),
            ),
            (Quorum, total(4), total(4)),
            (All, total(6), total(6)),
        ],
    );
}

#[test]
fn three_uneven_dcs() {
    // Σrf = 6, quorum(6) = 4; quorum(3) = 2, quorum(2) = 2, quorum(1) = 1.
    let eq = [("dc1", 2), ("dc2", 2), ("dc3", 1)];
    check(
        &[("dc1", 3), ("dc2", 2), ("dc3", 1)],
        "dc1",
        vec![
            (Any, Err(E::AnyForRead), Ok(R::AnyOrHint)),
            (One, total(1), total(1)),
            (Two, total(2), total(2)),
            (Three, total(3), total(3)),
            (LocalOne, local("dc1", 1), local("dc1", 1)),
            (LocalQuorum, local("dc1", 2), local("dc1", 2)),
            (EachQuorum, each(&eq), each(&eq)),
            (Quorum, total(4), total(4)),
            (All, total(6), total(6)),
        ],
    );
}

#[test]
fn single_replica() {
    // Σrf = 1: TWO and THREE can never be met.
    check(
        &[("dc1", 1)],
        "dc1",
        vec![
            (Any, Err(E::AnyForRead), Ok(R::AnyOrHint)),
            (One, total(1), total(1)),
            (Two, short(Two, 2, 1), short(Two, 2, 1)),
            (Three, short(Three, 3, 1), short(Three, 3, 1)),
            (LocalOne, local("dc1", 1), local("dc1", 1)),
            (LocalQuorum, local("dc1", 1), local("dc1", 1)),
            (EachQuorum, each(&[("dc1", 1)]), each(&[("dc1", 1)])),
            (Quorum, total(1), total(1)),
            (All, total(1), total(1)),
        ],
    );
}

#[test]
fn local_levels_from_a_dc_without_replicas() {
    // dc3 is absent from the replication.
    check(
        &[("dc1", 3), ("dc2", 3)],
        "dc3",
        vec![
            (Any, Err(E::AnyForRead), Ok(R::AnyOrHint)),
            (One, total(1), total(1)),
            (Two, total(2), total(2)),
            (Three, total(3), total(3)),
            (
                LocalOne,
                no_local(LocalOne, "dc3"),
                no_local(LocalOne, "dc3"),
            ),
            (
                LocalQuorum,
                no_local(LocalQuorum, "dc3"),
                no_local(LocalQuorum, "dc3"),
            ),
            (
                EachQuorum,
                each(&[("dc1", 2), ("dc2", 2)]),
                each(&[("dc1", 2), ("dc2", 2)]),
            ),
            (Quorum, total(4), total(4)),
            (All, total(6), total(6)),
        ],
    );
    // dc2 is listed with rf 0: EACH_QUORUM skips it.
    check(
        &[("dc1", 3), ("dc2", 0)],
        "dc2",
        vec![
            (Any, Err(E::AnyForRead), Ok(R::AnyOrHint)),
            (One, total(1), total(1)),
            (Two, total(2), total(2)),
            (Three, total(3), total(3)),
            (
                LocalOne,
                no_local(LocalOne, "dc2"),
                no_local(LocalOne, "dc2"),
            ),
            (
                LocalQuorum,
                no_local(LocalQuorum, "dc2"),
                no_local(LocalQuorum, "dc2"),
            ),
            (EachQuorum, each(&[("dc1", 2)]), each(&[("dc1", 2)])),
            (Quorum, total(2), total(2)),
            (All, total(3), total(3)),
        ],
    );
}

#[test]
fn explicit_counts_override_the_level() {
    let r = repl(&[("dc1", 3), ("dc2", 3)]);
    let bf = |level, n, op| block_for(level, Some(n), op, &r, "dc1");
    assert_eq!(bf(Quorum, 5, OpKind::Write), total(5));
    assert_eq!(bf(Any, 1, OpKind::Read), total(1));
    assert_eq!(bf(LocalOne, 6, OpKind::Read), total(6));
    let out = |count| {
        Err(E::ExplicitOutOfRange {
            count,
            replication_total: 6,
        })
    };
    assert_eq!(bf(One, 0, OpKind::Read), out(0));
    assert_eq!(bf(One, 7, OpKind::Write), out(7));
}

#[test]
fn no_replicas_at_all() {
    let r = repl(&[("dc1", 0)]);
    for level in [Any, One, EachQuorum, Quorum, All] {
        let got = block_for(level, None, OpKind::Write, &r, "dc2");
        assert_eq!(got, short(level, 1, 0), "{level}");
    }
}

#[test]
fn error_messages_name_the_numbers_and_the_dc() {
    let r = repl(&[("dc1", 1), ("dc2", 1)]);
    let e = block_for(Three, None, OpKind::Read, &r, "dc1").unwrap_err();
    assert_eq!(
        e.to_string(),
        "THREE needs 3 replica acknowledgement(s) but the keyspace has only 2 replica(s) in total"
    );
    let e = block_for(LocalQuorum, None, OpKind::Read, &r, "dc9").unwrap_err();
    assert!(e.to_string().contains("LOCAL_QUORUM") && e.to_string().contains("'dc9'"));
    let e = block_for(One, Some(3), OpKind::Read, &r, "dc1").unwrap_err();
    assert!(e.to_string().contains("count 3") && e.to_string().contains("2 replica"));
}

#[test]
fn names_parse_and_display() {
    for level in ConsistencyLevel::ALL_LEVELS {
        assert_eq!(level.name().parse::<ConsistencyLevel>().unwrap(), level);
        assert_eq!(level.to_string(), level.name());
        assert_eq!(level.is_local(), level.name().starts_with("LOCAL_"));
    }
    for s in [
        "LOCAL_QUORUM",
        "local-quorum",
        "localquorum",
        "Local_Quorum",
        " local_quorum ",
    ] {
        assert_eq!(s.parse::<ConsistencyLevel>().unwrap(), LocalQuorum, "{s}");
    }
    assert_eq!(
        "each-quorum".parse::<ConsistencyLevel>().unwrap(),
        EachQuorum
    );
    let err = "MOST".parse::<ConsistencyLevel>().unwrap_err();
    assert!(err.to_string().contains("'MOST'"));
    assert!("".parse::<ConsistencyLevel>().is_err());
}

fn acks(e: &[(&str, u32)], hints: u32) -> AckCounts {
    AckCounts {
        per_dc: e.iter().map(|(d, n)| (d.to_string(), *n)).collect(),
        hints,
    }
}

#[test]
fn is_met_and_can_still_be_met() {
    let none = BTreeMap::new();
    let pending = |e: &[(&str, u32)]| -> BTreeMap<String, u32> {
        e.iter().map(|(d, n)| (d.to_string(), *n)).collect()
    };
    // ANY: a hint is enough; hints count for nothing else.
    assert!(R::AnyOrHint.is_met(&acks(&[], 1)));
    assert!(!R::AnyOrHint.is_met(&acks(&[], 0)));
    assert!(!R::AnyOrHint.can_still_be_met(&acks(&[], 0), &none));
    assert!(!R::Total { count: 1 }.is_met(&acks(&[], 5)));
    // Total counts every DC.
    assert!(R::Total { count: 3 }.is_met(&acks(&[("dc1", 1), ("dc2", 2)], 0)));
    // Local counts its DC only.
    let lq = R::Local {
        dc: "dc1".into(),
        count: 2,
    };
    assert!(!lq.is_met(&acks(&[("dc1", 1), ("dc2", 3)], 0)));
    assert!(lq.can_still_be_met(&acks(&[("dc1", 1)], 0), &pending(&[("dc1", 1)])));
    assert!(!lq.can_still_be_met(&acks(&[("dc1", 1)], 0), &pending(&[("dc2", 3)])));
    // EachDc needs every DC.
    let eq = R::EachDc {
        per_dc: vec![("dc1".into(), 2), ("dc2".into(), 1)],
    };
    assert!(!eq.is_met(&acks(&[("dc1", 3)], 0)));
    assert!(eq.is_met(&acks(&[("dc1", 2), ("dc2", 1)], 0)));
    assert!(!eq.can_still_be_met(&acks(&[("dc1", 3)], 0), &pending(&[("dc1", 2)])));
    assert_eq!(eq.total(), 3);
    // A timeout names the datacenters that are short.
    assert_eq!(eq.shortfall(&acks(&[("dc1", 3)], 0)), "dc2 has 0 of 1");
    assert_eq!(
        eq.shortfall(&acks(&[("dc1", 1)], 0)),
        "dc1 has 1 of 2, dc2 has 0 of 1"
    );
    assert_eq!(eq.shortfall(&acks(&[("dc1", 2), ("dc2", 1)], 0)), "");
    assert_eq!(lq.shortfall(&acks(&[("dc1", 1)], 0)), "dc1 has 1 of 2");
}

fn replication() -> impl Strategy<Value = Replication> {
    prop::collection::btree_map(
        prop::sample::select(vec!["dc0", "dc1", "dc2", "dc3"]),
        0..8u32,
        0..4,
    )
    .prop_map(|m| m.into_iter().map(|(d, n)| (d.to_string(), n)).collect())
}

fn level() -> impl Strategy<Value = ConsistencyLevel> {
    prop::sample::select(ConsistencyLevel::ALL_LEVELS.to_vec())
}

fn op() -> impl Strategy<Value = OpKind> {
    prop::sample::select(vec![OpKind::Read, OpKind::Write])
}

fn dc() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["dc0", "dc1", "dc2", "dc3", "dc4"]).prop_map(String::from)
}

fn ack_counts() -> impl Strategy<Value = AckCounts> {
    (prop::collection::btree_map(dc(), 0..8u32, 0..5), 0..3u32)
        .prop_map(|(per_dc, hints)| AckCounts { per_dc, hints })
}

proptest! {
    #[test]
    fn total_never_exceeds_the_replicas(
        r in replication(), l in level(), o in op(), local in dc(), explicit in prop::option::of(0..10u32),
    ) {
        let sum: u32 = r.values().sum();
        if let Ok(req) = block_for(l, explicit, o, &r, &local) {
            prop_assert!(req.total() >= 1 && req.total() <= sum, "{req:?} for Σrf {sum}");
            if let R::Local { dc, count } = &req {
                prop_assert_eq!(dc, &local);
                prop_assert!(*count <= r[&local]);
            }
        }
    }

    #[test]
    fn quorums_intersect(r in replication(), local in dc()) {
        let sum: u32 = r.values().sum();
        let q = block_for(Quorum, None, OpKind::Read, &r, &local);
        let eq = block_for(EachQuorum, None, OpKind::Write, &r, &local);
        if let (Ok(q), Ok(eq)) = (q, eq) {
            // Two QUORUM sets, or a QUORUM and an EACH_QUORUM set, drawn from
            // the Σrf replicas must share one (pigeonhole).
            prop_assert!(2 * q.total() > sum);
            prop_assert!(q.total() + eq.total() > sum);
            // Two EACH_QUORUM sets share a replica in every DC.
            let R::EachDc { per_dc } = eq else { unreachable!() };
            for (d, n) in per_dc {
                prop_assert!(2 * n > r[&d]);
            }
        }
        if let Ok(R::Local { dc, count }) = block_for(LocalQuorum, None, OpKind::Read, &r, &local) {
            prop_assert!(2 * count > r[&dc]);
        }
    }

    #[test]
    fn is_met_is_monotone_and_can_still_be_met_is_exact(
        r in replication(), l in level(), local in dc(), a in ack_counts(), p in ack_counts(),
        more_in in dc(), more_hint in any::<bool>(),
    ) {
        let Ok(req) = block_for(l, None, OpKind::Write, &r, &local) else { return Ok(()) };
        let mut bigger = a.clone();
        if more_hint {
            bigger.hints += 1;
        } else {
            *bigger.per_dc.entry(more_in).or_default() += 1;
        }
        prop_assert!(!req.is_met(&a) || req.is_met(&bigger));
        // Met now implies it can still be met, whatever is pending.
        prop_assert!(!req.is_met(&a) || req.can_still_be_met(&a, &p.per_dc));
        // For replica requirements "can still be met" is exactly "met if
        // everything pending acks".
        if req != R::AnyOrHint {
            let mut all = a.clone();
            for (d, n) in &p.per_dc {
                *all.per_dc.entry(d.clone()).or_default() += n;
            }
            prop_assert_eq!(req.can_still_be_met(&a, &p.per_dc), req.is_met(&all));
        }
    }
}
