//! SIGTERM is a graceful shutdown (`node::tasks`): a node stopped while
//! writers are busy stops accepting, lets the writes in flight finish,
//! ends its loops, syncs RocksDB, writes its clean-shutdown marker and
//! exits 0 within a bound. Every write it acknowledged is on its disk, the
//! database reopens without errors, and after a restart every acknowledged
//! write reads back. One node at rf 1, so "acknowledged" means "written
//! on this node's disk".

use crate::common::*;
use geokv::engine::{Cf, Engine, EngineOptions, RocksEngine};
use geokv::proto::v1::Consistency;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const NODE: &str = "dc1-n1";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_during_writes_exits_0_and_keeps_every_acknowledged_write() {
    let mut c = Cluster::start(Spec::one_dc(1, 1)).await;
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4 {
        let client = c.client(NODE).await;
        writers.push(tokio::spawn(writer(
            vec![client],
            format!("sigterm-{w}"),
            stop.clone(),
        )));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    c.signal(NODE, libc::SIGTERM);
    let began = Instant::now();
    let exit = c.wait_exit(NODE, Duration::from_secs(60)).await;
    let took = began.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    for w in writers {
        acked.extend(w.await.unwrap());
    }
    let log = c.log(NODE);
    assert!(exit.success(), "SIGTERM: exited {exit}\n{log}");
    // The node's own bound is 5 s of draining plus 1 s of linger.
    assert!(
        took < Duration::from_secs(20),
        "took {took:?} to stop\n{log}"
    );
    assert!(log.contains("node stopped"), "{log}");
    assert!(acked.len() > 20, "only {} writes acknowledged", acked.len());

    // The database reopens cleanly, with the marker of a clean shutdown
    // for the incarnation in use, and holds every acknowledged write.
    let db = c.data_dir(NODE).join("db");
    {
        let engine = RocksEngine::open(&db, EngineOptions::default())
            .unwrap_or_else(|e| panic!("reopening {}: {e}", db.display()));
        let incarnation = engine.get_raw(Cf::Meta, b"incarnation").unwrap();
        let marker = engine.get_raw(Cf::Meta, b"clean_shutdown").unwrap();
        assert!(incarnation.is_some());
        assert_eq!(marker, incarnation, "no clean-shutdown marker");
        let missing: Vec<&String> = (acked.iter())
            .filter(|k| {
                engine
                    .get_versions("default", k.as_bytes())
                    .unwrap()
                    .is_none()
            })
            .collect();
        assert!(
            missing.is_empty(),
            "{} acknowledged writes not on disk: {:?}",
            missing.len(),
            &missing[..missing.len().min(10)]
        );
    }
    let rocks_log = std::fs::read_to_string(db.join("LOG")).unwrap_or_default();
    assert!(
        !rocks_log.contains("Corruption") && !rocks_log.contains("[ERROR]"),
        "RocksDB recovery complained:\n{rocks_log}"
    );

    c.restart(NODE).await;
    let mut r = c.client(NODE).await;
    assert_all_read(&mut r, &acked, Consistency::One, Duration::from_secs(10)).await;
}
