//! The coordinator's write path under faults, against real node processes
//! (two datacenters of three nodes, rf {dc1:3, dc2:3}, `dc1_only {dc1:2}`):
//! what a client is told when a write fails after it was sent, what the
//! acknowledgement counts mean, and that a non-replica coordinator never
//! writes a second copy after an ambiguous failure.

use crate::common::*;
use geokv::proto::v1::*;
use std::time::Duration;
use tonic::Code;

fn options(level: Consistency) -> Option<RequestOptions> {
    Some(RequestOptions {
        consistency: level as i32,
        explicit_count: 0,
        timeout_ms: 3000,
    })
}

pub(crate) async fn put_in(
    c: &mut Kv,
    keyspace: &str,
    key: &str,
    value: &str,
    context: Vec<u8>,
    level: Consistency,
) -> Result<PutResponse, tonic::Status> {
    c.put(PutRequest {
        keyspace: keyspace.into(),
        key: key.as_bytes().to_vec(),
        value: value.as_bytes().to_vec(),
        context,
        options: options(level),
    })
    .await
    .map(|r| r.into_inner())
}

pub(crate) async fn get_in(
    c: &mut Kv,
    keyspace: &str,
    key: &str,
    level: Consistency,
) -> Result<GetResponse, tonic::Status> {
    c.get(GetRequest {
        keyspace: keyspace.into(),
        key: key.as_bytes().to_vec(),
        options: options(level),
    })
    .await
    .map(|r| r.into_inner())
}

/// Every sibling value, unsorted duplicates kept (two copies of one write
/// minted twice show up as two siblings).
pub(crate) fn all_values(r: &GetResponse) -> Vec<String> {
    let mut v: Vec<String> = r
        .siblings
        .iter()
        .map(|s| String::from_utf8_lossy(s.value.as_deref().unwrap_or(b"<tombstone>")).into())
        .collect();
    v.sort();
    v
}

/// A key of `keyspace` (named `prefix-N`) that `node` does not replicate in
/// dc1, so `node` coordinates it without being a replica.
fn key_not_on(cluster: &Cluster, keyspace: &str, prefix: &str, node: &str) -> String {
    (0..10_000)
        .map(|i| format!("{prefix}-{i}"))
        .find(|k| {
            replicas_in(cluster, keyspace, k, "dc1")
                .iter()
                .all(|n| n.id != node)
        })
        .unwrap_or_else(|| panic!("some key of {keyspace} is not on {node}"))
}

/// Says the write may have been applied, with a code that is not UNAVAILABLE.
fn assert_maybe_applied(e: &tonic::Status) {
    assert!(
        matches!(e.code(), Code::Aborted | Code::DeadlineExceeded),
        "a failure after sending is not {:?}: {}",
        e.code(),
        e.message()
    );
    assert!(
        e.message().contains("may have been applied"),
        "says the write may have been applied: {}",
        e.message()
    );
}

