//! Tests of the install guard (`guard.rs`, issue 11, review-layout29b
//! High, review-layout30 H1, H2, M1): three voters {A, N, F} =
//! dc1-n1..n3 on v2. L (v3) was accepted by A and N at round 1 (chosen),
//! A installed it with its proof, N missed the install, F holds a fork of
//! v3 (and, for H2, a fork v4 on it). F's changes must not be chosen nor
//! its fork installed at N or A; A's changes must go through (no wedge);
//! a layout chosen above what N accepted is installed at N with its proof.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::cas::{self, CasError};
use super::cas_testing::{accept_in, acceptor, three_nodes, with_keyspace, Knowing, ScriptedNet};
use super::lineage::Lineage;
use super::*;
use crate::layout::consensus::Ballot;

/// v2, the chosen v3 (L) and the fork of v3.
fn layouts() -> (Layout, Layout, Layout) {
    let v2 = with_keyspace(&three_nodes(), "a");
    let (chosen, fork) = (with_keyspace(&v2, "b"), with_keyspace(&v2, "fork"));
    (v2, chosen, fork)
}

/// The proof that a layout built on `prev` was chosen at `round` by `by`.
fn proof(prev: &Layout, round: u64, by: &str) -> Lineage {
    Lineage {
        prev: Some(prev.digest()),
        chosen_at: Some(Ballot {
            round,
            node: by.to_string(),
        }),
    }
}

/// {A, N, F} of the scenario: A and N accepted L at round 1, A installed
/// it with its proof; N on v2; F on the fork (no proof: never chosen).
fn scenario() -> [Cluster; 3] {
    let (v2, chosen, fork) = layouts();
    let v1 = three_nodes();
    let a = acceptor("dc1-n1", &[&v1, &v2]);
    let n = acceptor("dc1-n2", &[&v1, &v2]);
    let f = acceptor("dc1-n3", &[&v1, &v2, &fork]);
    for node in [&a, &n] {
        accept_in(node, &v2, &chosen, 1, "dc1-n1/p");
    }
    let lineage = proof(&v2, 1, "dc1-n1/p");
    (a.install_from(chosen, lineage, Source::Chosen)).expect("A installs the chosen L");
    [a, n, f]
}

/// `nodes` by id, for a scripted network.
fn net(nodes: &[&Cluster]) -> ScriptedNet {
    let nodes: BTreeMap<String, Cluster> = (nodes.iter())
        .map(|c| (c.me().to_string(), (*c).clone()))
        .collect();
    ScriptedNet {
        nodes,
        catch_up: None,
    }
}

fn refused(got: Result<Installed, ViewError>, reason: &str) {
    match got {
        Err(ViewError::Unbacked { reason: r, .. }) if r == reason => {}
        got => panic!("refused as {reason}, got {got:?}"),
    }
}

/// review-layout29b High, A answering or silent: F proposes v4 on its
/// fork; F pushes the fork to N (BEHIND), whose acceptor accepted L, and
/// N refuses it (one peer's word, no proof): F's change is never chosen,
/// N stays on v2. Fails before the guard, by reading: N installed the
/// pushed fork and F with N chose v4 on it.
#[tokio::test(start_paused = true)]
async fn a_fork_pushed_by_its_holder_is_refused_and_its_change_not_chosen() {
    for a_answers in [true, false] {
        let [a, n, f] = scenario();
        let fork = (*f.current().layout).clone();
        let reachable: Vec<&Cluster> = if a_answers {
            vec![&a, &n, &f]
        } else {
            vec![&n, &f]
        };
        let next = with_keyspace(&fork, "c");
        let got = cas::decide(
            &net(&reachable),
            "dc1-n3",
            &fork,
            next,
            Duration::from_secs(10),
        )
        .await;
        let err = got.expect_err("a change built on the fork is not chosen");
        assert!(matches!(err, CasError::Behind { .. }), "{err}");
        assert_eq!(n.current().version(), 2, "N did not take the fork");
    }
}

/// review-layout30 H1: in the same scenario, A (holding the chosen L)
/// proposes v4: N answers BEHIND, F WRONG_BASE; A pushes L with its proof
/// to N, which accepted L: installed; the retry is chosen by A and N.
/// Fails on 7ed973d, by reading: its "most answers hold the base" gate
/// (1 of 2) never pushed L, and every retry ended BEHIND.
#[tokio::test]
async fn the_chosen_layouts_holder_gets_its_change_chosen_with_a_fork_in_sight() {
    let [a, n, f] = scenario();
    let chosen = (*a.current().layout).clone();
    a.set_net(Arc::new(net(&[&n, &f])));
    let next = with_keyspace(&chosen, "c");
    a.propose(next.clone()).await.expect("v4 chosen by A and N");
    assert_eq!(*a.current().layout, next);
    assert_eq!(*n.current().layout, chosen, "N was pushed L");
}

