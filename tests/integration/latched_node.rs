//! A node whose storage latched a failed sync, seen end to end (issue 11):
//! on a one-datacenter cluster of three nodes at rf 3 with fault injection
//! on, `POST /faults/engine?fail=sync` makes dc1-n3's next WAL fsync fail
//! as a real one does. Its `/health` says not ready and its client port
//! refuses a put (UNAVAILABLE, `geokv-applied: no`); once gossip carries
//! its not-ready bit, a put at ALL through another node is UNAVAILABLE
//! "not applied" up front (never a "maybe"), a QUORUM put is acknowledged
//! and reads back, and reads still go to the latched node (a get at ALL).

use crate::common::*;
use geokv::proto::v1::*;
use std::time::{Duration, Instant};
use tonic::Code;

const LATCHED: &str = "dc1-n3";

/// The `geokv-applied` answer of a refusal.
fn applied(e: &tonic::Status) -> Option<String> {
    let v = e.metadata().get(geokv::proto::APPLIED_METADATA)?;
    v.to_str().ok().map(str::to_string)
}

/// Whether `e` is UNAVAILABLE with nothing applied.
fn not_applied(e: &tonic::Status) -> bool {
    e.code() == Code::Unavailable && applied(e).as_deref() == Some("no")
}

/// Polls `LATCHED`'s `/health` until it answers 503 (its periodic syncer
/// runs every second); the answer.
async fn until_not_ready(cluster: &Cluster) -> String {
    let addr = cluster.node(LATCHED).admin_address;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match admin(addr, "GET", "/health").await {
            Err(e) if e.contains("503") => return e,
            other if Instant::now() > deadline => panic!("still ready: {other:?}"),
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Puts at ALL through `c` until one is refused up front (the coordinator
/// heard the not-ready bit); how many tries that took.
async fn until_all_is_refused_up_front(c: &mut Kv) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    for tries in 1.. {
        let r = put(c, &format!("poll-{tries}"), "v", vec![], Consistency::All).await;
        match r {
            Err(e) if not_applied(&e) => return tries,
            _ if Instant::now() > deadline => panic!("ALL still sent after {tries} tries: {r:?}"),
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    unreachable!()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_latched_node_is_refused_writes_cluster_wide_and_still_read() {
    let cluster = Cluster::start(Spec::one_dc(3, 3)).await;
    let mut n1 = cluster.client("dc1-n1").await;
    put(&mut n1, "before", "v0", vec![], Consistency::All)
        .await
        .expect("every replica takes it before the latch");

    let latched_admin = cluster.node(LATCHED).admin_address;
    admin(latched_admin, "POST", "/faults/engine?fail=sync")
        .await
        .expect("fault injection is on");
    // (a) The latched node says so, and its client port refuses a put.
    let health = until_not_ready(&cluster).await;
    assert!(health.contains("engine writes refused"), "{health}");
    let mut n3 = cluster.client(LATCHED).await;
    let refused = put(&mut n3, "on-n3", "v", vec![], Consistency::One)
        .await
        .expect_err("a latched node takes no write");
    assert!(not_applied(&refused), "{refused:?}");

    // (b) Another coordinator counts it out once gossip carries the bit:
    // ALL is refused up front, and stays so (never a "maybe").
    let tries = until_all_is_refused_up_front(&mut n1).await;
    println!("ALL refused up front after {tries} tries");
    for i in 0..3 {
        let r = put(&mut n1, &format!("all-{i}"), "v", vec![], Consistency::All).await;
        let e = r.expect_err("ALL needs the latched node");
        assert!(not_applied(&e), "{e:?}");
        let counted_out = e.message().contains("but only 2 replica(s) alive");
        assert!(counted_out, "{}", e.message());
    }
    let mut n2 = cluster.client("dc1-n2").await;
    put(&mut n2, "quorum", "v1", vec![], Consistency::Quorum)
        .await
        .expect("two of three replicas take writes");
    let read = get(&mut n1, "quorum", Consistency::Quorum)
        .await
        .expect("reads");
    assert_eq!(values(&read), ["v1"]);

    // (c) Reads still go to it: ALL needs its answer.
    let read = get(&mut n1, "before", Consistency::All).await;
    assert_eq!(values(&read.expect("the latched node still reads")), ["v0"]);
    let one = get(&mut n2, "before", Consistency::One).await.expect("ONE");
    assert_eq!(values(&one), ["v0"]);
}
