//! The start's recovery after a lost WAL tail (audit11 D2), a removed
//! node's start (D4), on the memory engine, and the exit code a node
//! whose removal is decided stops with (`node::at_stop`).

use super::{place, start_engine, Starting};
use crate::engine::testing::{Hooked, Threads};
use crate::engine::{incarnation, Cf, Engine, MemoryEngine, WriteBatch};
use crate::layout::{Layout, NewNode, NodeState};
use crate::movement::cursor::{self, Cursor, Pull};
use crate::node::NodeError;
use crate::repair::plan::RangeTable;
use crate::ring::{Ring, TokenRange};
use crate::view::{Cluster, ClusterView};
use std::sync::Arc;

/// dc1 = a, b, c (rf 2), dc2 = x: `d` joining dc1.
fn joining() -> Arc<ClusterView> {
    let topo = crate::topology::testing::yaml(
        &[("dc1", &["a", "b", "c"]), ("dc2", &["x"])],
        &[("dc1", 2), ("dc2", 1)],
    );
    let seed = Layout::seed(&crate::topology::Topology::parse("t.yaml", &topo).unwrap());
    let a = |p: u16| format!("127.0.0.9:{p}").parse().unwrap();
    let d = NewNode {
        id: "d".into(),
        client_address: a(1),
        peer_address: a(2),
        admin_address: a(3),
    };
    let layout = seed.begin_join(d, "dc1", "r9", &[42, 1 << 62]).unwrap();
    Cluster::new(layout, "d", None).unwrap().current()
}

const RANGE: TokenRange = TokenRange { start: 0, end: 42 };

/// A data directory of `d` that ran once with a join, a removal's copy
/// and a leave's push under way, stopped cleanly or not, and whose
/// machine rebooted since.
fn after_a_reboot(clean: bool) -> MemoryEngine {
    let engine = MemoryEngine::default();
    ran_before_a_reboot(&engine, clean);
    engine
}

fn ran_before_a_reboot(engine: &dyn Engine, clean: bool) {
    incarnation::on_start(engine).unwrap();
    let mut b = WriteBatch::new();
    let after = Cursor::After(b"k7".to_vec());
    cursor::save(&mut b, &Pull::Join.id("d"), "ks", RANGE, &after);
    cursor::save(
        &mut b,
        &format!("{}/a", Pull::Remove.id("z")),
        "ks",
        RANGE,
        &after,
    );
    cursor::save(&mut b, "leave-d-to-a", "ks", RANGE, &Cursor::Done);
    b.put_raw(Cf::Meta, b"boot_id", b"a boot before this one");
    engine.write(b).unwrap();
    if clean {
        incarnation::on_clean_shutdown(engine).unwrap();
    }
}

fn start(engine: &dyn Engine, view: &ClusterView) -> incarnation::Start {
    try_start(engine, view).unwrap()
}

fn try_start(engine: &dyn Engine, view: &ClusterView) -> Result<incarnation::Start, NodeError> {
    try_start_as(engine, view, false)
}

/// A start configured `--durability sync` (`synced`) or periodic.
fn try_start_as(
    engine: &dyn Engine,
    view: &ClusterView,
    synced: bool,
) -> Result<incarnation::Start, NodeError> {
    use crate::engine::boot::RunDurability;
    let (previous_generation, generation) = super::next_generation(engine).unwrap();
    let starting = Starting {
        view,
        me: view.me().unwrap(),
        drain_only: false,
        durability: match synced {
            true => RunDurability::Sync,
            false => RunDurability::Periodic,
        },
        previous_generation,
        generation,
        record: true,
    };
    let err = |e: crate::engine::EngineError| NodeError::Layout(format!("{e}"));
    start_engine(engine, &starting, &err)
}

/// Every vnode range of the ring after the movement that `d` replicates
/// there and not before: computed from the rings, not from the pending
/// ranges the recovery reads.
fn gained_vnode_ranges(view: &ClusterView) -> Vec<TokenRange> {
    let after = Ring::from_layout(&view.layout.also_written());
    let d = after.node_by_id("d").unwrap().idx;
    let table = RangeTable::new(&after, "ks").unwrap();
    (table.iter().filter(|p| p.replicas.contains(&d)))
        .map(|p| p.range)
        .collect()
}

