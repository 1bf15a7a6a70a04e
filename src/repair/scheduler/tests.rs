//! Unit tests of `repair::scheduler`.

use super::*;
use crate::engine::memory::MemoryEngine;
use crate::engine::testing::{Hooked, Hooks};
use crate::engine::{Engine, EngineError, Limits};
use crate::repair::records;
use crate::replica::Replica;
use crate::ring::Ring;
use crate::topology::Topology;
use crate::transport::faults::Faults;
use crate::transport::Peers;

/// Only this node is believed up: every session is skipped, quickly.
struct OnlyMe(String);
impl Liveness for OnlyMe {
    fn is_up(&self, n: &str) -> bool {
        n == self.0
    }
}

fn repair(engine: Arc<dyn Engine>, interval: Duration) -> (Arc<Repair>, Arc<Ring>, NodeIdx) {
    let cluster = crate::view::Cluster::fixed(&Topology::dev(), "dc1-n1");
    let ring = cluster.current().ring.clone();
    let me_info = ring.node_by_id("dc1-n1").expect("dev topology").clone();
    let me = me_info.idx;
    let io = SessionIo::new(
        cluster,
        Arc::new(Replica::new(engine.clone(), "dc1-n1", 64)),
        Arc::new(Peers::new(
            me_info,
            Arc::new(Faults::new(false)),
            &crate::transport::tls::Tls::insecure(),
        )),
        SessionLimits::default(),
    );
    let config = RepairConfig {
        interval,
        recorded_poll: Duration::from_millis(10),
        ..RepairConfig::default()
    };
    let r = Repair::new(io, engine, Arc::new(OnlyMe("dc1-n1".into())), config);
    (Arc::new(r), ring, me)
}

/// A node whose ranges were last swept more than an interval ago sweeps
/// them soon after it starts, not an interval after each start (a node
/// restarted more often than that would never sweep).
#[tokio::test]
async fn an_overdue_sweep_runs_soon_after_a_restart() {
    let engine: Arc<dyn Engine> = Arc::new(MemoryEngine::new(Limits::default()));
    let hour = Duration::from_secs(3600);
    let first_start = crate::clock::now_ms() - 2 * 3_600_000;
    let clock = SweepClock::open(engine.clone(), hour, first_start).expect("clock");
    let (r, ring, me) = repair(engine, hour);
    let plan = sweep_plan(&ring, "default", me).expect("plan");
    assert!(!plan.is_empty());
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(r.clone().run(rx));
    let started = Instant::now();
    let swept = |p: &RangePlan| clock.last_swept("default", p.range).expect("read");
    while plan.iter().any(|p| swept(p) <= first_start) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "an overdue sweep did not run after the start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Swept now: not due again for another interval.
    let now = crate::clock::now_ms();
    for p in &plan {
        assert!(!clock.is_due("default", p.range, now).expect("read"));
    }
    tx.send(true).expect("stop");
    task.await.expect("run ends");
}

/// A node outside the layout in force (a joining node before its first
/// layout, a removed one) that still holds anti-entropy records refuses the
/// pass with a typed error: it used to index the ring with its
/// not-a-member index and panic, killing the background repair task.
#[tokio::test]
async fn a_node_outside_the_layout_refuses_a_pass_instead_of_panicking() {
    let engine: Arc<dyn Engine> = Arc::new(MemoryEngine::new(Limits::default()));
    let mut b = crate::engine::WriteBatch::new();
    let key = crate::repair::plan::repair_key("default", 42, 1).unwrap();
    b.put_raw(crate::engine::Cf::Meta, &key, b"node:dc1-n2");
    engine.write(b).expect("record");
    let cluster = crate::view::Cluster::fixed(&Topology::dev(), "outsider");
    assert_eq!(cluster.current().me_idx(), NOT_A_MEMBER);
    let me_info = cluster.current().members()[0].clone();
    let io = SessionIo::new(
        cluster,
        Arc::new(Replica::new(engine.clone(), "outsider", 64)),
        Arc::new(Peers::new(
            me_info,
            Arc::new(Faults::new(false)),
            &crate::transport::tls::Tls::insecure(),
        )),
        SessionLimits::default(),
    );
    let r = Repair::new(
        io,
        engine.clone(),
        Arc::new(OnlyMe("outsider".into())),
        RepairConfig::default(),
    );
    let err = r.recorded().await.expect_err("no pass outside the layout");
    assert!(
        matches!(err, RepairError::NotAMember { version: 1 }),
        "{err}"
    );
    let err = r
        .sweep(None)
        .await
        .expect_err("no sweep outside the layout");
    assert!(matches!(err, RepairError::NotAMember { .. }), "{err}");
    assert_eq!(
        records::load_records(&*engine).expect("load").len(),
        1,
        "the record is kept"
    );
}

