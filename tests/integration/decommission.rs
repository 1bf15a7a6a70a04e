//! Decommission with real node processes: `geokv decommission` of the
//! fourth node of dc1 (rf 3) while LOCAL_QUORUM writers keep writing
//! through every node, the leaver included. The leaver's process exits 0;
//! every remaining node's layout shows it Left; every acknowledged write
//! reads back at QUORUM and at ALL; each remaining node holds every key
//! written before the leave (rf 3 of 3 nodes: the leaver's ranges were
//! handed over). A second decommission is refused while a node is short.

use crate::common::*;
use geokv::layout::NodeState;
use geokv::proto::v1::Consistency;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// LOCAL_QUORUM writers `dc1-w{w}` through every node of dc1 until `stop`.
pub(crate) fn dc1_writers(
    c: &Cluster,
    n: usize,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Vec<String>>> {
    let spawn = |w| {
        tokio::spawn(writer(
            c.clients_in("dc1", &[]),
            format!("dc1-w{w}"),
            stop.clone(),
        ))
    };
    (0..n).map(spawn).collect()
}

/// Waits until dc1-n1..n3 all show dc1-n4 Left with no movement.
pub(crate) async fn until_the_leaver_is_left(c: &Cluster) {
    let admins: Vec<SocketAddr> = (1..=3)
        .map(|i| c.node(&format!("dc1-n{i}")).admin_address)
        .collect();
    until_every_layout(&admins, |l| {
        l.node("dc1-n4").map(|(_, _, n)| n.state) == Some(NodeState::Left) && l.movements.is_empty()
    })
    .await;
}

/// Stops `writers` a second from now; every key they had acknowledged.
pub(crate) async fn stop_dc1_writers(
    writers: Vec<tokio::task::JoinHandle<Vec<String>>>,
    stop: &AtomicBool,
) -> Vec<String> {
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    for h in writers {
        acked.extend(h.await.unwrap());
    }
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_decommissions_under_writers_and_nothing_acked_is_lost() {
    let mut c = Cluster::start(Spec::one_dc(4, 3)).await;
    let before = c.preload("dc1-n1", "pre", 2000).await;
    let stop = Arc::new(AtomicBool::new(false));
    let writers = dc1_writers(&c, 2, &stop);
    tokio::time::sleep(Duration::from_secs(1)).await;

    let leaver = c.node("dc1-n4").clone();
    let began = Instant::now();
    let endpoint = leaver.admin_address.to_string();
    let (ok, stdout) =
        tokio::task::block_in_place(|| c.cli(&["decommission", "--endpoint", &endpoint]));
    assert!(ok, "decommission failed: {stdout}\n{}", c.log("dc1-n4"));
    eprintln!("{stdout}");
    assert!(stdout.contains("has left"), "{stdout}");
    let exit = c.wait_exit("dc1-n4", Duration::from_secs(60)).await;
    assert!(exit.success(), "leaver exited {exit}");
    eprintln!("decommission took {:?}", began.elapsed());
    let acked = stop_dc1_writers(writers, &stop).await;

    // Every remaining node's layout shows the leaver Left, no movement.
    until_the_leaver_is_left(&c).await;
    for id in ["dc1-n1", "dc1-n2", "dc1-n3"] {
        let body = admin(c.node(id).admin_address, "GET", "/layout")
            .await
            .unwrap();
        assert!(body.contains("\"left\""), "{id} /layout: {body}");
    }

    // Every acknowledged write at QUORUM, and (sampled) at ALL.
    let mut r = c.client("dc1-n2").await;
    assert!(
        acked.len() > 100,
        "only {} writes acknowledged",
        acked.len()
    );
    let all: Vec<String> = acked.iter().chain(&before).cloned().collect();
    assert_all_read(&mut r, &all, Consistency::Quorum, Duration::ZERO).await;
    for k in acked.iter().step_by(5) {
        let got = get(&mut r, k, Consistency::All).await.map(|g| values(&g));
        assert_eq!(got.ok(), Some(vec![k.clone()]), "{k} at ALL");
    }
    // The three remaining nodes each hold every key (rf 3 of 3).
    let reader = c.replica_reader();
    for id in ["dc1-n1", "dc1-n2", "dc1-n3"] {
        let n = c.node(id).clone();
        for k in before.iter().chain(&acked) {
            let got = reader.holds(&n, "default", k).await.expect("answers");
            assert_eq!(got, vec![k.clone()], "{id} lacks {k}");
        }
    }
    // Three nodes left for rf 3: a second decommission is refused.
    let refused = admin(c.node("dc1-n1").admin_address, "POST", "/decommission").await;
    let err = refused.expect_err("refused");
    assert!(
        err.contains("409") && err.contains("needs 3 replicas"),
        "{err}"
    );
}