/// Defects 3 and 4: the coordinator (dc1-n1 here) is not a replica of the
/// key; the replica it hands the write to commits it and dies before
/// replying. The coordinator must not send the write to the next replica
/// (which would mint a second dot that the client's later delete cannot
/// cover); it reports the outcome as unknown and records the key for
/// anti-entropy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_replica_coordinator_never_writes_a_second_copy_after_an_ambiguous_failure() {
    let mut cluster = Cluster::start(Spec::two_dc()).await;
    // A key of `dc1_only {dc1:2}` that dc1-n1 does not replicate.
    let key = key_not_on(&cluster, "dc1_only", "fwd", "dc1-n1");
    let replicas = replicas_in(&cluster, "dc1_only", &key, "dc1");
    let first = replicas[0].id.clone();
    admin(
        cluster.node(&first).admin_address,
        "POST",
        "/faults/crash-after-write",
    )
    .await
    .expect("arm the crash");

    let mut c = cluster.client("dc1-n1").await;
    let e = put_in(&mut c, "dc1_only", &key, "v1", vec![], Consistency::One)
        .await
        .expect_err("the replica died before answering: the outcome is unknown");
    println!(
        "forwarded to {first}, which died: {:?}: {}",
        e.code(),
        e.message()
    );
    assert_maybe_applied(&e);
    assert!(
        cluster
            .metric("dc1-n1", "geokv_repair_recorded_total", "")
            .await
            >= 1.0,
        "the coordinator recorded the key for anti-entropy"
    );

    // The crashed replica comes back with what it committed.
    cluster.kill(&first);
    cluster.restart(&first).await;
    cluster.wait_all_up(Duration::from_secs(30)).await;
    let r = get_in(&mut c, "dc1_only", &key, Consistency::All)
        .await
        .expect("read at ALL");
    assert_eq!(
        all_values(&r),
        vec!["v1".to_string()],
        "one write, one version (a second dot would be a second sibling)"
    );
    // A delete with the context read covers every copy: nothing comes back.
    c.delete(DeleteRequest {
        keyspace: "dc1_only".into(),
        key: key.as_bytes().to_vec(),
        context: r.context,
        options: options(Consistency::All),
    })
    .await
    .expect("delete at ALL");
    for id in ["dc1-n1", "dc1-n2", "dc1-n3"] {
        let mut c = cluster.client(id).await;
        let r = get_in(&mut c, "dc1_only", &key, Consistency::All)
            .await
            .expect("read at ALL");
        assert!(
            r.siblings.is_empty(),
            "{id} still sees {:?}",
            all_values(&r)
        );
    }
}

/// The other side of defects 3 and 4: when the replica a write would be
/// forwarded to is dead but not yet known to be (the connection is
/// refused, so nothing was sent), the next replica takes the write, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarded_write_moves_on_only_when_nothing_was_sent() {
    let mut cluster = Cluster::start(Spec::two_dc()).await;
    let key = key_not_on(&cluster, "dc1_only", "next", "dc1-n1");
    let replicas = replicas_in(&cluster, "dc1_only", &key, "dc1");
    let (first, second) = (replicas[0].id.clone(), replicas[1].id.clone());
    cluster.kill(&first);
    // Long enough for dc1-n1 to see its connection to the dead node close
    // (a request written into a dying connection is rightly ambiguous),
    // far shorter than failure detection.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut c = cluster.client("dc1-n1").await;
    let r = put_in(&mut c, "dc1_only", &key, "v1", vec![], Consistency::One)
        .await
        .expect("the second replica takes it: nothing reached the first");
    assert_eq!(r.acks, 1, "{r:?}");
    let reader = cluster.replica_reader();
    assert_eq!(
        reader.holds(cluster.node(&second), "dc1_only", &key).await,
        Some(vec!["v1".to_string()]),
        "written once, on {second}"
    );
    cluster.restart(&first).await;
    cluster.wait_all_up(Duration::from_secs(30)).await;
    let r = get_in(&mut c, "dc1_only", &key, Consistency::All)
        .await
        .expect("read at ALL");
    assert_eq!(all_values(&r), vec!["v1".to_string()]);
}

/// Defect 14: hints for a down replica are not acknowledgements.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_count_replicas_and_hints_separately() {
    let mut cluster = Cluster::start(Spec::two_dc()).await;
    cluster.kill("dc1-n3");
    cluster
        .wait_seen("dc1-n1", "dc1-n3", false, Duration::from_secs(30))
        .await;
    let mut c = cluster.client("dc1-n1").await;
    let r = put_in(
        &mut c,
        "default",
        "k-lq",
        "v",
        vec![],
        Consistency::LocalQuorum,
    )
    .await
    .expect("LOCAL_QUORUM with two of three dc1 replicas");
    assert_eq!((r.acks, r.hints), (2, 1), "LOCAL_QUORUM: {r:?}");
    let r = put_in(
        &mut c,
        "default",
        "k-lo",
        "v",
        vec![],
        Consistency::LocalOne,
    )
    .await
    .expect("LOCAL_ONE");
    assert!(r.acks >= 1 && r.acks <= 2, "LOCAL_ONE acks: {r:?}");
    assert_eq!(r.hints, 1, "LOCAL_ONE: {r:?}");
    let r = c
        .delete(DeleteRequest {
            keyspace: "default".into(),
            key: b"k-lq".to_vec(),
            context: vec![],
            options: options(Consistency::LocalQuorum),
        })
        .await
        .expect("delete")
        .into_inner();
    assert_eq!((r.acks, r.hints), (2, 1), "delete at LOCAL_QUORUM: {r:?}");
}

