//! A dead gainer of a movement in progress (audit11 D1): removed with the
//! node being removed, every key lands on its new owners; refused during a
//! decommission naming its cancel; never the finisher.

use std::sync::Arc;

use super::ops::LayoutHandle;
use super::remove::{begin, finisher, forced, gainers, RemoveError};
use super::rereplicate::{rereplicate, RereplicateError, Target};
use super::stream::{Progress, StreamConfig};
use super::tests_loopback::Loopback;
use super::tests_remove::five_with_two_dead;
use crate::engine::MemoryEngine;
use crate::layout::{FinishStep, LayoutError};
use crate::ring::Ring;

/// audit11 D1: the combined removal copies both dead nodes' ranges from
/// the survivors; where both held a range only one survivor is left, so
/// it waits for `--force` (a write held by those two alone is lost), and
/// forced, every key is on each of its new owners once it finishes.
#[tokio::test]
async fn a_removal_of_two_dead_nodes_puts_every_key_on_its_new_owners() {
    let (layout, mut engines, data) = five_with_two_dead_at_quorum();
    let up = |id: &str| id != "a" && id != "b";
    let both = begin(&layout.current(), "a", &up).unwrap();
    let both = begin(&both, "b", &up).unwrap();
    let src = Arc::new(Loopback {
        engines: engines.clone(),
        down: ["a".to_string(), "b".to_string()].into(),
        ..Loopback::default()
    });
    let mut shortfalls = 0;
    for g in gainers(&both, "a") {
        let target = |force| Target {
            layout: &both,
            gainer: &g,
            dead: "a",
            stream_id: "remove-a",
            force,
        };
        let cfg = StreamConfig::default();
        let (engine, p) = (engines[&g].clone(), Arc::new(Progress::default()));
        match rereplicate(target(false), engine.clone(), src.clone(), &cfg, p).await {
            Ok(_) => {}
            Err(RereplicateError::Shortfall(s)) => {
                assert_eq!(s.down, vec!["b".to_string()], "{s}");
                shortfalls += 1;
            }
            Err(e) => panic!("{e}"),
        }
        let p = Arc::new(Progress::default());
        rereplicate(target(true), engine, src.clone(), &cfg, p)
            .await
            .unwrap();
    }
    assert!(shortfalls > 0, "some range had both dead nodes as replicas");
    let forcing = both.force_remove("b").unwrap();
    assert!(
        forced(&forcing, "a") && forced(&forcing, "b"),
        "one removal, forced"
    );
    let done = forcing.finish_remove("a").unwrap();
    let ring = Ring::from_layout(&done);
    engines.insert("a".into(), Arc::new(MemoryEngine::default()));
    engines.insert("b".into(), Arc::new(MemoryEngine::default()));
    // Written at quorum: an old replica kept may lack a key (as before the
    // removal), but every gainer holds it and so does a quorum of the new
    // owners (review-cancel31 L6).
    let old = Ring::from_layout(&layout.current());
    for (key, set) in &data {
        let ids = |r: &Ring| -> Vec<String> {
            let replicas = r.replicas("ks", key).unwrap();
            replicas.all().map(|n| r.node(n).id.clone()).collect()
        };
        let (before, after) = (ids(&old), ids(&ring));
        let mut holding = 0;
        for id in &after {
            let got = engines[id].get_versions("ks", key).unwrap();
            holding += usize::from(got.as_ref() == Some(set));
            let gained = !before.contains(id);
            assert!(
                !gained || got.as_ref() == Some(set),
                "{id} gained but lacks a key"
            );
        }
        assert!(holding >= 2, "a key on {holding} of its new owners");
    }
}

/// [`five_with_two_dead`], but each key that "a" or "b" replicates written
/// to exactly a quorum (two of its three replicas) including one of them
/// (both: "a" and its survivor), so the copies cannot lean on a third
/// replica (review-cancel31 L6).
fn five_with_two_dead_at_quorum() -> super::tests_replace::World {
    let (world, _, data) = five_with_two_dead();
    let seed = world.current();
    let ring = Ring::from_layout(&seed);
    let mut engines: std::collections::BTreeMap<String, Arc<dyn crate::engine::Engine>> =
        (ring.nodes().iter())
            .map(|n| (n.id.clone(), Arc::new(MemoryEngine::default()) as _))
            .collect();
    for (key, set) in &data {
        let replicas = ring.replicas("ks", key).unwrap();
        let mut ids: Vec<String> = replicas.all().map(|n| ring.node(n).id.clone()).collect();
        let dead = |id: &String| id == "a" || id == "b";
        ids.sort_by_key(|id| (!dead(id), id.clone()));
        let quorum = match ids.iter().filter(|id| dead(id)).count() {
            0 => 3, // no range of theirs: nothing moves
            1 => 2,
            _ => {
                ids.remove(1);
                2
            }
        };
        for id in ids.iter().take(quorum) {
            let mut b = crate::engine::WriteBatch::new();
            b.merge_versions("ks", key, set);
            engines[id].write(b).unwrap();
        }
    }
    engines.remove("a");
    engines.remove("b");
    (world, engines, data)
}

