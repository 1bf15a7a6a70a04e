//! Tests of the layout CAS driver (`cas::decide`, `learn.rs`) when
//! acceptors answer BEHIND or `Decided` (review-layout28 M1, M2): three
//! in-process acceptors reached through a scripted network (one may be
//! unreachable, one may catch up after a while), under paused time; and a
//! property of `learn` over random answers of six acceptors.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;

use super::cas::{self, AcceptorNet, CallResult, CasError};
use super::learn;
use super::*;
use crate::engine::memory::MemoryEngine;
use crate::engine::{Engine, Limits};
use crate::layout::consensus::{Ballot, Msg, Outcome, Proposer, Reply, Step};
use crate::topology::{NodeInfo, Topology};

fn engine() -> Option<Arc<dyn Engine>> {
    Some(Arc::new(MemoryEngine::new(Limits::default())))
}

/// The dev seed cut down to dc1's three nodes (rf 1).
fn three_nodes() -> Layout {
    let mut l = Layout::seed(&Topology::dev());
    l.datacenters.retain(|d| d.name == "dc1");
    for spec in l.keyspaces.values_mut() {
        spec.replication = [("dc1".to_string(), 1)].into_iter().collect();
    }
    l
}

fn with_keyspace(l: &Layout, name: &str) -> Layout {
    let mut next = l.clone();
    next.version += 1;
    let spec = (next.keyspaces.values().next()).expect("one keyspace");
    next.keyspaces.insert(name.to_string(), spec.clone());
    next
}

/// An acceptor holding `layouts` installed in order.
fn acceptor(id: &str, layouts: &[&Layout]) -> Cluster {
    let c = Cluster::new(layouts[0].clone(), id, engine()).expect("a view");
    for l in &layouts[1..] {
        c.install((*l).clone()).expect("install");
    }
    c
}

/// Acceptors by id (absent: unreachable); `catch_up`: an acceptor that
/// installs a layout once the (paused) clock passed an instant.
struct Net {
    nodes: BTreeMap<String, Cluster>,
    catch_up: Option<(String, tokio::time::Instant, Layout)>,
}

impl AcceptorNet for Net {
    fn call(
        &self,
        to: &NodeInfo,
        msg: Msg<Layout>,
    ) -> Pin<Box<dyn Future<Output = CallResult> + Send>> {
        let Some(node) = self.nodes.get(&to.id) else {
            return Box::pin(async { Err("unreachable".to_string()) });
        };
        if let Some((id, at, layout)) = &self.catch_up {
            if *id == to.id
                && tokio::time::Instant::now() >= *at
                && node.current().layout.version < layout.version
            {
                node.install(layout.clone()).expect("catch up");
            }
        }
        let reply = node.accept(&msg).map_err(|e| e.to_string());
        Box::pin(async move { reply })
    }
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
    assert_eq!(
        decided,
        cas::Decided {
            layout: v3,
            ours: true
        }
    );
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

fn answer() -> impl Strategy<Value = Answer> {
    prop_oneof![
        Just(Answer::Promise),
        Just(Answer::Behind),
        Just(Answer::Silent),
        Just(Answer::Chosen),
        Just(Answer::Fork),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// review-layout28 M1: whatever six acceptors answer (promises, BEHIND,
    /// silence, `Decided` with the chosen layout or a fork), a layout is
    /// learned only when its holders alone leave no quorum (3 of 6) or a
    /// quorum of its voters holds it (4): never on fewer holders' word.
    #[test]
    fn learn_takes_a_layout_only_from_holders_that_block_a_quorum(
        answers in proptest::collection::vec(answer(), 6),
    ) {
        let v1 = Layout::seed(&Topology::dev());
        let v2 = with_keyspace(&v1, "a");
        let (own, chosen, fork) = (with_keyspace(&v2, "own"), with_keyspace(&v2, "b"), with_keyspace(&v2, "fork"));
        let ids: Vec<String> = v1.nodes().map(|(_, _, n)| n.id.clone()).collect();
        let quorum = crate::layout::acceptors::quorum(&v2, &own);
        let b = Ballot { round: 1, node: "p".into() };
        let mut prop = Proposer::with_quorum(3, b.clone(), quorum, own.clone());
        let mut done = None;
        for (id, a) in ids.iter().zip(&answers) {
            let reply = match a {
                Answer::Promise => Reply::Promise { ballot: b.clone(), accepted: None },
                Answer::Behind => Reply::Behind { ballot: b.clone() },
                Answer::Silent => continue,
                Answer::Chosen => Reply::Decided { value: chosen.clone() },
                Answer::Fork => Reply::Decided { value: fork.clone() },
            };
            if let Step::Done(o) = prop.on_reply(id, reply) {
                done = Some(o);
                break;
            }
        }
        let outcome = done.or_else(|| prop.on_exhausted());
        let Some(Outcome::Decided { held, blocking }) = outcome else {
            return Ok(());
        };
        let Ok(learned) = learn::learn(3, &own, held.clone(), blocking, false) else {
            return Ok(());
        };
        let holders: BTreeSet<&String> = (held.iter())
            .filter(|(_, l)| *l == learned.layout)
            .map(|(id, _)| id)
            .collect();
        prop_assert!(holders.len() >= 3, "learned {:?} from {answers:?}", learned.layout.keyspaces.keys());
        prop_assert!(!learned.ours);
    }
}