/// Defect 7: UNAVAILABLE only when nothing was sent. Two dc1 replicas die;
/// before the failure detector notices, a LOCAL_QUORUM write is applied by
/// the coordinator and fails on the others: the client must be told it may
/// have been applied. Once they are known down, UNAVAILABLE, and the write
/// is really nowhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unavailable_means_nothing_was_sent() {
    let mut cluster = Cluster::start(Spec::two_dc()).await;
    let mut c = cluster.client("dc1-n1").await;
    put_in(
        &mut c,
        "default",
        "warm",
        "v",
        vec![],
        Consistency::LocalQuorum,
    )
    .await
    .expect("warm-up write");
    cluster.kill("dc1-n2");
    cluster.kill("dc1-n3");
    let e = put_in(
        &mut c,
        "default",
        "sent",
        "v",
        vec![],
        Consistency::LocalQuorum,
    )
    .await
    .expect_err("two of three dc1 replicas are dead");
    println!("after sending: {:?}: {}", e.code(), e.message());
    assert_maybe_applied(&e);
    assert!(
        e.message().contains("1 of 2"),
        "counts replica acknowledgements only: {}",
        e.message()
    );

    cluster
        .wait_seen("dc1-n1", "dc1-n2", false, Duration::from_secs(30))
        .await;
    cluster
        .wait_seen("dc1-n1", "dc1-n3", false, Duration::from_secs(30))
        .await;
    let e = put_in(
        &mut c,
        "default",
        "never",
        "v",
        vec![],
        Consistency::LocalQuorum,
    )
    .await
    .expect_err("known down up front");
    assert_eq!(e.code(), Code::Unavailable, "{}", e.message());
    let reader = cluster.replica_reader();
    for n in ["dc1-n1", "dc2-n1", "dc2-n2", "dc2-n3"] {
        assert_eq!(
            reader.holds(cluster.node(n), "default", "never").await,
            Some(Vec::new()),
            "UNAVAILABLE wrote nothing on {n}"
        );
    }
}

/// Defect 4: a non-replica coordinator used to append the remote-DC stream
/// entry to its own engine after the replica had committed the write, so a
/// crash in between left the write on one replica, never streamed. The
/// entry must be committed with the write, by the replica that minted it:
/// here the coordinator dies right after the acknowledgement, stays dead,
/// and the write still reaches the other datacenter once the link heals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_replica_coordinator_leaves_no_stream_entry_behind() {
    let mut spec = Spec::two_dc();
    spec.extra_keyspaces
        .push(("rf2", vec![("dc1", 2), ("dc2", 2)]));
    let mut cluster = Cluster::start(spec).await;
    let coordinator = "dc1-n1";
    let key = key_not_on(&cluster, "rf2", "streamed", coordinator);
    cluster.partition_dcs("dc1", "dc2", true).await;
    let mut c = cluster.client(coordinator).await;
    put_in(&mut c, "rf2", &key, "v", vec![], Consistency::LocalOne)
        .await
        .expect("LOCAL_ONE put with dc2 cut off");
    let reader = cluster.replica_reader();
    for r in replicas_in(&cluster, "rf2", &key, "dc2") {
        let held = reader.holds(&r, "rf2", &key).await;
        assert_eq!(held, Some(vec![]), "{} got it across the cut", r.id);
    }
    cluster.kill(coordinator);
    cluster.partition_dcs("dc1", "dc2", false).await;

    let started = std::time::Instant::now();
    for r in replicas_in(&cluster, "rf2", &key, "dc2") {
        loop {
            if reader.holds(&r, "rf2", &key).await == Some(vec!["v".to_string()]) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{} of dc2 lacks the write 30 s after the heal, with its \
                 coordinator dead: the stream entry was not with the replica",
                r.id
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