/// A joiner (owning nothing yet) that may have lost its unsynced WAL tail
/// forgets its pull cursors, so its copy runs again from the start, and a
/// leave's push cursors, which may be back from a lost forget
/// (review-cancel33 M1), and records every range it gains for
/// anti-entropy; after a clean shutdown it keeps them all and records
/// nothing.
#[test]
fn an_unclean_start_forgets_pull_cursors_and_records_pending_ranges() {
    let view = joining();
    let gained = gained_vnode_ranges(&view);
    assert!(gained.len() > 1, "d gains ranges: {gained:?}");
    for clean in [true, false] {
        let engine = after_a_reboot(clean);
        assert_eq!(start(&engine, &view).kept, clean);
        let load = |id: &str| cursor::load(&engine, id, "ks", RANGE).unwrap();
        let pulled = [Pull::Join.id("d"), format!("{}/a", Pull::Remove.id("z"))];
        let records = crate::repair::records::load_records(&engine).unwrap();
        if clean {
            for id in &pulled {
                assert_eq!(load(id), Cursor::After(b"k7".to_vec()), "{id} kept");
            }
            assert!(records.is_empty(), "{records:?}");
        } else {
            for id in &pulled {
                assert_eq!(load(id), Cursor::Start, "{id} forgotten");
            }
            for range in &gained {
                let held = |r: &&crate::repair::plan::Recorded| {
                    r.keyspace == "ks" && range.contains(r.token)
                };
                assert!(
                    records.iter().any(|r| held(&r)),
                    "{range} not recorded: {records:?}"
                );
            }
            assert!(records.iter().all(|r| r.dest == "node:d"), "{records:?}");
        }
        let pushed = if clean { Cursor::Done } else { Cursor::Start };
        assert_eq!(load("leave-d-to-a"), pushed, "a push cursor: clean {clean}");
    }
}

/// The recovery is decided on the durability of the run that may have
/// lost its tail, not on this start's (review-final30 M2): a periodic
/// run restarted with `--durability sync` after a reboot recovers; a
/// sync run, restarted after a reboot with either, has nothing to
/// recover; the run after a periodic one recovers again.
#[test]
fn the_recovery_is_decided_on_the_previous_runs_durability() {
    let view = joining();
    let engine = after_a_reboot(false);
    let pulled = || cursor::load(&engine, &Pull::Join.id("d"), "ks", RANGE).unwrap();
    let records = || crate::repair::records::load_records(&engine).unwrap().len();
    // The previous run was periodic (nothing noted): recover, though this
    // start is sync.
    assert!(!try_start_as(&engine, &view, true).unwrap().kept);
    assert_eq!(
        pulled(),
        Cursor::Start,
        "periodic run, sync start: forgotten"
    );
    assert!(records() > 0, "periodic run, sync start: recorded");
    // Handed over (as the node's record hand-over deletes them), so a
    // second recovery, which records the same keys again, shows.
    let all = crate::repair::records::load_records(&engine).unwrap();
    crate::repair::records::delete_records(&engine, &all).unwrap();
    // The sync run stops uncleanly, the machine reboots: whatever this
    // start's durability, nothing acknowledged was unsynced.
    for synced_now in [true, false] {
        ran_before_a_reboot(&engine, false);
        try_start_as(&engine, &view, synced_now).unwrap();
        let want = Cursor::After(b"k7".to_vec());
        assert_eq!(pulled(), want, "sync run (now sync: {synced_now}): kept");
        assert_eq!(records(), 0, "sync run: nothing recorded");
    }
    // That last run was periodic: the next unclean start recovers.
    ran_before_a_reboot(&engine, false);
    try_start_as(&engine, &view, true).unwrap();
    assert_eq!(pulled(), Cursor::Start, "periodic run again: forgotten");
    assert!(records() > 0, "periodic run again: recorded");
}

