//! A join or replacement bootstrap that was cut short after some
//! acceptors took its change (issue 11, review M3): the re-run of the same
//! command adopts its own accepted or chosen change instead of reporting
//! it as a concurrent one, after which every re-run failed `DuplicateNode`.

use std::sync::Arc;

use super::bootstrap::own_entry;
use crate::engine::memory::MemoryEngine;
use crate::engine::{Engine, Limits};
use crate::layout::consensus::{Ballot, Msg};
use crate::layout::testing::{dev_join, new_node};
use crate::layout::{Layout, Movement};
use crate::topology::Topology;
use crate::view::cas::propose_adopting;
use crate::view::cas_testing::Group;
use crate::view::ProposeError;

fn engine() -> Option<Arc<dyn Engine>> {
    Some(Arc::new(MemoryEngine::new(Limits::default())))
}

fn join_of(id: &str) -> Movement {
    Movement::Join { node: id.into() }
}

/// dc1-new's first `begin_join` reached three of the six acceptors, then
/// the bootstrap timed out (undecided). The re-run proposes again, here
/// with other tokens; the acceptors finish the first one, which is this
/// node's own join: adopted, not refused.
#[tokio::test]
async fn a_re_run_join_adopts_its_own_join_accepted_by_a_minority() {
    let seed = Layout::seed(&Topology::dev());
    let group = Group::new(&seed, engine);
    let first = dev_join(&seed, "dc1-new", "127.0.0.14");
    let ballot = Ballot {
        round: 1,
        node: "dc1-new/earlier".into(),
    };
    // Three of six: no majority, but every later majority meets them.
    for id in ["dc1-n1", "dc1-n2", "dc1-n3"] {
        let n = group.node(id);
        n.accept(&Msg::Prepare {
            slot: 2,
            ballot: ballot.clone(),
            base: seed.digest(),
        })
        .expect("a promise");
        let value = first.clone();
        (n.accept(&Msg::Accept {
            slot: 2,
            ballot: ballot.clone(),
            base: seed.digest(),
            value,
        }))
        .expect("an acceptance");
    }
    let me = new_node("dc1-new", "127.0.0.14");
    let tokens = crate::ring::allocate_tokens(&seed, "dc1", "r1", 32, 3).expect("tokens");
    let rerun = seed
        .begin_join(me.clone(), "dc1", "r1", &tokens)
        .expect("join");
    assert_ne!(rerun, first, "the re-run's proposal differs");
    let mine = |l: &Layout| own_entry(l, &me, Some("dc1"), Some("r1"), &join_of("dc1-new"));
    let net = group.net();
    let chosen = propose_adopting(&*net, "dc1-new", &seed, rerun, &mine).await;
    assert_eq!(chosen.expect("its own earlier join, adopted").0, first);
}

/// Someone else's change that won is still refused as concurrent.
#[tokio::test]
async fn another_nodes_accepted_join_is_still_a_concurrent_change() {
    let seed = Layout::seed(&Topology::dev());
    let group = Group::new(&seed, engine);
    let other = dev_join(&seed, "dc1-other", "127.0.0.15");
    let ballot = Ballot {
        round: 1,
        node: "dc1-other/x".into(),
    };
    let prepare = Msg::Prepare {
        slot: 2,
        ballot: ballot.clone(),
        base: seed.digest(),
    };
    let accept = Msg::Accept {
        slot: 2,
        ballot,
        base: seed.digest(),
        value: other,
    };
    for id in ["dc1-n1", "dc1-n2", "dc1-n3"] {
        let n = group.node(id);
        n.accept(&prepare).expect("a promise");
        n.accept(&accept).expect("an acceptance");
    }
    let me = new_node("dc1-new", "127.0.0.14");
    let mine = |l: &Layout| own_entry(l, &me, Some("dc1"), Some("r1"), &join_of("dc1-new"));
    let next = dev_join(&seed, "dc1-new", "127.0.0.14");
    let net = group.net();
    match propose_adopting(&*net, "dc1-new", &seed, next, &mine).await {
        Err(ProposeError::Concurrent { version: 2, .. }) => {}
        other => panic!("expected a concurrent refusal, got {other:?}"),
    }
}

#[test]
fn own_entry_needs_the_same_node_place_and_movement() {
    let seed = Layout::seed(&Topology::dev());
    let joining = dev_join(&seed, "dc1-new", "127.0.0.14");
    let me = new_node("dc1-new", "127.0.0.14");
    let join = join_of("dc1-new");
    assert!(own_entry(&joining, &me, Some("dc1"), Some("r1"), &join));
    assert!(
        !own_entry(&seed, &me, Some("dc1"), Some("r1"), &join),
        "not in"
    );
    let moved = new_node("dc1-new", "127.0.0.99");
    assert!(
        !own_entry(&joining, &moved, Some("dc1"), Some("r1"), &join),
        "other addresses"
    );
    assert!(
        !own_entry(&joining, &me, Some("dc1"), Some("r2"), &join),
        "other rack"
    );
    let replacing = (seed.begin_replace("dc1-n2", me.clone())).expect("replace");
    let replace = Movement::Replace {
        dead: "dc1-n2".into(),
        new: "dc1-new".into(),
        force: false,
    };
    assert!(own_entry(&replacing, &me, None, None, &replace));
    assert!(!own_entry(&replacing, &me, None, None, &join), "not a join");
}

/// Review of stop 26, M3: once reads have switched to the new owners, an
/// empty re-run of the joiner must not adopt its join (it would serve
/// reads for its ranges with nothing streamed); it is refused as before.
#[test]
fn a_join_whose_reads_switched_is_not_adopted() {
    let seed = Layout::seed(&Topology::dev());
    let joining = dev_join(&seed, "dc1-new", "127.0.0.14");
    let me = new_node("dc1-new", "127.0.0.14");
    let switched = joining
        .next_finish_step("dc1-new")
        .expect("step")
        .layout()
        .clone();
    assert!(switched.reads_new("dc1"));
    assert!(!own_entry(
        &switched,
        &me,
        Some("dc1"),
        Some("r1"),
        &join_of("dc1-new")
    ));
}
