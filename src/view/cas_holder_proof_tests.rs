//! Tests that a layout learned from the acceptors' answers keeps its
//! holders' proof of choice (issue 11, review-layout31 H1): DECIDED and
//! WRONG_BASE answers carry the lineage of the layout they name
//! (`cas::Answer`; on the wire in that layout's `LayoutMessage`), and
//! each install path that takes such a layout keeps it: a value chosen
//! from a quorum of DECIDED answers, `learn`, `Superseded` (installed by
//! the proposer, adopted by a joiner) and `on_wrong_base`. Before, each
//! installed it with no lineage: the node held a chosen layout without
//! its proof, so a peer that accepted another value of its version
//! refused its pushes, and a quorum holding it could be wedged.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use prost::Message;

use super::cas::{self, AcceptorNet, Answer, CallResult};
use super::cas_testing::{acceptor, three_nodes, with_keyspace, ScriptedNet};
use super::lineage::Lineage;
use super::*;
use crate::layout::consensus::{Ballot, Msg, Reply};
use crate::proto::v1::internode::LayoutPaxosReply;
use crate::topology::NodeInfo;

const IDS: [&str; 3] = ["dc1-n1", "dc1-n2", "dc1-n3"];

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

/// A proof of choice of a layout built on `base`, chosen at `round`
/// elsewhere.
fn proof(base: &Layout, round: u64) -> Lineage {
    Lineage {
        prev: Some(base.digest()),
        chosen_at: Some(Ballot {
            round,
            node: "dc1-n3/p".to_string(),
        }),
    }
}

/// `node` holds `layouts` in order, each chosen elsewhere with its proof.
fn holds(node: &Cluster, layouts: &[(&Layout, &Lineage)]) {
    for (l, lineage) in layouts {
        let got = node.install_from((*l).clone(), (*lineage).clone(), Source::Chosen);
        got.expect("a chosen layout installs");
    }
}

/// A ballot round trip: a DECIDED or WRONG_BASE answer carries its
/// holder's lineage in the answer's `LayoutMessage`; an older acceptor's
/// answer (no lineage fields) reads as unknown; other replies carry none.
#[test]
fn an_answer_naming_a_layout_carries_its_holders_lineage_on_the_wire() {
    let (v1, p) = (three_nodes(), proof(&three_nodes(), 2));
    let v2 = with_keyspace(&v1, "a");
    let ballot = Ballot {
        round: 1,
        node: "dc1-n1/p".to_string(),
    };
    let replies = [
        Reply::Decided { value: v2.clone() },
        Reply::WrongBase {
            ballot: ballot.clone(),
            installed: v2.clone(),
        },
    ];
    for reply in replies {
        let answer = Answer {
            reply: reply.clone(),
            lineage: p.clone(),
        };
        let bytes = acceptor::answer_to(&answer).encode_to_vec();
        let wire = LayoutPaxosReply::decode(&bytes[..]).expect("decodes");
        let got = acceptor::answer_from("dc1-n2", &wire).expect("an answer");
        assert_eq!((got.reply, got.lineage), (reply.clone(), p.clone()));
        let old = acceptor::reply_to(&reply);
        let got = acceptor::answer_from("dc1-n2", &old).expect("an answer");
        assert_eq!(got.lineage, Lineage::default(), "an older acceptor's");
    }
    let promise = Answer::from(Reply::Promise {
        ballot,
        accepted: Some((proof(&v1, 1).chosen_at.unwrap(), v2)),
    });
    let got = acceptor::answer_from("dc1-n2", &acceptor::answer_to(&promise));
    assert_eq!(got.expect("an answer").lineage, Lineage::default());
}

/// A value chosen from a quorum of DECIDED answers: A (on v2) proposes
/// v3 while N and F hold L, chosen at round 2 with its proof. A installs
/// L with that proof. Fails before (no lineage from DECIDED answers).
#[tokio::test]
async fn a_layout_chosen_from_decided_answers_keeps_its_holders_proof() {
    let v1 = three_nodes();
    let v2 = with_keyspace(&v1, "a");
    let (l, p) = (with_keyspace(&v2, "l"), proof(&v2, 2));
    let [a, n, f] = IDS.map(|id| acceptor(id, &[&v1, &v2]));
    for holder in [&n, &f] {
        holds(holder, &[(&l, &p)]);
    }
    a.set_net(Arc::new(net(&[&n, &f])));
    let err = (a.propose(with_keyspace(&v2, "mine")).await).expect_err("L was chosen");
    assert!(matches!(err, ProposeError::Concurrent { .. }), "{err}");
    assert_eq!(*a.current().layout, l);
    assert_eq!(a.lineage_of(&l), p, "with its holders' proof");
}

/// `learn`: A (on v2) proposes v3; F is dead and N, the only other
/// answer, holds v4 (a newer layout: the slot is decided). A learns v4
/// from N's word and installs it with N's proof. Fails before.
#[tokio::test]
async fn a_layout_learned_from_one_holder_keeps_its_proof() {
    let v1 = three_nodes();
    let v2 = with_keyspace(&v1, "a");
    let (v3, v4) = (
        with_keyspace(&v2, "l"),
        with_keyspace(&with_keyspace(&v2, "l"), "m"),
    );
    let (p3, p4) = (proof(&v2, 2), proof(&v3, 1));
    let [a, n] = ["dc1-n1", "dc1-n2"].map(|id| acceptor(id, &[&v1, &v2]));
    holds(&n, &[(&v3, &p3), (&v4, &p4)]);
    a.set_net(Arc::new(net(&[&n])));
    let err = (a.propose(with_keyspace(&v2, "mine")).await).expect_err("v3 was decided");
    assert!(
        matches!(err, ProposeError::Concurrent { version: 4, .. }),
        "{err}"
    );
    assert_eq!(*a.current().layout, v4);
    assert_eq!(a.lineage_of(&v4), p4, "with N's proof");
}

