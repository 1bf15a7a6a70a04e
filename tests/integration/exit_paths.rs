//! How a real `geokv node` process ends when its stop cannot be clean
//! (`cli::node`: the bounded close, the runtime's bounded stop, `_exit`).
//! A replica write stuck for good (the `stall-next-write` fault: a batch
//! from a peer holds the replica's write pass and never returns, as a
//! write in a hung disk would) must not hold the process: SIGTERM ends it
//! with exit code 1, within a bound, without the clean-shutdown marker (the
//! next start recovers in full); a second signal during that stop ends it
//! at once with 128 + the signal. The clean path (exit 0 and the marker)
//! is `graceful_shutdown`'s.

use crate::common::*;
use geokv::engine::{Cf, Engine, EngineOptions, RocksEngine};
use geokv::proto::v1::Consistency;
use std::time::{Duration, Instant};

const STUCK: &str = "dc1-n1";
const PEER: &str = "dc1-n2";

/// Two nodes replicating everything; `STUCK` has a replica write from
/// `PEER` stuck for good (the write, at ONE, acknowledged by `PEER`).
async fn with_a_stuck_write() -> Cluster {
    let c = Cluster::start(Spec::one_dc(2, 2)).await;
    admin(
        c.node(STUCK).admin_address,
        "POST",
        "/faults/stall-next-write",
    )
    .await
    .expect("arm the stall");
    let mut kv = c.client(PEER).await;
    put(&mut kv, "stuck", "v", vec![], Consistency::One)
        .await
        .expect("acknowledged by the peer");
    let began = Instant::now();
    while !c.log(STUCK).contains("stalls for good") {
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "the write never reached {STUCK}\n{}",
            c.log(STUCK)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    c
}

/// Whether the node's database holds the clean-shutdown marker of the
/// incarnation in use.
fn marked_clean(c: &Cluster, id: &str) -> bool {
    let db = c.data_dir(id).join("db");
    let engine = RocksEngine::open(&db, EngineOptions::default())
        .unwrap_or_else(|e| panic!("reopening {}: {e}", db.display()));
    let incarnation = engine.get_raw(Cf::Meta, b"incarnation").unwrap();
    let marker = engine.get_raw(Cf::Meta, b"clean_shutdown").unwrap();
    incarnation.is_some() && marker == incarnation
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_write_ends_the_process_with_1_within_the_bound_and_no_marker() {
    let mut c = with_a_stuck_write().await;
    c.signal(STUCK, libc::SIGTERM);
    let began = Instant::now();
    let exit = c.wait_exit(STUCK, Duration::from_secs(90)).await;
    let took = began.elapsed();
    let log = c.log(STUCK);
    assert_eq!(exit.code(), Some(1), "exited {exit}\n{log}");
    // The task set's grace, the close's 3 s and the runtime's 2 s.
    assert!(took < Duration::from_secs(45), "took {took:?}\n{log}");
    assert!(log.contains("still running"), "{log}");
    assert!(!marked_clean(&c, STUCK), "a clean-shutdown marker\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_during_a_stuck_stop_exits_at_once_with_128_plus_it() {
    let mut c = with_a_stuck_write().await;
    c.signal(STUCK, libc::SIGTERM);
    let began = Instant::now();
    while !c.log(STUCK).contains("stopping gracefully") {
        assert!(
            began.elapsed() < Duration::from_secs(10),
            "{}",
            c.log(STUCK)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    c.signal(STUCK, libc::SIGINT);
    let exit = c.wait_exit(STUCK, Duration::from_secs(30)).await;
    let log = c.log(STUCK);
    assert_eq!(
        exit.code(),
        Some(128 + libc::SIGINT),
        "exited {exit}\n{log}"
    );
    assert!(log.contains("second signal"), "{log}");
    assert!(!marked_clean(&c, STUCK), "a clean-shutdown marker\n{log}");
}
