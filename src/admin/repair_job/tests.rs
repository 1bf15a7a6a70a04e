//! Unit tests of `admin::repair_job`: where a started sweep runs.

use super::*;
use crate::engine::memory::MemoryEngine;
use crate::engine::{Engine, Limits};
use crate::membership::AlwaysUp;
use crate::repair::{Repair, RepairConfig, SessionIo, SessionLimits};
use crate::replica::Replica;
use crate::tasks::Spawner;
use crate::topology::Topology;
use crate::transport::faults::Faults;
use crate::transport::Peers;

fn admin(spawner: Spawner) -> Admin {
    let engine: Arc<dyn Engine> = Arc::new(MemoryEngine::new(Limits::default()));
    let cluster = crate::view::Cluster::fixed(&Topology::dev(), "dc1-n1");
    let me = (cluster.current().ring.node_by_id("dc1-n1"))
        .expect("dev topology")
        .clone();
    let faults = Arc::new(Faults::new(false));
    let io = SessionIo::new(
        cluster,
        Arc::new(Replica::new(engine.clone(), "dc1-n1", 64)),
        Arc::new(Peers::new(
            me,
            faults.clone(),
            &crate::transport::tls::Tls::insecure(),
        )),
        SessionLimits::default(),
    );
    let repair = Repair::new(io, engine, Arc::new(AlwaysUp), RepairConfig::default());
    Admin {
        node_id: "dc1-n1".into(),
        metrics: super::super::install_metrics(),
        faults,
        repair: Some(Arc::new(repair)),
        cluster: None,
        control: None,
        engine: None,
        guard: super::super::Guard::open(),
        spawner,
    }
}

/// Issue 10: the sweep of `POST /repair/start` ran detached
/// (`tokio::spawn`), so the node's stop neither waited for it nor ended
/// it. It is now handed to the node's task set, named; one handed over
/// after the node's stop is dropped unstarted (`tasks::Spawner`).
#[tokio::test]
async fn a_started_repair_runs_in_the_nodes_task_set() {
    let (spawner, mut handed) = Spawner::channel();
    let job = Arc::new(Mutex::new(Job::default()));
    let q = StartQuery {
        keyspace: None,
        dc: None,
    };
    let answer = start(State(admin(spawner)), Query(q), job.clone()).await;
    assert_eq!(answer.status(), StatusCode::ACCEPTED);
    let spawned = (handed.try_recv()).expect("the sweep is handed to the node's task set");
    assert_eq!(spawned.name, "admin repair");
    drop(spawned);
    assert_eq!(job.lock().status.state, "running", "dropped: never ran");
}
