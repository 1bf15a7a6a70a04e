//! `POST /faults/engine` (issue 11): on a node run with `--fault-injection`
//! it fails the engine's later syncs or writes the way a real failed fsync
//! does (the latch, `Cluster::serving`, `/health`); without the flag it is
//! refused as every fault route is, and the engine is untouched.

use super::*;
use crate::engine::{Engine, EngineError, EngineOptions, RocksEngine, WriteBatch};
use crate::local_cluster::admin_request;

/// An admin port over a RocksDB engine (in `dir`) and its view, fault
/// injection on or off; its address, the engine and the view.
async fn node(
    dir: &tempfile::TempDir,
    enabled: bool,
) -> (SocketAddr, Arc<RocksEngine>, crate::view::Cluster) {
    let rocks = Arc::new(RocksEngine::open(dir.path(), EngineOptions::default()).unwrap());
    let engine: Arc<dyn Engine> = rocks.clone();
    let seed = crate::layout::Layout::seed(&crate::topology::Topology::dev());
    let cluster = crate::view::Cluster::new(seed, "dc1-n1", Some(engine.clone())).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = watch::channel(false);
    let services = Services {
        cluster: Some(cluster.clone()),
        engine: Some(engine),
        ..Services::faults_only("dc1-n1", Arc::new(Faults::new(enabled)))
    };
    tokio::spawn(async move {
        let _tx = tx;
        serve_on(listener, services, rx).await
    });
    (addr, rocks, cluster)
}

fn a_write() -> WriteBatch {
    let mut b = WriteBatch::new();
    b.put_raw(crate::engine::Cf::Meta, b"probe", b"v");
    b
}

/// `fail=sync`: the next flush fails as an I/O error and latches; writes
/// are refused, the node is not ready and `/health` says why. Fails
/// before: no such route (404).
#[tokio::test]
async fn a_failed_sync_injected_over_the_admin_port_latches_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, rocks, cluster) = node(&dir, true).await;
    rocks.write(a_write()).expect("writes before");
    admin_request(addr, "POST", "/faults/engine?fail=sync")
        .await
        .expect("injected");
    let flushed = rocks.flush();
    assert!(
        matches!(&flushed, Err(EngineError::SyncFailed(e)) if e.contains("injected fsync")),
        "{flushed:?}"
    );
    let refused = rocks.write(a_write());
    assert!(
        matches!(refused, Err(EngineError::SyncFailed(_))),
        "{refused:?}"
    );
    assert!(rocks.sync_failure_marked().unwrap(), "marked as a real one");
    assert!(cluster.serving().is_err(), "not ready");
    let health = admin_request(addr, "GET", "/health").await.unwrap_err();
    assert!(health.to_string().contains("503"), "{health}");
    // Healing stops the injection, not the latch.
    admin_request(addr, "POST", "/faults/engine?fail=none")
        .await
        .expect("healed");
    assert!(rocks.flush().is_err(), "still latched");
}

/// `fail=write`: the next write fails as a failed WAL write and latches.
/// A bad or missing `fail` is 400.
#[tokio::test]
async fn a_failed_write_injected_over_the_admin_port_latches_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, rocks, cluster) = node(&dir, true).await;
    for bad in ["/faults/engine", "/faults/engine?fail=disk"] {
        let e = admin_request(addr, "POST", bad).await.unwrap_err();
        assert!(e.to_string().contains("400"), "{bad}: {e}");
    }
    rocks.write(a_write()).expect("nothing injected yet");
    admin_request(addr, "POST", "/faults/engine?fail=write")
        .await
        .expect("injected");
    let failed = rocks.write(a_write());
    assert!(
        matches!(&failed, Err(EngineError::SyncFailed(e)) if e.contains("injected WAL write")),
        "{failed:?}"
    );
    assert!(cluster.serving().is_err(), "not ready");
}

/// Without `--fault-injection` the route is refused (403, as every fault
/// route) and the engine keeps taking writes and syncs.
#[tokio::test]
async fn without_fault_injection_the_engine_route_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, rocks, cluster) = node(&dir, false).await;
    let e = (admin_request(addr, "POST", "/faults/engine?fail=sync").await).unwrap_err();
    assert!(e.to_string().contains("403"), "{e}");
    rocks.flush().expect("syncs");
    rocks.write(a_write()).expect("writes");
    assert!(cluster.serving().is_ok(), "ready");
}
