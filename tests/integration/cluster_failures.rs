//! Node failures against six real node processes (rf {dc1:3, dc2:3}):
//! SIGKILL, consistency levels under failure, restart durability.

use crate::common::*;
use geokv::proto::v1::*;
use std::time::Duration;
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn levels_under_node_failures_and_restart_durability() {
    let mut cluster = Cluster::start(Spec::two_dc()).await;
    let mut c1 = cluster.client("dc1-n1").await;
    let mut c2 = cluster.client("dc2-n1").await;
    for i in 0..20 {
        put(
            &mut c1,
            &format!("before-{i}"),
            &format!("v{i}"),
            vec![],
            Consistency::LocalQuorum,
        )
        .await
        .unwrap();
    }

    // One node per datacenter dies.
    cluster.kill("dc1-n3");
    cluster.kill("dc2-n3");
    let took = cluster
        .wait_seen("dc1-n1", "dc1-n3", false, Duration::from_secs(15))
        .await;
    println!("dc1-n1 marked dc1-n3 down after {took:?}");
    cluster
        .wait_seen("dc2-n1", "dc2-n3", false, Duration::from_secs(15))
        .await;
    cluster
        .wait_seen("dc1-n1", "dc2-n3", false, Duration::from_secs(30))
        .await;

    for i in 0..20 {
        let k = format!("during-{i}");
        put(&mut c1, &k, "x", vec![], Consistency::LocalQuorum)
            .await
            .expect("dc1 LOCAL_QUORUM put");
        put(&mut c2, &k, "y", vec![], Consistency::LocalQuorum)
            .await
            .expect("dc2 LOCAL_QUORUM put");
        let r = get(&mut c1, &format!("before-{i}"), Consistency::LocalQuorum)
            .await
            .unwrap();
        assert_eq!(values(&r), vec![format!("v{i}")]);
    }
    let e = put(&mut c1, "all", "x", vec![], Consistency::All)
        .await
        .unwrap_err();
    assert!(
        matches!(e.code(), Code::Unavailable | Code::DeadlineExceeded),
        "ALL with two replicas down: {e:?}"
    );
    assert!(
        e.message().contains('6') && e.message().contains('4'),
        "names the counts: {}",
        e.message()
    );
    let e = get(&mut c2, "before-1", Consistency::All)
        .await
        .unwrap_err();
    assert!(
        matches!(e.code(), Code::Unavailable | Code::DeadlineExceeded),
        "{e:?}"
    );

    // Two of dc1's three replicas die: dc1 loses LOCAL_QUORUM, dc2 keeps it.
    cluster.kill("dc1-n2");
    cluster
        .wait_seen("dc1-n1", "dc1-n2", false, Duration::from_secs(15))
        .await;
    let e = put(&mut c1, "lq", "x", vec![], Consistency::LocalQuorum)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    assert!(
        e.message().contains("dc1") && e.message().contains("2") && e.message().contains("1"),
        "{}",
        e.message()
    );
    let e = get(&mut c1, "before-1", Consistency::LocalQuorum)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    put(&mut c2, "lq", "y", vec![], Consistency::LocalQuorum)
        .await
        .expect("dc2 still has LOCAL_QUORUM");
    let r = get(&mut c2, "before-3", Consistency::LocalQuorum)
        .await
        .unwrap();
    assert_eq!(values(&r), vec!["v3"]);

    // Restart the killed nodes: what they acknowledged before is still there.
    for id in ["dc1-n2", "dc1-n3", "dc2-n3"] {
        cluster.restart(id).await;
    }
    cluster.wait_all_up(Duration::from_secs(30)).await;
    for id in ["dc1-n2", "dc1-n3"] {
        let mut c = cluster.client(id).await;
        for i in 0..20 {
            // ONE served by the restarted node itself when it is a replica;
            // ALL proves every replica (including restarted ones) holds it.
            let r = get(&mut c, &format!("before-{i}"), Consistency::All)
                .await
                .unwrap();
            assert_eq!(values(&r), vec![format!("v{i}")], "{id} before-{i}");
        }
    }
}
