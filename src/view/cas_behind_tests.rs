//! Tests of the layout CAS driver (`cas::decide`, `learn.rs`) when
//! acceptors answer BEHIND or `Decided` (review-layout28 M1, M2): three
//! in-process acceptors reached through a scripted network (one may be
//! unreachable, one may catch up after a while), under paused time; and a
//! property of `learn` over random answers of six acceptors.

use std::collections::BTreeSet;
use std::time::Duration;

use proptest::prelude::*;

use super::cas::{self, CasError};
use super::cas_testing::{acceptor, three_nodes, with_keyspace, ScriptedNet as Net};
use super::learn;
use super::*;
use crate::layout::consensus::{Ballot, Outcome, Proposer, Reply, Step};
use crate::topology::Topology;

/// review-layout29 H1, the dev cluster (3 + 3): v3 is chosen, dc1-n2
/// holds a fork of v3, dc2-n3 is dead and dc1-n1 missed the push (v2).
/// v4 needs 4 of the 6 on base v3: only 3 hold it, dc1-n1 answers BEHIND
/// (the fork holder WRONG_BASE), so the proposer pushes its base v3 to
/// dc1-n1 (the learner catch-up) and the retry is chosen. Before: BEHIND
/// on every retry until the deadline, and dc1-n1 stayed at v2 for good.
#[tokio::test(start_paused = true)]
async fn a_behind_acceptor_is_pushed_the_base_so_a_fork_in_sight_does_not_wedge_changes() {
    let v1 = Layout::seed(&Topology::dev());
    let v2 = with_keyspace(&v1, "a");
    let (v3, fork) = (with_keyspace(&v2, "b"), with_keyspace(&v2, "fork"));
    let v4 = with_keyspace(&v3, "c");
    let nodes = [
        ("dc1-n1", acceptor("dc1-n1", &[&v1, &v2])),
        ("dc1-n2", acceptor("dc1-n2", &[&v1, &v2, &fork])),
        ("dc1-n3", acceptor("dc1-n3", &[&v1, &v2, &v3])),
        ("dc2-n1", acceptor("dc2-n1", &[&v1, &v2, &v3])),
        ("dc2-n2", acceptor("dc2-n2", &[&v1, &v2, &v3])),
    ];
    let net = Net {
        nodes: (nodes.into_iter())
            .map(|(id, c)| (id.to_string(), c))
            .collect(),
        catch_up: None,
    };
    let decided = cas::decide(&net, "dc1-n3", &v3, v4.clone(), Duration::from_secs(10))
        .await
        .expect("v4 chosen once dc1-n1 was pushed v3");
    let got = (decided.layout, decided.ours, decided.source);
    assert_eq!(got, (v4, true, Source::Chosen));
    assert_eq!(*net.nodes["dc1-n1"].current().layout, v3, "dc1-n1 on v3");
    assert_eq!(
        *net.nodes["dc1-n2"].current().layout,
        fork,
        "a fork is not overwritten"
    );
}

/// review-layout28 M2: one acceptor BEHIND (it catches up 100 ms later)
/// and one unreachable: the proposer retries until the behind one caught
/// up, and the change is chosen. Before, the calls running out ended the
/// attempt at once as `NoMajority` ("2 answered (no answer from dc1-n3)").
#[tokio::test(start_paused = true)]
async fn a_behind_acceptor_that_catches_up_lets_the_change_through_with_one_silent() {
    let v1 = three_nodes();
    let v2 = with_keyspace(&v1, "a");
    let v3 = with_keyspace(&v2, "b");
    let nodes = [
        ("dc1-n1".to_string(), acceptor("dc1-n1", &[&v1, &v2])),
        ("dc1-n2".to_string(), acceptor("dc1-n2", &[&v1])),
    ];
    let at = tokio::time::Instant::now() + Duration::from_millis(100);
    let net = Net {
        nodes: nodes.into_iter().collect(),
        catch_up: Some(("dc1-n2".to_string(), at, v2.clone())),
    };
    let decided = cas::decide(&net, "dc1-n1", &v2, v3.clone(), Duration::from_secs(10))
        .await
        .expect("chosen once dc1-n2 caught up");
    let got = (decided.layout, decided.ours, decided.source);
    assert_eq!(got, (v3, true, Source::Chosen));
}

/// review-layout28 M1: [Behind, Decided(FORK), Promise]: the one `Decided`
/// holder does not block a quorum by itself (the BEHIND answer makes up
/// the rest), so its fork is not learned: `Undecided`. Before, `learn`
/// took the lone answer and the node would install the fork.
#[tokio::test(start_paused = true)]
async fn one_decided_answer_beside_a_behind_one_is_not_learned() {
    let v1 = three_nodes();
    let v2 = with_keyspace(&v1, "a");
    let (v3, fork) = (with_keyspace(&v2, "b"), with_keyspace(&v2, "fork"));
    let nodes = [
        ("dc1-n1".to_string(), acceptor("dc1-n1", &[&v1, &v2])),
        ("dc1-n2".to_string(), acceptor("dc1-n2", &[&v1])),
        ("dc1-n3".to_string(), acceptor("dc1-n3", &[&v1, &v2, &fork])),
    ];
    let net = Net {
        nodes: nodes.into_iter().collect(),
        catch_up: None,
    };
    let err = cas::decide(&net, "dc1-n1", &v2, v3, Duration::from_secs(10))
        .await
        .expect_err("the fork is not learned");
    assert!(
        matches!(
            err,
            CasError::Undecided {
                slot: 3,
                answered: 1,
                ..
            }
        ),
        "{err}"
    );
    let refused = ProposeError::Cas(err);
    assert_eq!(refused.status(), 409, "decided elsewhere: re-read (L5)");
}

