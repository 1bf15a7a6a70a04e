//! A removal withdrawn before its switch (review-cancel31 H1): a new
//! attempt of it is another movement, so the first attempt's `done`
//! reports do not finish it and its cursors are forgotten, never resumed;
//! a forced replacement copies from the survivors up (audit11 D3).

use std::collections::BTreeSet;
use std::sync::Arc;

use parking_lot::Mutex;

use super::ops::LayoutHandle;
use super::remove::{finisher, gainers, movement_name, over, stream_id};
use super::stream::Progress;
use super::tests_switch::Logged;
use crate::layout::{Layout, NodeState};
use crate::topology::testing::yaml;

/// dc1 of two nodes at rf 1: the removal of `w1a` has one gainer, `w1b`.
fn two() -> Layout {
    let topo = yaml(&[("dc1", &["w1a", "w1b"])], &[("dc1", 1)]);
    Layout::seed(&crate::topology::Topology::parse("t.yaml", &topo).unwrap())
}

fn logged(l: &Layout) -> Logged {
    Logged {
        layout: Mutex::new(Arc::new(l.clone())),
        log: Mutex::default(),
        unannounced: Mutex::default(),
        old: Mutex::default(),
    }
}

/// The only gainer reported the first attempt done; the removal was
/// withdrawn and begun again: the finisher does not take that report for
/// the new attempt (nothing proposed) until the gainer reports it.
#[tokio::test]
async fn a_withdrawn_removals_done_reports_do_not_finish_a_new_attempt() {
    let first = two().begin_remove("w1a").unwrap();
    let me = finisher(&first, "w1a").unwrap();
    assert_eq!(gainers(&first, "w1a"), vec![me.clone()]);
    let board = super::progress::board(&me);
    let progress = Arc::new(Progress::default());
    board.start(
        &movement_name(&first, "w1a"),
        first.version,
        progress.clone(),
    );
    board.status("done");
    let again = (first.withdraw_remove("dc1").unwrap())
        .begin_remove("w1a")
        .unwrap();
    assert_ne!(movement_name(&again, "w1a"), movement_name(&first, "w1a"));
    let h = logged(&again);
    let tls = crate::transport::tls::Tls::insecure();
    super::remove_finish::try_finish(&h, &tls, &again, "w1a", &me).await;
    assert!(h.log.lock().is_empty(), "{:?}", h.log.lock());
    assert_eq!(h.current().version, again.version);
    // Once the gainer reports this attempt done, it finishes.
    board.start(&movement_name(&again, "w1a"), again.version, progress);
    board.status("done");
    super::remove_finish::try_finish(&h, &tls, &again, "w1a", &me).await;
    let state = h.current().node("w1a").unwrap().2.state;
    assert_eq!(state, NodeState::Removed, "{:?}", h.log.lock());
}

/// Each attempt pulls under its own stream id; a withdrawn attempt's
/// cursors are over (forgotten by `follow`), even when a new attempt of
/// the same node runs by the time the follower looks.
#[test]
fn a_withdrawn_attempts_cursors_are_over_and_never_resumed() {
    let first = two().begin_remove("w1a").unwrap();
    let back = first.withdraw_remove("dc1").unwrap();
    let again = back.begin_remove("w1a").unwrap();
    let (id1, id2) = (stream_id(&first, "w1a"), stream_id(&again, "w1a"));
    assert_ne!(id1, id2, "a new attempt starts over");
    let copied: BTreeSet<String> = [id1.clone()].into();
    assert_eq!(over(&copied, &first), Vec::<String>::new(), "still going");
    assert_eq!(over(&copied, &back), vec![id1.clone()], "withdrawn");
    assert_eq!(over(&copied, &again), vec![id1], "another attempt runs");
    // An older build's removal (no attempt id) keeps the id it had.
    let mut old = first.clone();
    super::upgrade::drop_attempt_ids(&two(), &mut old);
    assert_eq!(
        stream_id(&old, "w1a"),
        super::cursor::Pull::Remove.id("w1a")
    );
}

/// A replacement is forced by `removenode DEAD --force` (audit11 D3): its
/// copy then takes the survivors that are up; the gate asks REMOVE_SETS.
#[test]
fn a_forced_replacement_is_seen_by_the_replacement() {
    let seed = Layout::seed(&crate::topology::Topology::dev());
    let new = crate::layout::testing::new_node("dc1-w9", "127.0.0.19");
    let replacing = seed.begin_replace("dc1-n2", new).unwrap();
    assert!(!super::replace::forced(&replacing, "dc1-w9"));
    let forced = replacing.force_replace("dc1-n2").unwrap();
    assert!(super::replace::forced(&forced, "dc1-w9"));
    assert!(super::upgrade::forces_replace(&replacing, &forced));
    assert!(!super::upgrade::forces_replace(&forced, &forced));
    let begun = two().begin_remove("w1a").unwrap();
    assert!(super::upgrade::begins_attempt(&two(), &begun));
    let forced = begun.force_remove("w1a").unwrap();
    assert!(
        !super::upgrade::begins_attempt(&begun, &forced),
        "the same attempt"
    );
}

/// review-withdraw34 M3: a withdrawn removal's `done` report does not
/// outlive it on the board (with `began` 0, a member up without
/// REMOVE_SETS, a new attempt has the same name); a running or finished
/// removal's report, and another movement's, stay.
#[test]
fn a_withdrawn_removal_leaves_no_done_report_on_the_board() {
    use super::remove::withdrawn;
    let first = two().begin_remove("w1a").unwrap();
    let mut old = first.clone();
    super::upgrade::drop_attempt_ids(&two(), &mut old);
    let board = super::progress::board("m3-gainer");
    for running in [&first, &old] {
        board.start(&movement_name(running, "w1a"), 1, Arc::default());
        board.status("done");
        board.clear_if(|m| withdrawn(m, running));
        assert_eq!(board.report().unwrap().status, "done", "still running");
        let back = running.withdraw_remove("dc1").unwrap();
        board.clear_if(|m| withdrawn(m, &back));
        assert!(board.report().is_none(), "withdrawn: no stale done");
    }
    let again = (first.withdraw_remove("dc1").unwrap())
        .begin_remove("w1a")
        .unwrap();
    assert!(withdrawn(&movement_name(&first, "w1a"), &again));
    assert!(!withdrawn(&movement_name(&again, "w1a"), &again));
    let finished = first.finish_remove("w1a").unwrap();
    assert!(!withdrawn(&movement_name(&first, "w1a"), &finished));
    assert!(!withdrawn("replacement of w1a by w1c", &two()));
}
