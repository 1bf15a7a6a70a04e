//! A node holding a non-chosen layout (a fork: a pre-CAS digest-wins
//! loser, another seed file, a restored disk) must not get a change built
//! on it chosen (review-layout26 M2): the acceptors check the proposal's
//! base (the layout of the version before the slot), and the forked
//! proposer learns the layout its members hold and adopts it.

use std::sync::Arc;

use super::cas_testing::Group;
use super::*;
use crate::engine::memory::MemoryEngine;
use crate::engine::{Engine, Limits};
use crate::topology::Topology;

fn engine() -> Option<Arc<dyn Engine>> {
    Some(Arc::new(MemoryEngine::new(Limits::default())))
}

fn with_keyspace(l: &Layout, name: &str) -> Layout {
    let mut next = l.clone();
    next.version += 1;
    let spec = next.keyspaces.values().next().expect("dev has one").clone();
    next.keyspaces.insert(name.to_string(), spec);
    next
}

/// Every node holds v2 `a` (chosen) except `dc1-n1`, which holds v2 `b`.
fn forked() -> (Arc<Group>, Layout, Layout) {
    let seed = Layout::seed(&Topology::dev());
    let group = Group::new(&seed, engine);
    let (chosen, fork) = (with_keyspace(&seed, "a"), with_keyspace(&seed, "b"));
    for id in group.layouts().keys() {
        let held = if id == "dc1-n1" { &fork } else { &chosen };
        group.node(id).install(held.clone()).expect("v2 installs");
    }
    (group, chosen, fork)
}

