//! The D1…D5 vector-clock example (Dynamo paper, as retold in the seeds),
//! replayed with dotted version vectors at servers Sx, Sy, Sz; plus unit cases.

use bytes::Bytes;

use crate::version::{
    ActorId, CausalContext, Causality, Dot, SiblingError, SiblingSet, VersionVector,
};

const CAP: usize = 64;

fn sx() -> ActorId {
    ActorId::from_node_id("Sx")
}
fn sy() -> ActorId {
    ActorId::from_node_id("Sy")
}
fn sz() -> ActorId {
    ActorId::from_node_id("Sz")
}

fn b(s: &str) -> Option<Bytes> {
    Some(Bytes::copy_from_slice(s.as_bytes()))
}

/// Sibling values, sorted, as strings ("∅" for a tombstone).
fn vals(s: &SiblingSet) -> Vec<String> {
    let mut v: Vec<_> = s
        .values()
        .map(|x| {
            x.value
                .as_ref()
                .map_or("∅".into(), |v| String::from_utf8_lossy(v).into_owned())
        })
        .collect();
    v.sort();
    v
}

fn vv(e: &[(ActorId, u64)]) -> VersionVector {
    VersionVector::from_entries(e.iter().copied())
}

#[test]
fn dynamo_d1_to_d5() {
    let (mut x, mut y, mut z) = (SiblingSet::new(), SiblingSet::new(), SiblingSet::new());

    // 1) D1 written at Sx (blind write): D1([Sx,1]).
    let d1 = x
        .update(sx(), &CausalContext::new(), b("D1"), 1, CAP)
        .unwrap();
    assert_eq!(d1, Dot::new(sx(), 1));
    assert_eq!(vals(&x), ["D1"]);
    assert_eq!(x.clock, vv(&[(sx(), 1)]));

    // 2) A client reads D1 and writes D2 at Sx: D2 overwrites D1, D2([Sx,2]).
    let ctx = x.context().clone();
    let d2 = x.update(sx(), &ctx, b("D2"), 2, CAP).unwrap();
    assert_eq!(d2, Dot::new(sx(), 2));
    assert_eq!(vals(&x), ["D2"]);
    assert_eq!(x.clock, vv(&[(sx(), 2)]));
    // Sx ships its state to Sy and Sz.
    y.merge(&x);
    z.merge(&x);
    assert_eq!((&y, &z), (&x, &x));

    // 3) A client reads D2 and writes D3 at Sy: D3([Sx,2],[Sy,1]).
    let read_d2 = x.context().clone();
    y.update(sy(), &read_d2, b("D3"), 3, CAP).unwrap();
    assert_eq!(vals(&y), ["D3"]);
    assert_eq!(y.clock, vv(&[(sx(), 2), (sy(), 1)]));

    // 4) Another client also read D2 and writes D4 at Sz: D4([Sx,2],[Sz,1]).
    z.update(sz(), &read_d2, b("D4"), 4, CAP).unwrap();
    assert_eq!(vals(&z), ["D4"]);
    assert_eq!(z.clock, vv(&[(sx(), 2), (sz(), 1)]));
    assert_eq!(y.clock.compare(&z.clock), Causality::Concurrent);

    // Replication reaches Sx: D3 and D4 are siblings there, D2 is gone.
    x.merge(&y);
    x.merge(&z);
    assert_eq!(vals(&x), ["D3", "D4"]);
    assert_eq!(x.clock, vv(&[(sx(), 2), (sy(), 1), (sz(), 1)]));
    // Any merge order gives the same state.
    let mut other = z.clone();
    other.merge(&y);
    assert_eq!(other, x);

    // 5) A client reads D3 and D4, resolves, writes D5 at Sx:
    //    D5([Sx,3],[Sy,1],[Sz,1]) replaces both siblings.
    let ctx = x.context().clone();
    let d5 = x.update(sx(), &ctx, b("D5"), 5, CAP).unwrap();
    assert_eq!(d5, Dot::new(sx(), 3));
    assert_eq!(vals(&x), ["D5"]);
    assert_eq!(x.clock, vv(&[(sx(), 3), (sy(), 1), (sz(), 1)]));

    // D5 reaches Sy and Sz (which still hold D3 / D4): all converge on D5.
    y.merge(&x);
    z.merge(&x);
    assert_eq!((&y, &z), (&x, &x));
    assert_eq!(x.clock.compare(ctx.past()), Causality::Descends);
}

