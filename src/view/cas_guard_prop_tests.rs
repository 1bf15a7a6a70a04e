//! A property of the install guard (`guard.rs`, issue 11, review-layout30
//! H1, M1, L1) over random acceptor histories of three voters {A, N, F}
//! on v2: L (v3) chosen at round r by a random pair Q, the third (T)
//! accepted nothing, another v3 (X) at a lower round, or holds a fork of
//! v3; some of Q installed L with its proof; one node may be dead; random
//! pushes between live nodes (one peer's word, with the pusher's
//! lineage). Safety: no node but the fork's holder ever holds a v3 other
//! than L. Liveness: a live member of Q proposes v4 on L and it is chosen
//! whenever a quorum is alive and T holds no fork (a fork holder answers
//! WRONG_BASE: only a quorum holding L can choose).

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;

use super::cas;
use super::cas_testing::{accept_in, acceptor, three_nodes, with_keyspace, Knowing, ScriptedNet};
use super::lineage::Lineage;
use super::*;
use crate::layout::consensus::Ballot;

const IDS: [&str; 3] = ["dc1-n1", "dc1-n2", "dc1-n3"];

/// One random history (see the module doc).
#[derive(Debug, Clone)]
struct History {
    /// The node not in Q.
    third: usize,
    /// The round L was chosen at (2..=4).
    round: u64,
    /// What T did: 0 nothing, 1 accepted X below `round`, 2 holds a fork.
    t_did: u8,
    /// Whether the second member of Q installed L (the first did).
    second_installed: bool,
    /// The dead node, if any (never the first member of Q, the proposer).
    dead: Option<usize>,
    /// Pushes (from, to) between live nodes before the proposal.
    pushes: Vec<(usize, usize)>,
}

fn history() -> impl Strategy<Value = History> {
    let pushes = proptest::collection::vec((0usize..3, 0usize..3), 0..8);
    (0usize..3, 2u64..5, 0u8..3, any::<bool>(), 0usize..4, pushes).prop_map(
        |(third, round, t_did, second_installed, dead, pushes)| {
            let first = (third + 1) % 3;
            History {
                third,
                round,
                t_did,
                second_installed,
                dead: (dead < 3 && dead != first).then_some(dead),
                pushes,
            }
        },
    )
}

/// Runs `h`: the nodes, whether v4 was chosen, and the fork.
fn run(h: &History) -> (Vec<Cluster>, bool, Layout) {
    let v2 = with_keyspace(&three_nodes(), "a");
    let (chosen, other) = (with_keyspace(&v2, "b"), with_keyspace(&v2, "x"));
    let nodes: Vec<Cluster> = (IDS.iter())
        .map(|id| acceptor(id, &[&three_nodes(), &v2]))
        .collect();
    let (first, second) = ((h.third + 1) % 3, (h.third + 2) % 3);
    let by = format!("{}/c", IDS[first]);
    let proof = Lineage {
        prev: Some(v2.digest()),
        chosen_at: Some(Ballot {
            round: h.round,
            node: by.clone(),
        }),
    };
    for q in [first, second] {
        accept_in(&nodes[q], &v2, &chosen, h.round, &by);
    }
    let installers = if h.second_installed {
        vec![first, second]
    } else {
        vec![first]
    };
    for q in installers {
        (nodes[q].install_from(chosen.clone(), proof.clone(), Source::Chosen)).expect("L");
    }
    let t = &nodes[h.third];
    match h.t_did {
        1 => accept_in(t, &v2, &other, h.round - 1, &format!("{}/x", IDS[h.third])),
        2 => {
            t.install(other.clone()).expect("T holds the fork");
        }
        _ => {}
    }
    let alive = |i: usize| h.dead != Some(i);
    for &(from, to) in &h.pushes {
        if from != to && alive(from) && alive(to) {
            let (layout, lineage) = nodes[from].current_with_lineage();
            let _ = nodes[to].install_from((*layout).clone(), lineage, Source::Peer);
        }
    }
    let reachable: BTreeMap<String, Cluster> = (0..3)
        .filter(|i| alive(*i))
        .map(|i| (IDS[i].to_string(), nodes[i].clone()))
        .collect();
    let net = Knowing(
        ScriptedNet {
            nodes: reachable,
            catch_up: None,
        },
        nodes[first].lineage_of(&chosen),
    );
    let next = with_keyspace(&chosen, "c");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a runtime");
    let decided = rt.block_on(cas::decide(
        &net,
        IDS[first],
        &chosen,
        next,
        Duration::from_secs(10),
    ));
    (nodes, decided.is_ok_and(|d| d.ours), other)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn no_fork_spreads_and_the_chosen_layouts_holder_gets_its_change_chosen(h in history()) {
        let (nodes, chosen, other) = run(&h);
        for (i, node) in nodes.iter().enumerate() {
            let held = node.current().layout.clone();
            if held.version == 3 && *held == other {
                prop_assert!(i == h.third && h.t_did == 2, "{} took X or the fork: {h:?}", IDS[i]);
            }
        }
        if h.t_did != 2 || h.dead.is_none() {
            prop_assert!(chosen, "v4 not chosen: {h:?}");
        }
    }
}