/// The wedge the guard must not have (review-layout30 M1): N accepted X
/// at round 1; Y was chosen at round 2 by A and F, A installed it with
/// its proof; F is dead. One peer's word for Y (no proof, or a proof
/// below N's ballot, or on another base) is refused at N; A's push of Y
/// with its proof is installed, and `removenode F` (A and N) is chosen.
/// Fails on 7ed973d, by reading: N refused every push of Y for good.
#[tokio::test]
async fn a_layout_chosen_above_our_ballot_is_installed_with_its_proof() {
    let (v2, y, x) = layouts();
    let v1 = three_nodes();
    let a = acceptor("dc1-n1", &[&v1, &v2]);
    let n = acceptor("dc1-n2", &[&v1, &v2]);
    accept_in(&n, &v2, &x, 1, "dc1-n2/p");
    accept_in(&a, &v2, &y, 2, "dc1-n1/p");
    (a.install_from(y.clone(), proof(&v2, 2, "dc1-n1/p"), Source::Chosen)).expect("A installs Y");
    refused(n.install(y.clone()), "accepted_other");
    let below = proof(&v2, 1, "dc1-n1/p");
    refused(
        n.install_from(y.clone(), below, Source::Peer),
        "accepted_other",
    );
    let elsewhere = proof(&x, 3, "dc1-n1/p");
    refused(
        n.install_from(y.clone(), elsewhere, Source::Peer),
        "accepted_other",
    );
    assert_eq!(n.current().version(), 2);
    a.set_net(Arc::new(net(&[&n])));
    let remove = y.begin_remove("dc1-n3").expect("F can be removed");
    a.propose(remove.clone())
        .await
        .expect("removenode F chosen by A and N");
    assert_eq!(*n.current().layout, y, "N took Y on A's proof");
    assert_eq!(*a.current().layout, remove);
}

/// review-layout30 H2: F's fork side has v4 on its fork of v3. Pushed to
/// A (on L), it is refused as built on another v3; pushed to N (v2, L
/// accepted in slot 3), as skipping the slot N accepted in, with or
/// without its lineage; F's v5 on it is never chosen (F pushes v4 with
/// its lineage to A and N, BEHIND). Fails before, by reading: N and A
/// installed it (later versions were not checked).
#[tokio::test(start_paused = true)]
async fn a_fork_two_versions_deep_is_refused() {
    let [a, n, f] = scenario();
    let fork = (*f.current().layout).clone();
    let fork4 = with_keyspace(&fork, "d");
    (f.install_from(fork4.clone(), Lineage::on(fork.digest()), Source::Peer)).expect("F's v4");
    let lineage = Lineage::on(fork.digest());
    refused(
        a.install_from(fork4.clone(), lineage.clone(), Source::Peer),
        "wrong_prev",
    );
    refused(
        n.install_from(fork4.clone(), lineage, Source::Peer),
        "skips_accepted",
    );
    refused(n.install(fork4.clone()), "skips_accepted");
    let next = with_keyspace(&fork4, "e");
    let nodes = Knowing(net(&[&a, &n, &f]), Lineage::on(fork.digest()));
    let got = cas::decide(&nodes, "dc1-n3", &fork4, next, Duration::from_secs(10)).await;
    let err = got.expect_err("a change built on the fork is not chosen");
    assert!(matches!(err, CasError::Behind { .. }), "{err}");
    assert_eq!(a.current().version(), 3, "A stays on L");
    assert_eq!(n.current().version(), 2, "N did not take the fork");
}

/// The converse of H2: L's own v4 (built on L) is installed at A on one
/// peer's word; at N, which skips v3, only with its proof.
#[test]
fn a_layout_built_on_ours_is_installed_and_a_skip_with_proof_too() {
    let [a, n, _] = scenario();
    let chosen = (*a.current().layout).clone();
    let v4 = with_keyspace(&chosen, "c");
    (a.install_from(v4.clone(), Lineage::on(chosen.digest()), Source::Peer)).expect("on L");
    assert_eq!(*a.current().layout, v4);
    refused(n.install(v4.clone()), "skips_accepted");
    let proven = proof(&chosen, 1, "dc1-n2/q");
    (n.install_from(v4.clone(), proven, Source::Peer)).expect("chosen, with its proof");
    assert_eq!(*n.current().layout, v4);
    assert_eq!(
        n.lineage_of(&v4).chosen_at.map(|b| b.round),
        Some(1),
        "kept"
    );
}
