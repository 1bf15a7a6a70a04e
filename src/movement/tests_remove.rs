//! Removal of a dead node over in-memory engines: a live node is refused;
//! every gainer copies what it gains from survivors (never the dead node),
//! and after `finish_remove` every member holds exactly the keys it
//! replicates; the finisher is the first gainer. A survivor down: the copy
//! fails with a shortfall, and forced, copies from the rest and names the
//! ranges short of survivors; the wait for survivors is bounded.

use std::sync::Arc;

use super::ops::LayoutHandle;
use super::plan::gains;
use super::remove::{
    begin, duties, finisher, forced, gainers, removals, Duty, Patience, RemoveError,
};
use super::rereplicate::{rereplicate, RereplicateError, Target};
use super::stream::{Progress, StreamConfig};
use super::tests_loopback::Loopback;
use super::tests_replace::{seeded, source};
use crate::engine::MemoryEngine;
use crate::layout::NodeState;
use crate::ring::Ring;

#[tokio::test]
async fn a_removed_dead_nodes_ranges_are_copied_from_survivors_by_their_new_owners() {
    let (layout, mut engines, data) = seeded();
    let l = layout.current();
    let err = begin(&l, "b", &|_| true).unwrap_err();
    assert!(matches!(err, RemoveError::Alive(_)), "{err}");
    assert!(err.to_string().contains("alive"), "{err}");
    let moving = begin(&l, "b", &|id| id != "b").unwrap();
    assert_eq!(removals(&moving), vec!["b"]);
    layout.propose(moving.clone()).await.unwrap();

    // dc1 has a, c, d left with rf 3: each of them gains what it lacked.
    let who = gainers(&moving, "b");
    assert_eq!(who, vec!["a", "c", "d"]);
    assert_eq!(finisher(&moving, "b").as_deref(), Some("a"));
    assert!(gains(&moving, "x").unwrap().is_empty(), "dc2 is untouched");
    let src = Arc::new(source(&engines, None));
    for g in &who {
        let target = Target {
            layout: &moving,
            gainer: g,
            dead: "b",
            stream_id: "remove-b",
            force: false,
        };
        let progress = Arc::new(Progress::default());
        let engine = engines[g].clone();
        rereplicate(
            target,
            engine,
            src.clone(),
            &StreamConfig::default(),
            progress.clone(),
        )
        .await
        .unwrap();
        let p = progress.snapshot();
        assert_eq!(p.ranges_done, p.ranges_total);
        assert!(p.keys > 0, "{g} copied nothing");
    }
    let done = moving.finish_remove("b").unwrap();
    assert_eq!(done.node("b").unwrap().2.state, NodeState::Removed);
    layout.propose(done.clone()).await.unwrap();
    let ring = Ring::from_layout(&done);
    engines.insert("b".into(), Arc::new(MemoryEngine::default()));
    for (key, set) in &data {
        for n in ring.replicas("ks", key).unwrap().all() {
            let id = &ring.node(n).id;
            let got = engines[id].get_versions("ks", key).unwrap();
            assert_eq!(
                got.as_ref(),
                Some(set),
                "{id} lacks {}",
                String::from_utf8_lossy(key)
            );
        }
    }
}

/// Re-replicates what "a" gains in `l`'s removal of "b".
async fn copy_into_a(
    l: &crate::layout::Layout,
    force: bool,
    engines: &std::collections::BTreeMap<String, Arc<dyn crate::engine::Engine>>,
    src: Arc<Loopback>,
) -> Result<Vec<super::survivors::Shortfall>, RereplicateError> {
    let target = Target {
        layout: l,
        gainer: "a",
        dead: "b",
        stream_id: "remove-b",
        force,
    };
    let cfg = StreamConfig::default();
    rereplicate(target, engines["a"].clone(), src, &cfg, Arc::default()).await
}

#[tokio::test]
async fn a_shortfall_fails_unless_the_removal_is_forced_which_names_the_short_ranges() {
    let (layout, engines, _) = seeded();
    let moving = begin(&layout.current(), "b", &|id| id != "b").unwrap();
    assert!(!forced(&moving, "b"));
    // "c" is down too: every range of "a" that "c" and "b" both held lacks
    // a survivor (rf 3 in dc1 needs both).
    let src = Arc::new(Loopback {
        engines: engines.clone(),
        down: ["b".to_string(), "c".to_string()].into(),
        ..Loopback::default()
    });
    let err = copy_into_a(&moving, false, &engines, src.clone())
        .await
        .unwrap_err();
    let RereplicateError::Shortfall(short) = err else {
        panic!("{err}")
    };
    assert_eq!(short.down, vec!["c".to_string()], "{short}");
    let forced_layout = moving.force_remove("b").unwrap();
    assert_eq!(forced_layout.version, moving.version + 1);
    assert!(forced(&forced_layout, "b"));
    assert_eq!(
        forced_layout.force_remove("b").unwrap(),
        forced_layout,
        "idempotent"
    );
    let short = copy_into_a(&forced_layout, true, &engines, src)
        .await
        .unwrap();
    assert!(!short.is_empty(), "the ranges short of survivors are named");
    assert!(short.iter().all(|s| s.down == vec!["c".to_string()]));
    // Forced or not, it finishes the same way.
    let done = forced_layout.finish_remove("b").unwrap();
    assert_eq!(done.node("b").unwrap().2.state, NodeState::Removed);
}

