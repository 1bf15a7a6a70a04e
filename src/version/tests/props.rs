//! Property tests over random histories of writes (at one of three replicas,
//! with a context some client read earlier, or none) and replications, so
//! every generated state satisfies the invariants real states do.
//!
//! The oracle: a written dot `d` is a sibling of state `S` iff `S.clock`
//! covers `d` and `S` has not seen a later write whose context covered `d`.
//! This is "no acknowledged concurrent write disappears" made exact.

use bytes::Bytes;
use proptest::prelude::*;

use crate::version::{ActorId, CausalContext, Causality, Dot, SiblingSet, VersionVector};

#[derive(Clone, Debug)]
enum Op {
    /// A client reads `replica` and remembers the context.
    Read { replica: usize },
    /// A write at `replica` with remembered context `ctx` (modulo the pool;
    /// the pool starts with the empty context), or a delete.
    Write {
        replica: usize,
        ctx: usize,
        len: usize,
        delete: bool,
    },
    /// `to` merges the full state of `from`.
    Sync { from: usize, to: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..3usize).prop_map(|replica| Op::Read { replica }),
        (0..3usize, 0..16usize, 0..40usize, prop::bool::weighted(0.2)).prop_map(
            |(replica, ctx, len, delete)| Op::Write {
                replica,
                ctx,
                len,
                delete
            }
        ),
        (0..3usize, 0..3usize).prop_map(|(from, to)| Op::Sync { from, to }),
    ]
}

struct Run {
    /// Final replica states, then snapshots taken along the way.
    states: Vec<SiblingSet>,
    /// Every accepted write: its dot, context and value.
    writes: Vec<(Dot, CausalContext, Option<Bytes>)>,
}

fn actor(i: usize) -> ActorId {
    ActorId::from_node_id(&format!("node-{i}"))
}

fn run(ops: &[Op], cap: usize) -> Run {
    let mut replicas = vec![SiblingSet::new(); 3];
    let mut pool = vec![CausalContext::new()];
    let mut snapshots = Vec::new();
    let mut writes = Vec::new();
    for (n, op) in ops.iter().enumerate() {
        match *op {
            Op::Read { replica } => pool.push(replicas[replica].context().clone()),
            Op::Write {
                replica,
                ctx,
                len,
                delete,
            } => {
                let ctx = pool[ctx % pool.len()].clone();
                let value = (!delete).then(|| Bytes::from(vec![n as u8; len]));
                let before = replicas[replica].clone();
                let s = &mut replicas[replica];
                match s.update(actor(replica), &ctx, value.clone(), n as u64, cap) {
                    Ok(dot) => writes.push((dot, ctx, value)),
                    Err(_) => assert_eq!(*s, before, "a rejected write changed the state"),
                }
            }
            Op::Sync { from, to } => {
                let src = replicas[from].clone();
                replicas[to].merge(&src);
            }
        }
        if n % 7 == 3 {
            snapshots.push(replicas[n % 3].clone());
        }
    }
    replicas.extend(snapshots);
    Run {
        states: replicas,
        writes,
    }
}

fn check_oracle(s: &SiblingSet, writes: &[(Dot, CausalContext, Option<Bytes>)]) {
    for (d, _, value) in writes {
        let overwritten = writes
            .iter()
            .any(|(w, ctx, _)| s.clock.covers(*w) && ctx.covers(*d));
        let expected = s.clock.covers(*d) && !overwritten;
        let found = s.siblings.iter().find(|x| x.dot == *d);
        assert_eq!(found.is_some(), expected, "dot {d} in {s:?}");
        if let Some(x) = found {
            assert_eq!(&x.value, value);
        }
    }
    assert!(
        s.siblings.windows(2).all(|w| w[0].dot < w[1].dot),
        "siblings unsorted"
    );
    assert!(
        s.siblings.iter().all(|x| s.clock.covers(x.dot)),
        "sibling not covered"
    );
}

fn merged(a: &SiblingSet, b: &SiblingSet) -> SiblingSet {
    let mut m = a.clone();
    m.merge(b);
    m
}

