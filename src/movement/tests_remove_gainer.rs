//! A dead gainer of a movement in progress (audit11 D1): removed with the
//! node being removed, every key lands on its new owners; refused during a
//! decommission naming its cancel; never the finisher.

use std::sync::Arc;

use super::ops::LayoutHandle;
use super::remove::{begin, finisher, forced, gainers};
use super::rereplicate::{rereplicate, RereplicateError, Target};
use super::stream::{Progress, StreamConfig};
use super::tests_loopback::Loopback;
use super::tests_remove::five_with_two_dead;
use crate::engine::MemoryEngine;
use crate::ring::Ring;

/// audit11 D1: the combined removal copies both dead nodes' ranges from
/// the survivors; where both held a range only one survivor is left, so
/// it waits for `--force` (a write held by those two alone is lost), and
/// forced, every key is on each of its new owners once it finishes.
#[tokio::test]
async fn a_removal_of_two_dead_nodes_puts_every_key_on_its_new_owners() {
    let (layout, mut engines, data) = five_with_two_dead();
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
    for (key, set) in &data {
        for n in ring.replicas("ks", key).unwrap().all() {
            let id = &ring.node(n).id;
            let got = engines[id].get_versions("ks", key).unwrap();
            assert_eq!(got.as_ref(), Some(set), "{id} lacks a key");
        }
    }
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