/// What one acceptor of the six answers in the property below.
#[derive(Clone, Copy, Debug)]
enum Answer {
    Promise,
    Behind,
    Silent,
    Chosen,
    Fork,
}

/// Weighted toward `Decided` answers, so most cases reach `learn`
/// (review-final28 L4: with equal weights few did).
fn answer() -> impl Strategy<Value = Answer> {
    prop_oneof![
        1 => Just(Answer::Promise),
        1 => Just(Answer::Behind),
        1 => Just(Answer::Silent),
        3 => Just(Answer::Chosen),
        2 => Just(Answer::Fork),
    ]
}

/// Six acceptors answer `answers` to proposer "p" of `own` in slot 3:
/// the `Decided` outcome the attempt ends with, if it does so.
fn ended(
    answers: &[Answer],
    own: &Layout,
    chosen: &Layout,
    fork: &Layout,
) -> Option<(Vec<(String, Layout)>, bool)> {
    let v2 = with_keyspace(&Layout::seed(&Topology::dev()), "a");
    let quorum = crate::layout::acceptors::quorum(&v2, own);
    let b = Ballot {
        round: 1,
        node: "p".into(),
    };
    let mut prop = Proposer::with_quorum(3, b.clone(), quorum, own.clone());
    let mut done = None;
    for (id, a) in v2.nodes().map(|(_, _, n)| n.id.clone()).zip(answers) {
        let reply = match a {
            Answer::Promise => Reply::Promise {
                ballot: b.clone(),
                accepted: None,
            },
            Answer::Behind => Reply::Behind { ballot: b.clone() },
            Answer::Silent => continue,
            Answer::Chosen => Reply::Decided {
                value: chosen.clone(),
            },
            Answer::Fork => Reply::Decided {
                value: fork.clone(),
            },
        };
        if let Step::Done(o) = prop.on_reply(&id, reply) {
            done = Some(o);
            break;
        }
    }
    match done.or_else(|| prop.on_exhausted()) {
        Some(Outcome::Decided { held, blocking }) => Some((held, blocking)),
        _ => None,
    }
}

/// review-layout28 M1, review-final28 L4: whatever six acceptors answer
/// (promises, BEHIND, silence, `Decided` with the chosen layout or a
/// fork), a layout is learned only when its holders alone leave no quorum
/// (3 of 6) or a quorum of its voters holds it (4): never on fewer
/// holders' word; and holders that block a quorum and agree are learned.
/// Most of the 256 cases reach `learn` (counted).
#[test]
fn learn_takes_a_layout_only_from_holders_that_block_a_quorum() {
    use proptest::test_runner::{Config, TestRunner};
    let v2 = with_keyspace(&Layout::seed(&Topology::dev()), "a");
    let (own, chosen, fork) = (
        with_keyspace(&v2, "own"),
        with_keyspace(&v2, "b"),
        with_keyspace(&v2, "fork"),
    );
    let (reached, agreed) = (std::cell::Cell::new(0), std::cell::Cell::new(0));
    let mut runner = TestRunner::new(Config::with_cases(256));
    let strategy = proptest::collection::vec(answer(), 6);
    runner
        .run(&strategy, |answers| {
            let Some((held, blocking)) = ended(&answers, &own, &chosen, &fork) else {
                return Ok(());
            };
            reached.set(reached.get() + 1);
            let learned = learn::learn(3, &own, held.clone(), blocking, false, &Default::default());
            let first = &held[0].1;
            if blocking && held.iter().all(|(_, l)| l == first) {
                agreed.set(agreed.get() + 1);
                let learned = learned
                    .clone()
                    .expect("an agreeing blocking set is learned");
                prop_assert_eq!(&learned.layout, first, "from {:?}", answers);
            }
            let Ok(learned) = learned else {
                return Ok(());
            };
            let holders: BTreeSet<&String> = (held.iter())
                .filter(|(_, l)| *l == learned.layout)
                .map(|(id, _)| id)
                .collect();
            prop_assert!(
                holders.len() >= 3,
                "learned {:?} from {answers:?}",
                learned.layout.keyspaces.keys()
            );
            prop_assert!(!learned.ours);
            Ok(())
        })
        .expect("the property holds");
    let (reached, agreed) = (reached.get(), agreed.get());
    assert!(
        reached >= 128 && agreed >= 16,
        "{reached} of 256 cases reached learn, {agreed} agreeing blocking sets"
    );
}