/// A build that does not note its durability (a downgrade) started after
/// a sync run and ran periodic: the sync note, tagged with a generation
/// that is not the previous start's, counts as not synced, so the next
/// unclean start after a reboot recovers (review-recover31 L1).
#[test]
fn a_note_of_a_start_before_the_previous_one_does_not_count_as_synced() {
    let view = joining();
    let engine = after_a_reboot(false);
    let pulled = || cursor::load(&engine, &Pull::Join.id("d"), "ks", RANGE).unwrap();
    try_start_as(&engine, &view, true).unwrap();
    // The older build's start: it takes a generation and notes nothing.
    super::next_generation(&engine).unwrap();
    ran_before_a_reboot(&engine, false);
    try_start_as(&engine, &view, true).unwrap();
    assert_eq!(
        pulled(),
        Cursor::Start,
        "an older build ran since: forgotten"
    );
}

/// A recovery that fails part-way (here its records' write) leaves the
/// boot unnoted, so the next start recovers again instead of taking the
/// machine for not restarted (review-elastic2-30 M3).
#[test]
fn a_recovery_that_failed_runs_again_at_the_next_start() {
    let view = joining();
    let engine = Hooked::new(Threads::new());
    ran_before_a_reboot(&engine, false);
    // The generation's write, the incarnation's, then the forget's, then
    // the records' fails.
    engine.fail_after(3);
    assert!(
        try_start(&engine, &view).is_err(),
        "the records' write failed"
    );
    assert!(crate::repair::records::load_records(&engine)
        .unwrap()
        .is_empty());
    let started = start(&engine, &view);
    assert!(!started.kept && !started.first);
    let load = cursor::load(&engine, &Pull::Join.id("d"), "ks", RANGE).unwrap();
    assert_eq!(load, Cursor::Start, "forgotten again");
    let records = crate::repair::records::load_records(&engine).unwrap();
    assert!(!records.is_empty(), "recorded this time");
}

/// review-tidy34 M3: a failed sync marks the data directory, and the next
/// start recovers as after a lost tail (cursors forgotten, ranges
/// recorded) in the same boot, after a sync run. A start that fails
/// before its note (here its own sync fails) leaves the mark, so the next
/// recovers; that start removes it, and the unclean start after it, a
/// sync run in the same boot, recovers nothing. Fails before (by reading):
/// only a new boot id or a run not `sync` counted, so the cursor was kept.
#[test]
fn a_start_after_a_failed_sync_recovers_the_tail_in_the_same_boot() {
    use crate::engine::{Durability, EngineOptions, RocksEngine};
    let view = joining();
    let dir = tempfile::tempdir().unwrap();
    let open = || {
        let opts = EngineOptions {
            durability: Durability::Sync,
            block_cache_bytes: 8 << 20,
            ..EngineOptions::default()
        };
        RocksEngine::open(dir.path(), opts).unwrap()
    };
    let pulled = |engine: &dyn Engine| cursor::load(engine, &Pull::Join.id("d"), "ks", RANGE);
    let pull = |engine: &dyn Engine| {
        let mut b = WriteBatch::new();
        let after = Cursor::After(b"k7".to_vec());
        cursor::save(&mut b, &Pull::Join.id("d"), "ks", RANGE, &after);
        engine.write(b)
    };
    let engine = open();
    assert!(try_start_as(&engine, &view, true).unwrap().first);
    pull(&engine).unwrap();
    engine.fail_writes();
    assert!(pull(&engine).is_err(), "a put's group-commit fsync failed");
    drop(engine);
    let engine = open();
    engine.fail_flushes();
    assert!(
        try_start_as(&engine, &view, true).is_err(),
        "its sync failed"
    );
    drop(engine);
    let engine = open();
    assert!(engine.sync_failure_marked().unwrap(), "still marked");
    assert!(!try_start_as(&engine, &view, true).unwrap().kept);
    assert_eq!(pulled(&engine).unwrap(), Cursor::Start, "forgotten");
    let records = crate::repair::records::load_records(&engine).unwrap();
    assert!(!records.is_empty(), "recorded");
    crate::repair::records::delete_records(&engine, &records).unwrap();
    assert!(
        !engine.sync_failure_marked().unwrap(),
        "removed once recovered"
    );
    pull(&engine).unwrap();
    drop(engine);
    let engine = open();
    try_start_as(&engine, &view, true).unwrap();
    let want = Cursor::After(b"k7".to_vec());
    assert_eq!(
        pulled(&engine).unwrap(),
        want,
        "a sync run, same boot: kept"
    );
    assert!(crate::repair::records::load_records(&engine)
        .unwrap()
        .is_empty());
}