/// A scripted network whose acceptors install `moved` (each with its
/// proof, chosen elsewhere) before answering an Accept: the layout moves
/// on while the change is being accepted.
struct MovesOn(ScriptedNet, Vec<(Layout, Lineage)>);

impl AcceptorNet for MovesOn {
    fn call(
        &self,
        to: &NodeInfo,
        msg: Msg<Layout>,
    ) -> Pin<Box<dyn Future<Output = CallResult> + Send>> {
        if let (Msg::Accept { .. }, Some(node)) = (&msg, self.0.nodes.get(&to.id)) {
            for (l, lineage) in &self.1 {
                let _ = node.install_from(l.clone(), lineage.clone(), Source::Chosen);
            }
        }
        self.0.call(to, msg)
    }
}

/// `Superseded`: A's Accept of its v3 was sent, then N and F moved on to
/// v4 (with its proof) and answer DECIDED. A installs v4 with the proof
/// (A accepted its own v3 in slot 3, so v4 on one peer's word alone is
/// refused: `skips_accepted`); a joiner whose change v4 holds adopts it
/// with the proof. Fails before (`Superseded` carried no lineage).
#[tokio::test]
async fn a_layout_that_superseded_the_change_keeps_its_proof() {
    let v1 = three_nodes();
    let v2 = with_keyspace(&v1, "a");
    let (v3, v4) = (
        with_keyspace(&v2, "l"),
        with_keyspace(&with_keyspace(&v2, "l"), "m"),
    );
    let (p3, p4) = (proof(&v2, 2), proof(&v3, 1));
    let moved = vec![(v3.clone(), p3.clone()), (v4.clone(), p4.clone())];
    let [a, n, f] = IDS.map(|id| acceptor(id, &[&v1, &v2]));
    a.set_net(Arc::new(MovesOn(net(&[&n, &f]), moved.clone())));
    let err = (a.propose(with_keyspace(&v2, "mine")).await).expect_err("superseded");
    let superseded = |e: &ProposeError| matches!(e, ProposeError::Cas(cas::CasError::Superseded { slot: 3, lineage, .. }) if *lineage == p4);
    assert!(superseded(&err), "{err}");
    assert_eq!(*a.current().layout, v4);
    assert_eq!(a.lineage_of(&v4), p4, "with its holders' proof");

    let [a, n, f] = IDS.map(|id| acceptor(id, &[&v1, &v2]));
    let net = MovesOn(net(&[&a, &n, &f]), moved);
    let mine = |l: &Layout| l.keyspaces.contains_key("m");
    let got = cas::propose_adopting(&net, "dc1-new", &v2, with_keyspace(&v2, "j"), &mine);
    let (adopted, lineage) = got.await.expect("adopted");
    assert_eq!(
        (adopted, lineage),
        (v4, p4),
        "a joiner adopts it with its proof"
    );
}

/// `on_wrong_base`: A holds a fork of v2; N and F hold v2, chosen with
/// its proof, and refuse A's change for its base. A adopts v2 (held by a
/// quorum of its voters) with their proof. Fails before (no lineage).
#[tokio::test]
async fn the_layout_adopted_in_place_of_a_fork_keeps_its_holders_proof() {
    let v1 = three_nodes();
    let (v2, fork) = (with_keyspace(&v1, "a"), with_keyspace(&v1, "fork"));
    let p = proof(&v1, 2);
    let a = acceptor("dc1-n1", &[&v1, &fork]);
    let [n, f] = ["dc1-n2", "dc1-n3"].map(|id| acceptor(id, &[&v1]));
    for holder in [&n, &f] {
        holds(holder, &[(&v2, &p)]);
    }
    a.set_net(Arc::new(net(&[&n, &f])));
    let err = (a.propose(with_keyspace(&fork, "b")).await).expect_err("refused for its base");
    let adopted = Some(v2.digest());
    assert!(
        matches!(err, ProposeError::Forked { adopted: got, .. } if got == adopted),
        "{err}"
    );
    assert_eq!(*a.current().layout, v2);
    assert_eq!(a.lineage_of(&v2), p, "with its holders' proof");
}

/// A node that holds a chosen layout without its proof (learned from an
/// older acceptor, installed before the upgrade) keeps the proof a later
/// push or answer brings, so it can pass it on. Fails before: a layout
/// equal to the one in force changed nothing, its lineage included.
#[test]
fn a_proof_that_comes_after_its_layout_is_kept() {
    let v1 = three_nodes();
    let v2 = with_keyspace(&v1, "a");
    let (l, p) = (with_keyspace(&v2, "l"), proof(&v2, 2));
    let a = acceptor("dc1-n1", &[&v1, &v2]);
    a.install(l.clone())
        .expect("L on one peer's word, no lineage");
    assert_eq!(a.lineage_of(&l), Lineage::default());
    let got = a.install_from(l.clone(), p.clone(), Source::Peer);
    assert!(
        matches!(got, Ok(Installed::Unchanged { version: 3 })),
        "{got:?}"
    );
    assert_eq!(a.lineage_of(&l), p, "its proof, kept");
    let other = proof(&v2, 5);
    (a.install_from(l.clone(), other, Source::Peer)).expect("unchanged");
    assert_eq!(a.lineage_of(&l), p, "a known proof is not replaced");
}