#[test]
fn write_at_a_replica_that_missed_the_context_still_overwrites() {
    // Sy never received D2 but the client's context covers it: once Sx's
    // state arrives, D2 is recognised as overwritten by D3.
    let mut x = SiblingSet::new();
    x.update(sx(), &CausalContext::new(), b("D2"), 1, CAP)
        .unwrap();
    let mut y = SiblingSet::new();
    y.update(sy(), &x.context(), b("D3"), 2, CAP).unwrap();
    y.merge(&x);
    x.merge(&y);
    assert_eq!(vals(&x), ["D3"]);
    assert_eq!(x, y);
}

#[test]
fn blind_writes_become_siblings_and_deletes_are_tombstones() {
    let mut s = SiblingSet::new();
    s.update(sx(), &CausalContext::new(), b("a"), 1, CAP)
        .unwrap();
    s.update(sx(), &CausalContext::new(), b("b"), 2, CAP)
        .unwrap();
    assert_eq!(vals(&s), ["a", "b"]);
    assert!(!s.is_tombstone_only());
    // A delete with a context covering both leaves a single tombstone.
    let ctx = s.context().clone();
    s.update(sy(), &ctx, None, 3, CAP).unwrap();
    assert_eq!(vals(&s), ["∅"]);
    assert!(s.is_tombstone_only());
    assert!(SiblingSet::new().is_tombstone_only());
    // A blind write after the delete is concurrent with the tombstone.
    s.update(sz(), &CausalContext::new(), b("c"), 4, CAP)
        .unwrap();
    assert_eq!(vals(&s), ["c", "∅"]);
}

#[test]
fn cap_rejects_the_write_and_leaves_state_unchanged() {
    let mut s = SiblingSet::new();
    for i in 0..3 {
        s.update(sx(), &CausalContext::new(), b(&i.to_string()), i, 3)
            .unwrap();
    }
    let before = s.clone();
    let err = s
        .update(sy(), &CausalContext::new(), b("x"), 9, 3)
        .unwrap_err();
    assert!(matches!(err, SiblingError::TooMany { count: 4, cap: 3 }));
    assert!(err
        .to_string()
        .contains("resolve them with the causal context"));
    assert_eq!(s, before);
    // A write whose context resolves the siblings is accepted.
    let ctx = s.context().clone();
    s.update(sy(), &ctx, b("x"), 9, 3).unwrap();
    assert_eq!(vals(&s), ["x"]);
}

#[test]
fn merge_never_applies_the_cap() {
    let mut x = SiblingSet::new();
    let mut y = SiblingSet::new();
    x.update(sx(), &CausalContext::new(), b("1"), 1, 1).unwrap();
    y.update(sy(), &CausalContext::new(), b("2"), 1, 1).unwrap();
    x.merge(&y);
    assert_eq!(x.len(), 2);
}

#[test]
fn compare_cases() {
    let a = vv(&[(sx(), 2), (sy(), 1)]);
    assert_eq!(a.compare(&a.clone()), Causality::Equal);
    assert_eq!(a.compare(&vv(&[(sx(), 1)])), Causality::Descends);
    assert_eq!(
        a.compare(&vv(&[(sx(), 2), (sy(), 1), (sz(), 1)])),
        Causality::Dominated
    );
    assert_eq!(a.compare(&vv(&[(sx(), 3)])), Causality::Concurrent);
    assert_eq!(
        VersionVector::new().compare(&VersionVector::new()),
        Causality::Equal
    );
    assert!(a.covers(Dot::new(sx(), 2)) && !a.covers(Dot::new(sx(), 3)));
    assert!(!a.covers(Dot::new(sz(), 1)));
}