/// A node whose stored layout says it was removed starts drain-only (it
/// hands its queued hints over, then stops with `NodeError::Removed`),
/// instead of failing as unknown naming the topology file; a node the
/// layout does not know still fails so.
#[test]
fn a_removed_node_starts_drain_only_and_an_unknown_one_is_refused() {
    let topo = crate::topology::testing::four_and_one();
    let seed = Layout::seed(&crate::topology::Topology::parse("t.yaml", &topo).unwrap());
    let leaving = seed.begin_leave("d").unwrap();
    let removing = crate::movement::remove::begin(&leaving, "d", &|_| false).unwrap();
    let removed = removing.finish_remove("d").unwrap();
    let view = Cluster::new(removed, "d", None).unwrap().current();
    let (me, out) = place(&view, "d", "t.yaml").unwrap();
    assert_eq!(out, Some(NodeState::Removed));
    assert_eq!((me.id.as_str(), me.idx), ("d", crate::view::NOT_A_MEMBER));
    match place(&view, "zz", "t.yaml") {
        Err(NodeError::UnknownNode(id, file)) => assert_eq!((&*id, &*file), ("zz", "t.yaml")),
        other => panic!("want UnknownNode, got {:?}", other.map(|(_, o)| o)),
    }
    let text = NodeError::Removed("d".into()).to_string();
    assert!(
        text.contains("removenode d") && text.contains("new id"),
        "{text}"
    );
    assert_eq!(NodeError::Removed("d".into()).exit_code(), 3);
}

/// A node whose removal is decided exits 3: `Removed` once its queues
/// are handed over, `RemovedBeforeHandOver` (start it again, do not wipe
/// it) when stopped before (review-recover31 M1), also when no task saw
/// the removal: the layout in force decides (L2). A task that failed
/// before the hand-over wins over the removal: exit 1, so a supervisor
/// starts it again and that start hands the queues over
/// (review-recover2-31 N1).
#[test]
fn a_decided_removal_exits_3_unless_a_task_failed_before_its_queues_were_handed_over() {
    use crate::movement::control::Ended;
    use crate::node::{at_stop, removal_decided, AtStop};
    let topo = crate::topology::testing::four_and_one();
    let parsed = crate::topology::Topology::parse("t.yaml", &topo).unwrap();
    let leaving = Layout::seed(&parsed).begin_leave("d").unwrap();
    let removing = crate::movement::remove::begin(&leaving, "d", &|_| false).unwrap();
    let decided = |l: &Layout| removal_decided(&Cluster::new(l.clone(), "d", None).unwrap(), "d");
    assert!(!decided(&leaving) && decided(&removing));
    let failure = ["join: node 'd' was removed".to_string()];
    let exit = |ended, decided, failed: bool| {
        let failed: &[String] = if failed { &failure } else { &[] };
        let at = AtStop {
            ended,
            decided,
            failed,
            clean: true,
        };
        at_stop(at, "d")
    };
    assert!(exit(None, decided(&leaving), false).is_ok());
    for (ended, decided) in [(None, decided(&removing)), (Some(Ended::Stopped), true)] {
        let e = exit(ended, decided, false).expect_err("decided");
        assert!(matches!(e, NodeError::RemovedBeforeHandOver(_)), "{e}");
        assert_eq!(e.exit_code(), 3);
        assert!(e.to_string().contains("start it again"), "{e}");
        let e = exit(ended, decided, true).expect_err("a task failed");
        assert!(matches!(e, NodeError::Tasks(_)), "{ended:?}: {e}");
        assert_eq!(e.exit_code(), 1, "restarted, it hands its queues over");
    }
    for failed in [false, true] {
        let e = exit(Some(Ended::HandedOver), true, failed).unwrap_err();
        assert!(
            matches!(e, NodeError::Removed(_)) && e.exit_code() == 3,
            "{e}"
        );
    }
}
