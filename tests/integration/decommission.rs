//! Decommission with real node processes: `geokv decommission` of the
//! fourth node of dc1 (rf 3) while LOCAL_QUORUM writers keep writing
//! through every node, the leaver included. The leaver's process exits 0;
//! every remaining node's layout shows it Left; every acknowledged write
//! reads back at QUORUM and at ALL; each remaining node holds every key
//! written before the leave (rf 3 of 3 nodes: the leaver's ranges were
//! handed over). A second decommission is refused while a node is short.

use crate::common::*;
use crate::elastic::{layout_of, writer};
use geokv::layout::NodeState;
use geokv::proto::v1::Consistency;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_decommissions_under_writers_and_nothing_acked_is_lost() {
    let mut c = Cluster::start(Spec {
        dcs: vec![("dc1", 4)],
        replication: vec![("dc1", 3)],
        extra_keyspaces: Vec::new(),
        gossip_interval_ms: 100,
        extra_args: Vec::new(),
    })
    .await;
    let mut pre = c.client("dc1-n1").await;
    let mut before = Vec::new();
    for i in 0..2000 {
        let key = format!("pre-{i}");
        put(&mut pre, &key, &key, Vec::new(), Consistency::LocalQuorum)
            .await
            .unwrap();
        before.push(key);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..2 {
        writers.push(tokio::spawn(writer(
            c.nodes.clone(),
            "dc1",
            w,
            stop.clone(),
        )));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    let leaver = c.node("dc1-n4").clone();
    let began = Instant::now();
    let endpoint = leaver.admin_address.to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_geokv"))
            .args(["decommission", "--endpoint", &endpoint])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "decommission failed: {}\n{stdout}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        c.log("dc1-n4")
    );
    eprintln!("{stdout}");
    assert!(stdout.contains("has left"), "{stdout}");
    let exit = c.wait_exit("dc1-n4", Duration::from_secs(60)).await;
    assert!(exit.success(), "leaver exited {exit}");
    eprintln!("decommission took {:?}", began.elapsed());
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    for h in writers {
        acked.extend(h.await.unwrap());
    }

    // Every remaining node's layout shows the leaver Left, no movement.
    for id in ["dc1-n1", "dc1-n2", "dc1-n3"] {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let l = layout_of(c.node(id)).await.expect("layout");
            let state = l.node("dc1-n4").map(|(_, _, n)| n.state);
            if state == Some(NodeState::Left) && l.movements.is_empty() {
                break;
            }
            assert!(Instant::now() < deadline, "{id}: dc1-n4 is {state:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let body = admin(c.node(id).admin_address, "GET", "/layout")
            .await
            .unwrap();
        assert!(body.contains("\"left\""), "{id} /layout: {body}");
    }

    // Every acknowledged write at QUORUM, and (sampled) at ALL.
    let mut r = c.client("dc1-n2").await;
    let mut lost = Vec::new();
    for k in acked.iter().chain(&before) {
        let got = get(&mut r, k, Consistency::Quorum)
            .await
            .map(|g| values(&g));
        if got.as_ref().map_or(true, |v| v != &vec![k.clone()]) {
            lost.push(format!("{k}: {got:?}"));
        }
    }
    assert!(
        acked.len() > 100,
        "only {} writes acknowledged",
        acked.len()
    );
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged writes not read at QUORUM: {:?}",
        lost.len(),
        acked.len() + before.len(),
        &lost[..lost.len().min(10)]
    );
    for k in acked.iter().step_by(5) {
        let got = get(&mut r, k, Consistency::All).await.map(|g| values(&g));
        assert_eq!(got.ok(), Some(vec![k.clone()]), "{k} at ALL");
    }
    // The three remaining nodes each hold every key (rf 3 of 3).
    let reader = ReplicaReader::default();
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