#[test]
fn actor_ids_are_stable_hashes_of_node_ids() {
    assert_eq!(
        ActorId::from_node_id("dc1-n1"),
        ActorId::from_node_id("dc1-n1")
    );
    assert_ne!(
        ActorId::from_node_id("dc1-n1"),
        ActorId::from_node_id("dc1-n2")
    );
    assert_eq!(
        ActorId::from_node_id("a").0,
        xxhash_rust::xxh3::xxh3_64(b"a")
    );
}

/// Issue 9, defect 1: Y blind-puts y1 via A, X blind-puts x1 via A (two
/// siblings), X writes x2 with the context its put returned. Only x1 may go:
/// y1 was acknowledged and X never saw it. (The write's context used to be
/// A's whole clock, which covers (A, 1) too, and y1 was dropped.)
#[test]
fn a_write_context_covers_only_the_clients_own_write() {
    let mut a = SiblingSet::new();
    let blind = CausalContext::new();
    let y1 = a.update(sx(), &blind, b("y1"), 1, CAP).unwrap();
    let x1 = a.update(sx(), &blind, b("x1"), 2, CAP).unwrap();
    assert_eq!(vals(&a), ["x1", "y1"]);
    let x_ctx = blind.after_write(x1, &a.clock);
    assert!(x_ctx.covers(x1));
    assert!(!x_ctx.covers(y1), "X never saw y1");
    let x2 = a.update(sx(), &x_ctx, b("x2"), 3, CAP).unwrap();
    assert_eq!(vals(&a), ["x2", "y1"]);
    // Chained: x3 with x2's context replaces x2 only; the context stays small.
    let x2_ctx = x_ctx.after_write(x2, &a.clock);
    assert!(!x2_ctx.covers(y1));
    a.update(sx(), &x2_ctx, b("x3"), 4, CAP).unwrap();
    assert_eq!(vals(&a), ["x3", "y1"]);
    // A reader sees both; writing back with the read's context resolves both.
    let read = a.context();
    a.update(sy(), &read, b("z"), 5, CAP).unwrap();
    assert_eq!(vals(&a), ["z"]);
}

#[test]
fn a_write_context_folds_into_the_past_when_there_is_no_gap() {
    let mut a = SiblingSet::new();
    let d1 = a
        .update(sx(), &CausalContext::new(), b("1"), 1, CAP)
        .unwrap();
    let c1 = CausalContext::new().after_write(d1, &a.clock);
    assert_eq!(c1.past(), &vv(&[(sx(), 1)]));
    assert!(c1.dots().is_empty());
    let d2 = a.update(sx(), &c1, b("2"), 2, CAP).unwrap();
    let c2 = c1.after_write(d2, &a.clock);
    assert_eq!(c2.past(), &vv(&[(sx(), 2)]));
    assert!(c2.dots().is_empty());
}

/// Issue 9, defect 5: a context naming a write this replica never made (a
/// forged counter up to u64::MAX) is refused before anything changes; it
/// used to overflow the next dot.
#[test]
fn a_context_ahead_of_the_replicas_own_counter_is_refused() {
    let mut a = SiblingSet::new();
    a.update(sx(), &CausalContext::new(), b("1"), 1, CAP)
        .unwrap();
    let before = a.clone();
    for claimed in [2, 1 << 40, u64::MAX] {
        let forged = CausalContext::from_past(vv(&[(sx(), claimed)]));
        let err = a.update(sx(), &forged, b("x"), 2, CAP).unwrap_err();
        assert!(
            matches!(err, SiblingError::ContextAhead { claimed: c, minted: 1, .. } if c == claimed)
        );
        let exact = CausalContext::from_parts(VersionVector::new(), [Dot::new(sx(), claimed)]);
        assert!(a.update(sx(), &exact, b("x"), 2, CAP).is_err());
        assert_eq!(a, before);
    }
}

/// Review: a replica never mints a counter that a context could not carry
/// back (a context above MAX_CONTEXT_COUNTER is refused at decode).
#[test]
fn counters_stop_at_the_context_bound() {
    let mut a = SiblingSet::new();
    a.clock
        .advance_to(sx(), crate::version::MAX_CONTEXT_COUNTER);
    let err = a
        .update(sx(), &CausalContext::new(), b("x"), 1, CAP)
        .unwrap_err();
    assert!(matches!(err, SiblingError::CounterExhausted { .. }));
}
