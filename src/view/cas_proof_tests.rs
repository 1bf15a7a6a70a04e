//! Tests that the proof of choice is produced by the CAS and carried on
//! every install path that has it (issue 11, review-layout31 H1, M2): a
//! joiner's bootstrap (`cas::propose_adopting`), the catch-up at start
//! (`catch_up`), and `cas::decide` itself. Without the proof, a node that
//! accepted another value of the version refuses the chosen layout on one
//! peer's word, and a quorum holding it can be wedged for good.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::cas;
use super::cas_testing::{accept_in, acceptor, three_nodes, with_keyspace, ScriptedNet};
use super::catch_up::{catch_up, FetchError, Fetched, LayoutSource, WithLineage, CATCH_UP_WITHIN};
use super::lineage::Lineage;
use super::sync::to_message_with;
use super::*;
use crate::layout::consensus::Ballot;
use crate::proto::v1::internode::LayoutMessage;
use crate::topology::{NodeInfo, Topology};

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

/// What a `PushLayout` of `layout` with `lineage` carries to its receiver.
fn over_the_wire(layout: &Layout, lineage: &Lineage) -> Lineage {
    let msg: LayoutMessage = to_message_with(layout, lineage);
    Lineage::from_message(&msg)
}

/// The join variant of the wedge (review-layout31 H1): voters {A, N, F}
/// on v2; N accepted X at round 1; joiner J's change is chosen by A and
/// F (N unreachable), and J pushes it to its seed A. F dies. A's
/// `removenode F` needs N, which takes J on A's proof only. Fails before
/// the fix (seen): `propose_adopting` dropped the proof and A held J
/// without one (so N would refuse every push of it, `accepted_other`, and
/// the removal would end BEHIND).
#[tokio::test]
async fn a_joiners_chosen_layout_keeps_its_proof_so_its_seed_is_not_wedged() {
    let v1 = three_nodes();
    let v2 = with_keyspace(&v1, "a");
    let (j, x) = (with_keyspace(&v2, "joined"), with_keyspace(&v2, "x"));
    let [a, n, f] = ["dc1-n1", "dc1-n2", "dc1-n3"].map(|id| acceptor(id, &[&v1, &v2]));
    accept_in(&n, &v2, &x, 1, "dc1-n2/p");
    let not_mine = |_: &Layout| false;
    let got = cas::propose_adopting(&net(&[&a, &f]), "dc1-new", &v2, j.clone(), &not_mine).await;
    let (chosen, lineage) = got.expect("J chosen by A and F");
    assert_eq!(chosen, j);
    let pushed = over_the_wire(&chosen, &lineage);
    (a.install_from(chosen, pushed, Source::Peer)).expect("the seed takes J");
    assert!(a.lineage_of(&j).chosen_at.is_some(), "A keeps J's proof");
    a.set_net(Arc::new(net(&[&n])));
    let remove = j.begin_remove("dc1-n3").expect("F can be removed");
    a.propose(remove.clone())
        .await
        .expect("removenode F chosen by A and N");
    assert_eq!(*n.current().layout, j, "N took J on A's proof");
    assert_eq!(*a.current().layout, remove);
}

/// Each member answers at once with its layout and lineage.
struct Members(BTreeMap<String, (Layout, Lineage)>);

impl LayoutSource for Members {
    fn layout_of(&self, to: &NodeInfo, _: Duration) -> Fetched<'_> {
        let answer = self.0.get(&to.id).map(|(l, _)| l.clone());
        let silent = no_answer(to);
        Box::pin(async move { answer.ok_or(silent) })
    }

    fn layout_with_lineage(&self, to: &NodeInfo, _: Duration) -> WithLineage<'_> {
        let answer = self.0.get(&to.id).cloned();
        let silent = no_answer(to);
        Box::pin(async move { answer.ok_or(silent) })
    }
}

/// A member that does not answer `to`'s ask.
fn no_answer(to: &NodeInfo) -> FetchError {
    FetchError::Transport(crate::transport::TransportError::Timeout {
        peer: to.id.clone(),
        ms: 0,
    })
}

/// The catch-up scenario on the dev seed (six voters): v2; Y chosen at
/// round 2 by dc1-n3 (with its proof, `proven`) and held by the four
/// others than A (dc1-n1, restarting on v2) and N (dc1-n2, on v2); A and
/// N accepted X at round 1. The members and A, N.
fn restart_after_y(proven: bool) -> (Members, Cluster, Cluster, Layout) {
    let v1 = Layout::seed(&Topology::dev());
    let v2 = with_keyspace(&v1, "a");
    let (y, x) = (with_keyspace(&v2, "y"), with_keyspace(&v2, "x"));
    let [a, n] = ["dc1-n1", "dc1-n2"].map(|id| acceptor(id, &[&v1, &v2]));
    for node in [&a, &n] {
        accept_in(node, &v2, &x, 1, "dc1-n2/p");
    }
    let proof = Lineage {
        prev: Some(v2.digest()),
        chosen_at: proven.then(|| Ballot {
            round: 2,
            node: "dc1-n3/p".to_string(),
        }),
    };
    let mut members: BTreeMap<String, (Layout, Lineage)> = (v1.nodes())
        .map(|(_, _, m)| (m.id.clone(), (y.clone(), proof.clone())))
        .filter(|(id, _)| id != "dc1-n1")
        .collect();
    members.insert("dc1-n2".into(), (v2, Lineage::default()));
    (Members(members), a, n, y)
}

