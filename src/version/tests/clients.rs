//! Property tests with clients that keep the context of their own last write
//! and write again with it, as the bench and every read-modify-write loop
//! do (issue 9, defect 1), besides reading first or writing blind.
//!
//! Each client knows exactly which dots it was shown (`seen`): a read shows
//! every dot the read state's clock covers, a write adds its own dot to what
//! its context showed. Each state knows which writes it has incorporated
//! (made there, or merged in). The safety oracle: an incorporated write that
//! is no longer among the state's siblings was overwritten by an
//! incorporated write whose client had seen it. The exact oracle: it is a
//! sibling iff no incorporated write both had it in its context and had it
//! covered at its replica once made. (A clock alone does not say what was
//! incorporated: a write context's dot joins the clock of a replica that
//! has not received that write yet.)

use std::collections::BTreeSet;

use bytes::Bytes;
use proptest::prelude::*;

use crate::version::{ActorId, CausalContext, Dot, SiblingSet, VersionVector};

#[derive(Clone, Debug)]
enum Op {
    Read {
        client: usize,
        replica: usize,
    },
    Write {
        client: usize,
        replica: usize,
        reuse: bool,
        delete: bool,
    },
    Sync {
        from: usize,
        to: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (0..3usize, 0..3usize).prop_map(|(client, replica)| Op::Read { client, replica }),
        3 => (0..3usize, 0..3usize, prop::bool::weighted(0.7), prop::bool::weighted(0.15))
            .prop_map(|(client, replica, reuse, delete)| Op::Write { client, replica, reuse, delete }),
        1 => (0..3usize, 0..3usize).prop_map(|(from, to)| Op::Sync { from, to }),
    ]
}

#[derive(Clone, Default)]
struct Client {
    ctx: CausalContext,
    seen: BTreeSet<Dot>,
}

struct Write {
    dot: Dot,
    ctx: CausalContext,
    /// The dots the writing client had been shown when it wrote.
    seen: BTreeSet<Dot>,
    /// The coordinating replica's clock after the write.
    clock_after: VersionVector,
    value: Option<Bytes>,
}

fn actor(i: usize) -> ActorId {
    ActorId::from_node_id(&format!("replica-{i}"))
}

fn covered_dots(vv: &VersionVector) -> BTreeSet<Dot> {
    vv.iter()
        .flat_map(|(a, n)| (1..=n).map(move |c| Dot::new(a, c)))
        .collect()
}

/// A replica's state and the writes (indices) it has incorporated.
type State = (SiblingSet, BTreeSet<usize>);

fn run(ops: &[Op]) -> (Vec<State>, Vec<Write>) {
    let mut replicas: Vec<State> = vec![Default::default(); 3];
    let mut clients = vec![Client::default(); 3];
    let (mut writes, mut snapshots) = (Vec::new(), Vec::new());
    for (n, op) in ops.iter().enumerate() {
        match *op {
            Op::Read { client, replica } => {
                let state = &replicas[replica].0;
                clients[client] = Client {
                    ctx: state.context(),
                    seen: covered_dots(&state.clock),
                };
            }
            Op::Write {
                client,
                replica,
                reuse,
                delete,
            } => {
                let c = if reuse {
                    clients[client].clone()
                } else {
                    Client::default()
                };
                let value = (!delete).then(|| Bytes::from(format!("w{n}")));
                let (s, known) = &mut replicas[replica];
                known.insert(writes.len());
                let dot = s
                    .update(actor(replica), &c.ctx, value.clone(), n as u64, 64)
                    .unwrap();
                let ctx = c.ctx.after_write(dot, &s.clock);
                // The context must survive the trip through the client.
                let decoded = CausalContext::decode_context(&ctx.encode_context()).unwrap();
                assert_eq!(decoded, ctx);
                let mut seen = c.seen.clone();
                seen.insert(dot);
                assert!(
                    covered_by(&ctx).all(|d| seen.contains(&d) || !was_written(&writes, d, dot))
                );
                writes.push(Write {
                    dot,
                    ctx: c.ctx,
                    seen: c.seen,
                    clock_after: s.clock.clone(),
                    value,
                });
                clients[client] = Client { ctx, seen };
            }
            Op::Sync { from, to } => {
                let src = replicas[from].clone();
                replicas[to] = merged(&replicas[to], &src);
            }
        }
        if n % 5 == 2 {
            snapshots.push(replicas[n % 3].clone());
        }
    }
    replicas.extend(snapshots);
    (replicas, writes)
}

/// Every dot a context covers among those that exist in a test (counters
/// stay small).
fn covered_by(ctx: &CausalContext) -> impl Iterator<Item = Dot> + '_ {
    covered_dots(ctx.past())
        .into_iter()
        .chain(ctx.dots().iter().copied())
}

fn was_written(writes: &[Write], d: Dot, now: Dot) -> bool {
    d == now || writes.iter().any(|w| w.dot == d)
}

fn check((s, known): &State, writes: &[Write]) {
    let incorporated = || known.iter().map(|&i| &writes[i]);
    for w in incorporated() {
        let found = s.siblings.iter().find(|x| x.dot == w.dot);
        assert!(s.clock.covers(w.dot));
        if found.is_none() {
            assert!(
                incorporated().any(|o| o.seen.contains(&w.dot)),
                "write {} was dropped by writes whose clients never saw it: {s:?}",
                w.dot
            );
        }
        let dropped = incorporated().any(|o| o.ctx.covers(w.dot) && o.clock_after.covers(w.dot));
        assert_eq!(found.is_some(), !dropped, "dot {} in {s:?}", w.dot);
        if let Some(x) = found {
            assert_eq!(x.value, w.value);
        }
    }
    for x in &s.siblings {
        assert!(
            incorporated().any(|w| w.dot == x.dot),
            "sibling {} from nowhere",
            x.dot
        );
    }
}

fn merged(a: &State, b: &State) -> State {
    let mut m = a.clone();
    m.0.merge(&b.0);
    m.1.extend(b.1.iter().copied());
    m
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn reusing_write_contexts_never_drops_an_unseen_write(
        ops in prop::collection::vec(op(), 1..60),
    ) {
        let (states, writes) = run(&ops);
        for a in &states {
            check(a, &writes);
            for b in &states {
                check(&merged(a, b), &writes);
            }
        }
    }
}