/// Engine hooks that run a hook before the first write once armed (the
/// repair race below).
#[derive(Default)]
struct Armed {
    hook: parking_lot::Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl Hooks for Armed {
    fn before_write(&self, _batch: &crate::engine::WriteBatch) -> Result<(), EngineError> {
        let hook = self.hook.lock().take();
        if let Some(hook) = hook {
            hook();
        }
        Ok(())
    }
}

/// Third review, item 4: a view installed after the pass checked
/// `view_changed()` but before its records were deleted still had them
/// deleted, although the repair they asked for was done in a view no
/// longer in force. The deletion must commit in the pinned view: a new
/// view is either in force before it (the records stay) or only after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_installed_just_before_the_records_are_deleted_keeps_them() {
    let hooked = Arc::new(Hooked::new(Armed::default()));
    let engine: Arc<dyn Engine> = hooked.clone();
    // A record of a keyspace the layout does not have: dropped by a pass
    // whose view did not change.
    let mut b = crate::engine::WriteBatch::new();
    b.put_raw(
        crate::engine::Cf::Meta,
        &crate::repair::plan::repair_key("gone", 42, 1).unwrap(),
        b"node:dc1-n2",
    );
    engine.write(b).expect("record");
    let cluster = crate::view::Cluster::fixed(&Topology::dev(), "dc1-n1");
    let me_info = cluster.current().me().expect("member").clone();
    let io = SessionIo::new(
        cluster.clone(),
        Arc::new(Replica::new(engine.clone(), "dc1-n1", 64)),
        Arc::new(Peers::new(
            me_info,
            Arc::new(Faults::new(false)),
            &crate::transport::tls::Tls::insecure(),
        )),
        SessionLimits::default(),
    );
    let r = Repair::new(
        io,
        engine.clone(),
        Arc::new(OnlyMe("dc1-n1".into())),
        RepairConfig::default(),
    );
    // Right before the deletion commits, another thread installs v2 (and
    // is given a moment to finish); we note the view the deletion met.
    let mut next = (*cluster.current().layout).clone();
    next.version += 1;
    let (installer, met) = (cluster.clone(), Arc::new(parking_lot::Mutex::new(None)));
    let met_in_hook = met.clone();
    *hooked.hook.lock() = Some(Box::new(move || {
        let (tx, rx) = std::sync::mpsc::channel();
        let other = installer.clone();
        std::thread::spawn(move || {
            other.install(next).expect("install");
            let _ = tx.send(());
        });
        let _ = rx.recv_timeout(Duration::from_millis(300));
        *met_in_hook.lock() = Some(installer.current().version());
    }));
    r.recorded().await.expect("pass");
    let left = records::load_records(&*engine).expect("load").len();
    let met = met.lock().expect("the deletion was attempted");
    assert!(
        left == 1 || met == 1,
        "the records were deleted while view v{met} was in force, not the pinned v1"
    );
    let waited = Instant::now();
    while cluster.current().version() != 2 {
        assert!(
            waited.elapsed() < Duration::from_secs(5),
            "v2 never installed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