/// The catch-up variant of the wedge (review-layout31 H1): A restarts on
/// v2 and its members hold Y, chosen above what A and N accepted; the
/// catch-up installs Y at A with its proof, so A's push of Y is taken by
/// N (which a quorum with A needs once the holders die). Fails before the
/// fix (seen): the catch-up fetched no lineage and installed on one
/// peer's word, so A itself (which accepted X) refused Y and stayed on
/// v2; had A accepted nothing, it would hold Y without a proof and N
/// would refuse it.
#[tokio::test(start_paused = true)]
async fn the_catch_up_at_start_keeps_the_proof_of_the_layout_it_installs() {
    let (members, a, n, y) = restart_after_y(true);
    catch_up(&a, &members, CATCH_UP_WITHIN).await;
    assert_eq!(*a.current().layout, y, "A caught up");
    let proof = a.lineage_of(&y);
    assert_eq!(proof.chosen_at.map(|b| b.round), Some(2), "with its proof");
    let pushed = over_the_wire(&y, &a.lineage_of(&y));
    (n.install_from(y.clone(), pushed, Source::Peer)).expect("N takes Y on A's proof");
    assert_eq!(*n.current().layout, y);
}

/// review-layout30 L2: without a proof, the catch-up still installs the
/// layout a quorum of its voters holds at a node that accepted another
/// value of its version (as gossip's staging would), and fills in its
/// predecessor. Here the answers of v3 disagree (dc1-n3 holds a fork Z),
/// so the catch-up picks by voters: Y, held by four of six. Fails before
/// the fix, by reading: installed as one peer's word, refused
/// (`accepted_other`: A accepted X), A stayed on v2. (A first version of
/// this test, where all answers of v3 agree, was seen failing before the
/// fix and after it: the catch-up stops once two answers agree, so it
/// never picks by voters there; A waits for gossip's staging.)
#[tokio::test(start_paused = true)]
async fn the_catch_up_installs_what_a_quorum_of_its_voters_holds() {
    let (mut members, a, _, y) = restart_after_y(false);
    let v2 = with_keyspace(&Layout::seed(&Topology::dev()), "a");
    let (z, unknown) = (with_keyspace(&v2, "z"), Lineage::default());
    let on_v2 = Lineage::on(v2.digest());
    members.0.insert("dc1-n2".into(), (y.clone(), on_v2));
    members.0.insert("dc1-n3".into(), (z, unknown));
    catch_up(&a, &members, CATCH_UP_WITHIN).await;
    assert!(*a.current().layout == y, "Y: held by four of six voters");
    assert_eq!(a.lineage_of(&y).prev, Some(v2.digest()), "its predecessor");
}

/// review-layout31 M2: a CAS that sees a quorum accept at its ballot
/// returns that ballot as the proof, with its base as the predecessor;
/// one that learns the slot from a quorum of DECIDED answers makes up no
/// proof of its own (its holders' proof, when they have one, is tested in
/// `cas_holder_proof_tests`; here they hold none). Fails if `cas::chosen`
/// returned an empty lineage (by reading: every other test builds or
/// carries a proof it did not check).
#[tokio::test(start_paused = true)]
async fn the_cas_proves_only_what_it_saw_a_quorum_accept() {
    let v1 = three_nodes();
    let v2 = with_keyspace(&v1, "a");
    let (next, other) = (with_keyspace(&v2, "b"), with_keyspace(&v2, "c"));
    let nodes = ["dc1-n1", "dc1-n2", "dc1-n3"].map(|id| acceptor(id, &[&v1, &v2]));
    let [a, n, f] = &nodes;
    let within = Duration::from_secs(10);
    let got = cas::decide(&net(&[a, n, f]), "dc1-n1", &v2, next.clone(), within).await;
    let decided = got.expect("chosen");
    assert!(decided.ours && decided.layout == next);
    let at = (decided.lineage.chosen_at.clone()).expect("a proof of choice");
    assert!(at.node.starts_with("dc1-n1/"), "its own ballot: {at:?}");
    assert_eq!(decided.lineage.prev, Some(v2.digest()));
    for node in &nodes {
        let no_proof = Lineage::on(v2.digest());
        (node.install_from(next.clone(), no_proof, Source::Chosen)).expect("installed");
    }
    let got = cas::decide(&net(&[a, n, f]), "dc1-n2", &v2, other, within).await;
    let learned = got.expect("the slot is decided");
    assert_eq!(learned.layout, next, "learned from DECIDED answers");
    assert_eq!(learned.lineage.chosen_at, None, "no proof from DECIDED");
}

/// review-layout31 M1 (a): a layout pushed without a lineage that this
/// node's acceptor accepted itself in the next slot is kept with its
/// predecessor (the acceptor checked the base); one it did not accept is
/// kept as unknown. Fails before, by reading: every install without a
/// lineage kept `prev` unknown.
#[test]
fn the_predecessor_of_a_layout_this_acceptor_accepted_is_known() {
    let v1 = three_nodes();
    let v2 = with_keyspace(&v1, "a");
    let y = with_keyspace(&v2, "y");
    let [n, m] = ["dc1-n2", "dc1-n3"].map(|id| acceptor(id, &[&v1, &v2]));
    accept_in(&n, &v2, &y, 1, "dc1-n1/p");
    n.install(y.clone())
        .expect("what it accepted, on one peer's word");
    assert_eq!(n.lineage_of(&y).prev, Some(v2.digest()));
    m.install(y.clone()).expect("nothing accepted in the slot");
    assert_eq!(m.lineage_of(&y), Lineage::default(), "unknown");
}