#[test]
fn the_wait_for_survivors_is_bounded_and_starts_over_after_progress() {
    let limit = std::time::Duration::from_secs(60);
    let t0 = std::time::Instant::now();
    let mut p = Patience::default();
    assert!(!p.short(t0, limit));
    assert!(!p.short(t0 + limit / 2, limit));
    assert!(p.short(t0 + limit, limit), "gave up after the limit");
    assert!(p.short(t0 + limit * 2, limit), "and stays failed");
    p.reset();
    assert!(!p.short(t0 + limit * 3, limit), "a new wait after progress");
}

/// review-abort27 L1: `removenode --force` of a node whose removal sorts
/// after another datacenter's was not forced (`removing` named the first).
#[test]
fn a_removal_in_a_later_datacenter_is_found_by_its_node() {
    let (layout, _, _) = seeded();
    let mut l = (*layout.current()).clone();
    for (dc, node) in [("a-dc", "x"), ("z-dc", "y")] {
        let m = crate::layout::Movement::Remove {
            node: node.into(),
            also: Vec::new(),
            force: false,
            began: 0,
        };
        l.movements.insert(dc.into(), m);
    }
    assert_eq!(removals(&l), vec!["x", "y"]);
    assert!(super::remove::is_removing(&l, "x"));
    assert!(
        super::remove::is_removing(&l, "y"),
        "the later datacenter's removal"
    );
    assert!(!super::remove::is_removing(&l, "b"));
}

/// review-lead27 L5: while dc1's removal of "b" waits, dc2's removal of
/// "y" is driven too, by dc2's own nodes: the follower drove only the
/// first removal by datacenter, and a removal's gainers (and so its
/// finisher) were every member gaining in any movement, so dc1's gainers
/// were counted (and awaited) for dc2's removal.
#[test]
fn every_datacenters_removal_is_driven_by_its_own_datacenters_nodes() {
    let topo = crate::topology::testing::yaml(
        &[
            ("dc1", &["a", "b", "c", "d"]),
            ("dc2", &["w", "x", "y", "z"]),
        ],
        &[("dc1", 3), ("dc2", 3)],
    );
    let seed =
        crate::layout::Layout::seed(&crate::topology::Topology::parse("t.yaml", &topo).unwrap());
    let l = seed.begin_remove("b").unwrap().begin_remove("y").unwrap();
    assert_eq!(gainers(&l, "b"), vec!["a", "c", "d"]);
    assert_eq!(gainers(&l, "y"), vec!["w", "x", "z"], "dc2's nodes only");
    assert_eq!(finisher(&l, "y").as_deref(), Some("w"));
    assert_eq!(removals(&l), vec!["b", "y"]);
    let duty = |dead: &str| Duty {
        dead: dead.into(),
        copy: true,
        finish: true,
    };
    assert_eq!(duties(&l, "w"), vec![duty("y")], "dc2 is driven too");
    assert_eq!(duties(&l, "a"), vec![duty("b")]);
    let x = duties(&l, "x");
    assert_eq!(x.len(), 1);
    assert!(x[0].copy && !x[0].finish, "{x:?}");
}

/// review-elastic28 M3: dc1's gainer finished its copy for b; dc2's
/// removal of y then finishes (a new layout version, y's tokens leave the
/// ring, so the plan's pieces are cut anew and the cursors keyed by exact
/// range miss). The copy is not run again for it, nor when b's removal is
/// forced afterwards: the unforced copy that completed met quorum on every
/// range, more than forcing asks (review-elastic29 L3).
#[test]
fn another_datacenters_finish_does_not_make_a_finished_copy_run_again() {
    let topo = crate::topology::testing::yaml(
        &[
            ("dc1", &["a", "b", "c", "d"]),
            ("dc2", &["w", "x", "y", "z"]),
        ],
        &[("dc1", 3), ("dc2", 3)],
    );
    let seed =
        crate::layout::Layout::seed(&crate::topology::Topology::parse("t.yaml", &topo).unwrap());
    let both = seed.begin_remove("b").unwrap().begin_remove("y").unwrap();
    let mut settled = super::settled::Settled::default();
    settled.insert("b");
    let y_done = both.finish_remove("y").unwrap();
    assert_ne!(both.version, y_done.version);
    assert_eq!(removals(&y_done), vec!["b"]);
    // The plan the copy would run again is cut differently: re-running it
    // would miss the cursors and copy from zero.
    assert_ne!(
        super::plan::gains(&both, "a").unwrap(),
        super::plan::gains(&y_done, "a").unwrap()
    );
    assert!(
        settled.contains("b"),
        "dc2's finish made dc1's finished copy run again"
    );
    let forced = y_done.force_remove("b").unwrap();
    assert!(super::remove::forced(&forced, "b"));
    assert!(
        settled.contains("b"),
        "forcing a removal made its finished copy run again"
    );
    settled.retain(&removals(&forced.finish_remove("b").unwrap()));
    assert!(!settled.contains("b"), "forgotten once over");
}