/// audit11 D1: a dead gainer of a decommission is refused with the way
/// out named (`decommission --cancel`); once cancelled it is removable.
#[test]
fn removenode_of_a_dead_gainer_of_a_decommission_names_the_cancel() {
    let (layout, _, _) = five_with_two_dead();
    let leaving = layout.current().begin_leave("c").unwrap();
    let err = begin(&leaving, "b", &|id| id != "b").unwrap_err();
    assert!(err.to_string().contains("decommission --cancel"), "{err}");
    let cancelled = leaving.cancel_leave("c").unwrap();
    assert!(begin(&cancelled, "b", &|id| id != "b").is_ok());
    // review-cancel31 M3: between the two steps of a cancel past the
    // switch, the refusal says to wait for the cancel, not to run it.
    let FinishStep::SwitchReads(switched) = leaving.next_finish_step("c").unwrap() else {
        panic!("the switch comes first")
    };
    let back = switched.cancel_leave("c").unwrap();
    let err = begin(&back, "b", &|id| id != "b").unwrap_err();
    assert!(err.to_string().contains("cancel is in progress"), "{err}");
}

/// review-cancel31 H1: with rf+1 nodes in the datacenter, a dead gainer
/// of a removal cannot join it (rf nodes would not be left); the refusal
/// names the ways out: start it again, or withdraw the removal, replace
/// it (forced), then remove the first node again.
#[test]
fn a_dead_gainer_in_a_dc_of_rf_plus_one_nodes_is_refused_naming_the_way_on() {
    let topo = crate::topology::testing::yaml(&[("dc1", &["a", "b", "c", "d"])], &[("dc1", 3)]);
    let (seed, _, _) = super::tests_ops::replicated(&topo, 10);
    let up = |id: &str| id != "a" && id != "b";
    let one = begin(&seed, "a", &up).unwrap();
    assert!(gainers(&one, "a").contains(&"b".to_string()), "b gains");
    let err = begin(&one, "b", &up).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(&err, RemoveError::GainerTooFewLeft { why, .. }
            if matches!(**why, LayoutError::TooFewNodes { left: 2, .. })),
        "{err}"
    );
    assert!(msg.contains("start it again"), "{msg}");
    let way_out = [
        "withdraw the removal (`geokv removenode a --withdraw`)",
        "then replace 'b' (`geokv node --replace b`",
        "`geokv removenode b --force`",
        "then remove 'a' again",
    ];
    for step in way_out {
        assert!(msg.contains(step), "{step}: {msg}");
    }
    // The first step of it is accepted.
    assert!(one.withdraw_removal_of("a").is_ok());
}

/// audit11 D1 (and L3): a dead gainer does not finish the removal; the
/// first gainer up does, and once it reads from the gainers their copies
/// are done, so none is waited for.
#[test]
fn the_finisher_is_the_first_gainer_up() {
    let (layout, _, _) = five_with_two_dead();
    let l = begin(&layout.current(), "a", &|id| id != "a").unwrap();
    let first = finisher(&l, "a").unwrap();
    let up = |id: &str| id != "a" && id != first;
    let next = super::remove::finisher_up(&l, "a", "e", &up).unwrap();
    assert_ne!(next, first);
    assert!(gainers(&l, "a").contains(&next));
    let duties = super::remove::duties_up(&l, &next, &up);
    assert!(duties.iter().any(|d| d.finish), "{duties:?}");
}

/// audit11 D1: in a removal of "a" and "b" a range one of them owned is
/// copied as from that dead owner (two survivors suffice, rf 3), and only
/// a range both owned falls short (its survivor alone cannot meet a
/// LOCAL_QUORUM written to "a" and "b"), naming "b" as down.
#[test]
fn a_range_of_one_dead_owner_needs_no_force() {
    let (layout, _, _) = five_with_two_dead();
    let up = |id: &str| id != "a" && id != "b";
    let both = begin(&layout.current(), "a", &up).unwrap();
    let both = begin(&both, "b", &up).unwrap();
    let (mut one, mut two) = (0, 0);
    for g in gainers(&both, "a") {
        for gain in super::plan::gains(&both, &g).unwrap() {
            let dead = |s: &String| s == "a" || s == "b";
            let owned = gain.sources.iter().filter(|s| dead(s)).count();
            let chosen = super::survivors::choose(&both, &gain, &g, "a", &up);
            match (owned, chosen) {
                (2, Err(s)) => {
                    assert_eq!(s.down, vec!["b".to_string()], "{s}");
                    two += 1;
                }
                (1, Ok(sources)) => {
                    assert!(sources.iter().all(|s| up(s)), "{sources:?}");
                    one += 1;
                }
                (n, r) => panic!("{n} dead owner(s) of {:?}: {r:?}", gain.range),
            }
        }
    }
    assert!(
        one > 0 && two > 0,
        "{one} ranges of one dead owner, {two} of two"
    );
}
