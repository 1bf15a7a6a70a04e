//! Cluster behaviour without failures, against six real node processes in
//! two datacenters (rf {dc1:3, dc2:3}): read-your-writes at LOCAL_QUORUM
//! across coordinators, asynchronous replication to the other datacenter,
//! siblings from concurrent writes and their resolution, and bad input;
//! on TLS with authentication on (the harness default).

use crate::common::*;
use geokv::proto::v1::*;
use std::time::{Duration, Instant};
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_quorum_read_your_write_then_remote_dc_catches_up() {
    let cluster = Cluster::start(Spec::two_dc()).await;
    // The harness deploys as a user would (unless GEOKV_TEST_PLAINTEXT):
    // TLS, and a client without a credential is refused.
    if std::env::var_os("GEOKV_TEST_PLAINTEXT").is_none() {
        assert!(cluster.tls_ca.is_some() && cluster.admin_token.is_some());
        let mut anonymous = cluster.anonymous_client("dc1-n1");
        let refused = put(&mut anonymous, "user:42", "x", vec![], Consistency::One).await;
        assert_eq!(refused.unwrap_err().code(), Code::Unauthenticated);
    }
    let mut n1 = cluster.client("dc1-n1").await;
    let mut n2 = cluster.client("dc1-n2").await;
    let put1 = put(
        &mut n1,
        "user:42",
        "alice",
        vec![],
        Consistency::LocalQuorum,
    )
    .await
    .expect("LOCAL_QUORUM put");
    assert!(
        put1.acks >= 2,
        "LOCAL_QUORUM needs 2 acks, got {}",
        put1.acks
    );
    let got = get(&mut n2, "user:42", Consistency::LocalQuorum)
        .await
        .unwrap();
    assert_eq!(values(&got), vec!["alice"]);

    // The other datacenter gets it through the hinted stream, asynchronously.
    let mut remote = cluster.client("dc2-n3").await;
    let started = Instant::now();
    loop {
        let r = get(&mut remote, "user:42", Consistency::LocalOne)
            .await
            .unwrap();
        if values(&r) == vec!["alice"] {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "dc2 never received the write"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!("dc2 LOCAL_ONE saw the write after {:?}", started.elapsed());
    // Every replica holds it: ALL reads it back.
    let all = get(&mut n1, "user:42", Consistency::All).await.unwrap();
    assert_eq!(values(&all), vec!["alice"]);
    assert_eq!(all.replicas_answered, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_become_siblings_and_a_context_resolves_them() {
    let cluster = Cluster::start(Spec::two_dc()).await;
    let mut a = cluster.client("dc1-n1").await;
    let mut b = cluster.client("dc1-n3").await;
    put(&mut a, "cart", "v0", vec![], Consistency::LocalQuorum)
        .await
        .unwrap();
    let base = get(&mut a, "cart", Consistency::LocalQuorum).await.unwrap();
    assert_eq!(values(&base), vec!["v0"]);

    // Two writers both saw v0 and write concurrently through different nodes.
    put(
        &mut a,
        "cart",
        "apples",
        base.context.clone(),
        Consistency::LocalQuorum,
    )
    .await
    .unwrap();
    put(
        &mut b,
        "cart",
        "pears",
        base.context.clone(),
        Consistency::LocalQuorum,
    )
    .await
    .unwrap();
    let both = get(&mut b, "cart", Consistency::LocalQuorum).await.unwrap();
    assert_eq!(
        values(&both),
        vec!["apples", "pears"],
        "both concurrent writes survive"
    );

    // A write with the merged context resolves them to one value.
    put(
        &mut a,
        "cart",
        "apples+pears",
        both.context.clone(),
        Consistency::LocalQuorum,
    )
    .await
    .unwrap();
    let resolved = get(&mut b, "cart", Consistency::LocalQuorum).await.unwrap();
    assert_eq!(values(&resolved), vec!["apples+pears"]);

    // A delete with the context removes it; a blind write afterwards is not
    // shadowed by the tombstone.
    let del = a
        .delete(DeleteRequest {
            keyspace: "default".into(),
            key: b"cart".to_vec(),
            context: resolved.context.clone(),
            options: opts(Consistency::LocalQuorum),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(del.acks >= 2);
    let gone = get(&mut b, "cart", Consistency::LocalQuorum).await.unwrap();
    assert!(
        gone.siblings.is_empty(),
        "deleted key reads empty: {:?}",
        gone.siblings
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_precise_codes_and_leaves_data_untouched() {
    let cluster = Cluster::start(Spec::two_dc()).await;
    let mut c = cluster.client("dc1-n2").await;
    put(&mut c, "keep", "original", vec![], Consistency::LocalQuorum)
        .await
        .unwrap();

    let big_key = "k".repeat(1025);
    let e = put(&mut c, &big_key, "v", vec![], Consistency::LocalQuorum)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(
        e.message().contains("1025") && e.message().contains("1024"),
        "{}",
        e.message()
    );

    let big_value = "v".repeat((1 << 20) + 1);
    let e = put(&mut c, "keep", &big_value, vec![], Consistency::LocalQuorum)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(
        e.message().contains(&((1 << 20) + 1).to_string()),
        "{}",
        e.message()
    );

    let e = c
        .put(PutRequest {
            keyspace: "nope".into(),
            key: b"keep".to_vec(),
            value: b"x".to_vec(),
            context: vec![],
            options: opts(Consistency::LocalQuorum),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    assert!(e.message().contains("nope"));

    let e = put(
        &mut c,
        "keep",
        "x",
        vec![0xde, 0xad, 0xbe, 0xef],
        Consistency::LocalQuorum,
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "malformed context: {e:?}");

    // LOCAL_QUORUM from dc2 on a keyspace with no replicas in dc2.
    let mut d2 = cluster.client("dc2-n1").await;
    let e = d2
        .put(PutRequest {
            keyspace: "dc1_only".into(),
            key: b"keep".to_vec(),
            value: b"x".to_vec(),
            context: vec![],
            options: opts(Consistency::LocalQuorum),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("dc2"), "{}", e.message());
    // THREE on a keyspace with rf 2 in total.
    let e = c
        .get(GetRequest {
            keyspace: "dc1_only".into(),
            key: b"keep".to_vec(),
            options: opts(Consistency::Three),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    // ANY is for writes only.
    let e = get(&mut c, "keep", Consistency::Any).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");

    let after = get(&mut c, "keep", Consistency::All).await.unwrap();
    assert_eq!(values(&after), vec!["original"], "stored data untouched");
    assert_eq!(after.siblings.len(), 1);
}

/// A QUORUM read asks only as many replicas as QUORUM needs (Cassandra's
/// blockFor): on 3 nodes at rf 3 the coordinator reads itself and one peer,
/// so about one internode replica read per get (more only when a replica
/// was slower than the speculative-retry delay), not two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quorum_read_asks_only_the_replicas_it_needs() {
    let cluster = Cluster::start(Spec {
        dcs: vec![("dc1", 3)],
        replication: vec![("dc1", 3)],
        extra_keyspaces: Vec::new(),
        gossip_interval_ms: 100,
        extra_args: Vec::new(),
    })
    .await;
    cluster.wait_all_up(Duration::from_secs(20)).await;
    let mut n1 = cluster.client("dc1-n1").await;
    const GETS: usize = 50;
    for i in 0..GETS {
        put(&mut n1, &format!("k{i}"), "v", vec![], Consistency::Quorum)
            .await
            .expect("QUORUM put");
    }
    let reads = || async {
        let mut sum = 0.0;
        for n in ["dc1-n1", "dc1-n2", "dc1-n3"] {
            sum += cluster
                .metric(n, "geokv_internode_requests_total", "rpc=\"replica_read\"")
                .await;
        }
        sum
    };
    let before = reads().await;
    for i in 0..GETS {
        let got = get(&mut n1, &format!("k{i}"), Consistency::Quorum)
            .await
            .expect("QUORUM get");
        assert_eq!(values(&got), vec!["v"], "a QUORUM read sees a QUORUM write");
        assert_eq!(got.replicas_answered, 2);
    }
    let per_get = (reads().await - before) / GETS as f64;
    println!("internode replica reads per QUORUM get: {per_get:.2}");
    assert!(
        (1.0..1.5).contains(&per_get),
        "a QUORUM get on rf 3 asks itself and one peer (plus rare speculation): {per_get:.2} internode reads per get"
    );
}