/// review-final28 L3: a hold on the board (the upgrade gate held the
/// switch) is forgotten once this node no longer finishes that removal
/// (it is over, or another node finishes it); it stayed, and `geokv
/// removenode` printed "held by …" while another node went on.
#[test]
fn a_hold_is_forgotten_once_this_node_no_longer_finishes_the_removal() {
    let topo = crate::topology::testing::yaml(
        &[("dc1", &["hold-a", "hold-b", "hold-c", "hold-d"])],
        &[("dc1", 3)],
    );
    let seed =
        crate::layout::Layout::seed(&crate::topology::Topology::parse("t.yaml", &topo).unwrap());
    let l = seed.begin_remove("hold-b").unwrap();
    assert_eq!(finisher(&l, "hold-b").as_deref(), Some("hold-a"));
    let name = super::remove::movement_name(&l, "hold-b");
    let (a, c) = (
        super::progress::board("hold-a"),
        super::progress::board("hold-c"),
    );
    for board in [&a, &c] {
        board.hold(&name, Some("held by the upgrade gate".into()));
    }
    let all = |_: &str| true;
    super::remove_finish::forget_stale_holds(&a, &l, "hold-a", &all);
    assert!(a.held().contains_key(&name), "its finisher keeps it");
    // review-cancel31 L2: the stand-in finisher while hold-a is down
    // keeps its hold shown.
    super::remove_finish::forget_stale_holds(&c, &l, "hold-c", &|id| id != "hold-a");
    assert!(
        c.held().contains_key(&name),
        "the stand-in finisher keeps it"
    );
    super::remove_finish::forget_stale_holds(&c, &l, "hold-c", &all);
    assert!(c.held().is_empty(), "not its finisher: {:?}", c.held());
    let over = l.finish_remove("hold-b").unwrap();
    super::remove_finish::forget_stale_holds(&a, &over, "hold-a", &all);
    assert!(a.held().is_empty(), "the removal is over: {:?}", a.held());
}

/// dc1 of five nodes (rf 3) and its engines with 1500 keys, "a" and "b"
/// dead (their engines gone).
pub(super) fn five_with_two_dead() -> super::tests_replace::World {
    let topo =
        crate::topology::testing::yaml(&[("dc1", &["a", "b", "c", "d", "e"])], &[("dc1", 3)]);
    let (seed, mut engines, data) = super::tests_ops::replicated(&topo, 1500);
    engines.remove("a");
    engines.remove("b");
    let fake = super::tests_ops::Fake(parking_lot::Mutex::new(Arc::new(seed)));
    (fake, engines, data)
}

/// audit11 D1: "a" and "b" died together; `removenode a`; "b" gains in
/// it, so the removal waited for "b"'s copy for good and `removenode b`
/// was refused (`MovementInProgress`): dc1 could never move again. It is
/// accepted, and the removal covers both.
#[test]
fn removenode_of_a_dead_gainer_during_a_removal_is_accepted() {
    let (layout, _, _) = five_with_two_dead();
    let up = |id: &str| id != "a" && id != "b";
    let one = begin(&layout.current(), "a", &up).unwrap();
    assert!(gainers(&one, "a").contains(&"b".to_string()), "b gains");
    let both = begin(&one, "b", &up).unwrap_or_else(|e| panic!("refused: {e}"));
    assert_eq!(both.version, one.version + 1);
    assert_eq!(both.node("b").unwrap().2.state, NodeState::Leaving);
    assert!(super::remove::is_removing(&both, "a") && super::remove::is_removing(&both, "b"));
    assert_eq!(removals(&both), vec!["a"], "one removal in dc1");
    let who = gainers(&both, "a");
    assert_eq!(who, vec!["c", "d", "e"], "the dead nodes gain nothing");
    assert_eq!(finisher(&both, "a").as_deref(), Some("c"));
    let joins = super::upgrade::joins_removal;
    assert!(joins(&one, &both), "gated on every build knowing it");
    assert!(!joins(&layout.current(), &one) && !joins(&both, &both.force_remove("b").unwrap()));
    // review-cancel31 L5: a join drops the force, for the whole removal
    // (review-cancel2-31 L2): "b"'s ranges and "a"'s wait for a new one.
    let forced_a = one.force_remove("a").unwrap();
    let joined = begin(&forced_a, "b", &up).unwrap();
    assert!(
        !super::remove::forced(&joined, "b"),
        "b's ranges not forced unasked"
    );
    assert!(!super::remove::forced(&joined, "a"), "the whole removal");
    let done = both.finish_remove("a").unwrap();
    for id in ["a", "b"] {
        assert_eq!(done.node(id).unwrap().2.state, NodeState::Removed);
    }
    assert!(done.movements.is_empty());
}