#[tokio::test]
async fn a_change_built_on_a_fork_is_refused_and_the_proposer_adopts_the_chosen_layout() {
    let (group, chosen, fork) = forked();
    let forked_node = group.node("dc1-n1");
    let result = forked_node.propose(with_keyspace(&fork, "c")).await;
    let err = result.expect_err("a change built on a non-chosen v2 must not be chosen");
    assert!(matches!(err, ProposeError::Forked { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("not applied"), "{text}");
    for (id, layout) in group.layouts() {
        assert_eq!(*layout, chosen, "node {id} holds the chosen v2");
    }
    // Back on the chosen layout, the same node's next change goes through.
    let next = with_keyspace(&chosen, "c");
    forked_node.propose(next.clone()).await.expect("decided");
    for (id, layout) in group.layouts() {
        assert_eq!(*layout, next, "node {id} holds v3");
    }
}

/// One forked acceptor does not block the others' changes: a healthy
/// proposer still gets its change chosen by the rest.
#[tokio::test]
async fn one_forked_acceptor_does_not_block_a_change_from_the_chosen_layout() {
    let (group, chosen, _) = forked();
    let next = with_keyspace(&chosen, "c");
    group
        .node("dc2-n1")
        .propose(next.clone())
        .await
        .expect("decided");
    for (id, layout) in group.layouts() {
        if id != "dc1-n1" {
            assert_eq!(*layout, next, "node {id} holds v3");
        }
    }
}

/// review-layout32a M3: P (on a fork Vf) accepted Y′, built on Vf, at
/// round 5 in slot 3; its change is refused for its base and it adopts V.
/// What it accepted in the fork's instance must not be offered to a
/// proposal built on V: Q's change on V (P and Q answering) is chosen,
/// not Y′. Fails before, by reading: P promised with Y′@5, Q adopted it
/// as the highest accepted value, and Y′ (undoing V's change) was chosen.
#[tokio::test]
async fn an_adopted_layout_does_not_inherit_what_the_fork_accepted() {
    use super::cas_testing::{accept_in, acceptor, three_nodes, ScriptedNet};
    use std::collections::BTreeMap;
    let v1 = three_nodes();
    let (v, fork) = (with_keyspace(&v1, "a"), with_keyspace(&v1, "fork"));
    let y_fork = with_keyspace(&fork, "y");
    let p = acceptor("dc1-n1", &[&v1, &fork]);
    let [q, r] = ["dc1-n2", "dc1-n3"].map(|id| acceptor(id, &[&v1, &v]));
    accept_in(&p, &fork, &y_fork, 5, "dc1-n1/p");
    let net = |nodes: &[&Cluster]| ScriptedNet {
        nodes: (nodes.iter())
            .map(|c| (c.me().to_string(), (*c).clone()))
            .collect::<BTreeMap<_, _>>(),
        catch_up: None,
    };
    p.set_net(Arc::new(net(&[&q, &r])));
    let err = (p.propose(with_keyspace(&fork, "b")).await).expect_err("refused for its base");
    assert!(matches!(err, ProposeError::Forked { .. }), "{err}");
    assert_eq!(*p.current().layout, v, "P adopted V");
    let z = with_keyspace(&v, "z");
    let within = std::time::Duration::from_secs(10);
    let got = cas::decide(&net(&[&p, &q]), "dc1-n2", &v, z.clone(), within).await;
    let decided = got.expect("decided");
    assert_eq!(
        (decided.layout, decided.ours),
        (z, true),
        "Q's change, not Y′"
    );
}

/// review-layout32b M1: P (on a fork Vf, having accepted Y′@5 in slot 3)
/// adopts V while its engine fails its `n`th write from then on. Whatever
/// `n`, on disk and in memory P holds either Vf with Y′ accepted or V
/// with slot 3 forgotten, never V with Y′ (Y′ could be chosen on V); a
/// failed write fails the adoption. Fails before, by reading: the forget
/// was a second write, so `n = 1` left V on disk (and in memory) with
/// Y′@5 still accepted, the failure only logged.
#[test]
fn an_adoption_and_its_forget_are_written_together_or_not_at_all() {
    use super::cas_testing::{accept_in, three_nodes};
    use crate::engine::testing::{Hooked, Threads};
    let v1 = three_nodes();
    let (v, fork) = (with_keyspace(&v1, "a"), with_keyspace(&v1, "fork"));
    let y_fork = with_keyspace(&fork, "y");
    let held = [("dc1-n2", &v), ("dc1-n3", &v)].map(|(id, l)| (id.to_string(), l.clone()));
    for n in 0..3 {
        let hooked = Arc::new(Hooked::new(Threads::new()));
        let engine: Arc<dyn Engine> = hooked.clone();
        let p = Cluster::new(v1.clone(), "dc1-n1", Some(engine.clone())).expect("a view");
        p.install(fork.clone()).expect("the fork installs");
        accept_in(&p, &fork, &y_fork, 5, "dc1-n1/p");
        hooked.fail_after(n);
        let err = p.on_wrong_base(&fork, &held, &Default::default(), false);
        let adopted = matches!(
            err,
            ProposeError::Forked {
                adopted: Some(_),
                ..
            }
        );
        assert_eq!(adopted, n > 0, "n = {n}: a failed write fails it: {err}");
        let in_memory = (*p.current().layout).clone();
        assert_eq!(
            in_memory,
            if adopted { &v } else { &fork }.clone(),
            "n = {n}"
        );
        let accepted = p.inner.acceptor.accepted(3).expect("reads");
        assert_eq!(accepted.is_none(), adopted, "n = {n}: in memory");
        let on_disk = super::store::load(&*engine)
            .expect("loads")
            .expect("stored");
        let reloaded = super::acceptor::Acceptor::new(Some(engine.clone()));
        let accepted = reloaded.accepted(3).expect("reads");
        assert_eq!(on_disk, in_memory, "n = {n}: on disk");
        assert_eq!(accepted.is_none(), adopted, "n = {n}: on disk");
    }
}

/// review-layout32b M2: P holds V and accepted X@5 in V's instance of
/// slot 3; it swaps to Vf (`on_wrong_base`), then back to V. V's instance
/// must still hold X@5: a prepare on V at a higher round is promised with
/// it, so no other value can be chosen there. And Vf's instance must not
/// be offered on V in between. In memory and after a reload. The live
/// slots are written as an older build writes them (`accept_in`): they
/// are taken for the installed layout's base at load.
#[test]
fn a_swap_back_finds_the_promises_of_its_instance_again() {
    use super::cas_testing::{accept_in, three_nodes};
    use crate::layout::consensus::{Ballot, Msg, Reply};
    let v1 = three_nodes();
    let (v, fork) = (with_keyspace(&v1, "a"), with_keyspace(&v1, "fork"));
    let x = with_keyspace(&v, "x");
    let engine = engine().expect("an engine");
    let p = Cluster::new(v1.clone(), "dc1-n1", Some(engine.clone())).expect("a view");
    p.install(v.clone()).expect("V installs");
    accept_in(&p, &v, &x, 5, "dc1-n2/q");
    let held = |l: &Layout| ["dc1-n2", "dc1-n3"].map(|id| (id.to_string(), l.clone()));
    let to_fork = p.on_wrong_base(&v, &held(&fork), &Default::default(), false);
    assert!(matches!(
        to_fork,
        ProposeError::Forked {
            adopted: Some(_),
            ..
        }
    ));
    assert_eq!(*p.current().layout, fork);
    assert_eq!(p.inner.acceptor.accepted(3).expect("reads"), None, "on Vf");
    let back = p.on_wrong_base(&fork, &held(&v), &Default::default(), false);
    assert!(matches!(
        back,
        ProposeError::Forked {
            adopted: Some(_),
            ..
        }
    ));
    assert_eq!(*p.current().layout, v);
    let ballot = |round, node: &str| Ballot {
        round,
        node: node.to_string(),
    };
    let kept = Some((ballot(5, "dc1-n2/q"), x.clone()));
    assert_eq!(p.inner.acceptor.accepted(3).expect("reads"), kept);
    let reloaded = super::acceptor::Acceptor::new(Some(engine));
    assert_eq!(reloaded.accepted(3).expect("reads"), kept, "after a reload");
    let (slot, base) = (3, v.digest());
    let prepare = Msg::Prepare {
        slot,
        ballot: ballot(6, "dc1-n3/r"),
        base,
    };
    let reply = p.accept(&prepare).expect("answered");
    let promised = Reply::Promise {
        ballot: ballot(6, "dc1-n3/r"),
        accepted: kept,
    };
    assert_eq!(reply, promised, "V's promise holds X@5");
}

/// review-layout33 L1: the instances a swap puts aside survive a restart
/// between two swaps. P accepts X@5 on V, swaps to Vf, accepts Y@7 on
/// Vf's instance, restarts, swaps back to V (X@5, not Y@7: V's instance
/// was read from disk, not carried in memory), then to Vf again (Y@7).
/// Fails without the put-aside write (`Others::put` in the swap's batch):
/// after the restart V's instance is gone and the swap back finds none.
#[test]
fn instances_put_aside_by_a_swap_survive_a_restart() {
    use super::cas_testing::{accept_in, three_nodes};
    let v1 = three_nodes();
    let (v, fork) = (with_keyspace(&v1, "a"), with_keyspace(&v1, "fork"));
    let (x, y) = (with_keyspace(&v, "x"), with_keyspace(&fork, "y"));
    let engine = engine().expect("an engine");
    let p = Cluster::new(v1.clone(), "dc1-n1", Some(engine.clone())).expect("a view");
    p.install(v.clone()).expect("V installs");
    accept_in(&p, &v, &x, 5, "dc1-n2/q");
    let held = |l: &Layout| ["dc1-n2", "dc1-n3"].map(|id| (id.to_string(), l.clone()));
    let adopted = |e: ProposeError| {
        matches!(
            e,
            ProposeError::Forked {
                adopted: Some(_),
                ..
            }
        )
    };
    let accepted = |p: &Cluster| {
        let slot = p.inner.acceptor.accepted(3).expect("reads");
        slot.map(|(ballot, value)| (ballot.round, value))
    };
    assert!(adopted(p.on_wrong_base(
        &v,
        &held(&fork),
        &Default::default(),
        false
    )));
    accept_in(&p, &fork, &y, 7, "dc1-n3/r");
    drop(p);
    let (fork_on_disk, _) = super::store::open(&*engine, v1.clone()).expect("opens");
    let p = Cluster::new(fork_on_disk, "dc1-n1", Some(engine)).expect("restarted");
    assert_eq!(*p.current().layout, fork, "restarted on Vf");
    assert_eq!(accepted(&p), Some((7, y.clone())), "Vf's instance");
    assert!(adopted(p.on_wrong_base(
        &fork,
        &held(&v),
        &Default::default(),
        false
    )));
    assert_eq!(accepted(&p), Some((5, x)), "V's instance, read from disk");
    assert!(adopted(p.on_wrong_base(
        &v,
        &held(&fork),
        &Default::default(),
        false
    )));
    assert_eq!(accepted(&p), Some((7, y)), "Vf's instance again");
}
