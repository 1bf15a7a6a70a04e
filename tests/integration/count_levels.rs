//! Count levels (ONE, TWO, THREE) against real node processes (two
//! datacenters of three nodes): they fall back to remote replicas when the
//! local ones fail or hang before the failure detector notices, and LOCAL_*
//! levels never do.

use crate::common::*;
use crate::coordinator_faults::{all_values, get_in, put_in};
use geokv::proto::v1::*;
use tonic::Code;

/// Defect 9: count levels fall back to remote replicas when local ones
/// believed alive fail (the failure detector has not noticed yet).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn count_levels_fall_back_to_remote_replicas() {
    let mut cluster = Cluster::start(Spec::two_dc()).await;
    let mut c = cluster.client("dc1-n1").await;
    put_in(
        &mut c,
        "default",
        "k",
        "v",
        vec![],
        Consistency::LocalQuorum,
    )
    .await
    .expect("write before the failures");
    cluster.kill("dc1-n2");
    cluster.kill("dc1-n3");
    let r = put_in(&mut c, "default", "k2", "v2", vec![], Consistency::Two)
        .await
        .expect("TWO: dc1-n1 and a dc2 replica");
    assert!(r.acks >= 2, "{r:?}");
    let r = get_in(&mut c, "default", "k", Consistency::Two)
        .await
        .expect("TWO read: dc1-n1 and a dc2 replica");
    assert_eq!(all_values(&r), vec!["v".to_string()]);
    // LOCAL_* stay local.
    let e = put_in(
        &mut c,
        "default",
        "k3",
        "v3",
        vec![],
        Consistency::LocalQuorum,
    )
    .await
    .expect_err("LOCAL_QUORUM never asks dc2");
    assert_ne!(e.code(), Code::Ok);
}

/// Sends `signal` to the process of node `id` of `cluster` (found by its
/// command line: this cluster's topology file and the node id).
fn signal_node(cluster: &Cluster, id: &str, signal: &str) {
    let topo = cluster.topology_path.to_string_lossy().to_string();
    let mut found = false;
    for entry in std::fs::read_dir("/proc").expect("procfs") {
        let path = entry.expect("entry").path();
        let Ok(cmd) = std::fs::read(path.join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmd
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).to_string())
            .collect();
        let is_node =
            args.contains(&topo) && args.windows(2).any(|w| w[0] == "--node" && w[1] == id);
        if is_node {
            let pid = path.file_name().unwrap().to_string_lossy().to_string();
            let st = std::process::Command::new("kill")
                .args([&format!("-{signal}"), &pid])
                .status()
                .expect("kill");
            assert!(st.success(), "kill -{signal} {pid}");
            found = true;
        }
    }
    assert!(found, "no process for {id}");
}

/// Defect 9, the slow case: two dc1 replicas hang (SIGSTOP: connections
/// stay open, nothing answers, gossip has not noticed yet). A count level
/// does not wait for them to the deadline: a write asks dc2 too at half of
/// it, a read after its speculative-retry delays (one replica per delay).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn count_levels_ask_remote_replicas_when_local_ones_hang() {
    let cluster = Cluster::start(Spec::two_dc()).await;
    let mut c = cluster.client("dc1-n1").await;
    put_in(
        &mut c,
        "default",
        "k",
        "v",
        vec![],
        Consistency::LocalQuorum,
    )
    .await
    .expect("write before the failures");
    signal_node(&cluster, "dc1-n2", "STOP");
    signal_node(&cluster, "dc1-n3", "STOP");
    let put = put_in(&mut c, "default", "k2", "v2", vec![], Consistency::Two).await;
    let get = get_in(&mut c, "default", "k", Consistency::Two).await;
    signal_node(&cluster, "dc1-n2", "CONT");
    signal_node(&cluster, "dc1-n3", "CONT");
    let put = put.expect("TWO: dc1-n1 and dc2, asked at half the deadline");
    assert!(put.acks >= 2, "{put:?}");
    let get = get.expect("TWO read: dc1-n1 and dc2 replicas");
    assert_eq!(all_values(&get), vec!["v".to_string()]);
}