fn histories() -> impl Strategy<Value = (Vec<Op>, usize)> {
    (prop::collection::vec(op(), 1..60), 2..10usize)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_state_matches_the_oracle((ops, cap) in histories()) {
        let r = run(&ops, cap);
        for s in &r.states {
            check_oracle(s, &r.writes);
        }
        for a in &r.states {
            for b in &r.states {
                check_oracle(&merged(a, b), &r.writes);
            }
        }
    }

    #[test]
    fn merge_is_commutative_associative_idempotent(
        (ops, cap) in histories(), i in 0..16usize, j in 0..16usize, k in 0..16usize,
    ) {
        let r = run(&ops, cap);
        let n = r.states.len();
        let (a, b, c) = (&r.states[i % n], &r.states[j % n], &r.states[k % n]);
        prop_assert_eq!(merged(a, b), merged(b, a));
        prop_assert_eq!(merged(&merged(a, b), c), merged(a, &merged(b, c)));
        prop_assert_eq!(&merged(a, a), a);
    }

    #[test]
    fn all_merge_orders_converge((ops, cap) in histories()) {
        let r = run(&ops, cap);
        let [x, y, z] = [&r.states[0], &r.states[1], &r.states[2]];
        let orders = [[x, y, z], [x, z, y], [y, x, z], [y, z, x], [z, x, y], [z, y, x]];
        let all: Vec<SiblingSet> =
            orders.iter().map(|o| merged(&merged(o[0], o[1]), o[2])).collect();
        for m in &all {
            prop_assert_eq!(m, &all[0]);
        }
        check_oracle(&all[0], &r.writes);
    }

    #[test]
    fn compare_is_consistent_with_merge(
        (ops, cap) in histories(), i in 0..16usize, j in 0..16usize,
    ) {
        let r = run(&ops, cap);
        let n = r.states.len();
        let (a, b) = (&r.states[i % n], &r.states[j % n]);
        let m = merged(a, b);
        prop_assert!(m.clock.descends_or_equals(&a.clock));
        prop_assert!(m.clock.descends_or_equals(&b.clock));
        prop_assert_eq!(a.clock.compare(&b.clock), b.clock.compare(&a.clock).reverse());
        // If a's clock descends b's, merging b into a changes nothing.
        if a.clock.descends_or_equals(&b.clock) {
            prop_assert_eq!(&m, a);
        }
        if a.clock.compare(&b.clock) == Causality::Equal {
            prop_assert_eq!(a, b);
        }
    }

    #[test]
    fn codec_round_trips((ops, cap) in histories()) {
        let r = run(&ops, cap);
        for s in &r.states {
            let mut buf = Vec::new();
            s.encode(&mut buf);
            prop_assert_eq!(buf.len(), s.encoded_len());
            prop_assert_eq!(&SiblingSet::decode(&buf).unwrap(), s);
            let ctx = s.context().encode_context();
            prop_assert_eq!(&VersionVector::decode_context(&ctx).unwrap(), &s.clock);
            prop_assert_eq!(CausalContext::decode_context(&ctx).unwrap(), s.context());
        }
    }

    #[test]
    fn decoding_random_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = SiblingSet::decode(&bytes);
        let _ = VersionVector::decode_context(&bytes);
        let mut versioned = vec![1u8];
        versioned.extend_from_slice(&bytes);
        let _ = SiblingSet::decode(&versioned);
        let _ = VersionVector::decode_context(&versioned);
        let _ = CausalContext::decode_context(&bytes);
        let _ = CausalContext::decode_context(&versioned);
        versioned[0] = 2;
        let _ = CausalContext::decode_context(&versioned);
    }

    #[test]
    fn decoding_damaged_records_never_panics(
        (ops, cap) in histories(), at in any::<usize>(), byte in any::<u8>(), cut in any::<usize>(),
    ) {
        let r = run(&ops, cap);
        let mut buf = Vec::new();
        r.states[0].encode(&mut buf);
        let mut flipped = buf.clone();
        let i = at % flipped.len();
        flipped[i] = byte;
        if let Ok(s) = SiblingSet::decode(&flipped) {
            // Whatever decodes is a valid state: it re-encodes and merges.
            let mut again = Vec::new();
            s.encode(&mut again);
            prop_assert_eq!(SiblingSet::decode(&again).unwrap(), s.clone());
            let _ = merged(&s, &r.states[1]);
        }
        let _ = SiblingSet::decode(&buf[..cut % (buf.len() + 1)]);
    }
}
