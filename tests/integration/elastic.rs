//! An elastic cluster with real node processes: a fourth node joins dc1 of
//! a running two-datacenter cluster under continuous LOCAL_QUORUM writers
//! in both datacenters (`geokv node --join SEED …`). Afterwards every
//! acknowledged write is read back at LOCAL_QUORUM in its datacenter and at
//! ALL, the new node holds exactly the keys it replicates under the
//! final layout (about 3/4 of them: rf 3 over 4 nodes), and the old owners
//! drop what they lost by themselves (automatic cleanup).

use crate::common::*;
use geokv::layout::{Layout, NodeState};
use geokv::proto::v1::internode::internode_client::InternodeClient;
use geokv::proto::v1::internode::GetLayoutRequest;
use geokv::proto::v1::Consistency;
use geokv::topology::NodeInfo;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) async fn layout_of(node: &NodeInfo) -> Option<Layout> {
    let ch = tonic::transport::Endpoint::from_shared(format!("http://{}", node.peer_address))
        .ok()?
        .connect()
        .await
        .ok()?;
    let msg = InternodeClient::new(ch)
        .get_layout(GetLayoutRequest {})
        .await
        .ok()?
        .into_inner();
    serde_json::from_slice(&msg.json).ok()
}

/// Writes unique keys at LOCAL_QUORUM through the nodes of `dc` until
/// `stop`; the keys acknowledged.
pub(crate) async fn writer(
    c: Vec<NodeInfo>,
    dc: &'static str,
    w: usize,
    stop: Arc<AtomicBool>,
) -> Vec<String> {
    let mut clients = Vec::new();
    for n in &c {
        let ch = tonic::transport::Endpoint::from_shared(format!("http://{}", n.client_address))
            .unwrap()
            .connect_lazy();
        clients.push(geokv::proto::v1::kv_client::KvClient::new(ch));
    }
    let mut acked = Vec::new();
    let mut i = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let key = format!("{dc}-w{w}-{i}");
        let k = clients.len();
        if put(
            &mut clients[i % k],
            &key,
            &key,
            Vec::new(),
            Consistency::LocalQuorum,
        )
        .await
        .is_ok()
        {
            acked.push(key);
        }
        i += 1;
    }
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fourth_node_joins_dc1_under_local_quorum_writers_and_nothing_acked_is_lost() {
    let c = Cluster::start(Spec::two_dc()).await;
    // Data before the join.
    let mut pre = c.client("dc1-n1").await;
    let mut before = Vec::new();
    for i in 0..3000 {
        let key = format!("pre-{i}");
        put(&mut pre, &key, &key, Vec::new(), Consistency::LocalQuorum)
            .await
            .unwrap();
        before.push(key);
    }

    let stop = Arc::new(AtomicBool::new(false));
    let dcs = |dc: &str| {
        c.nodes
            .iter()
            .filter(|n| n.dc == dc)
            .cloned()
            .collect::<Vec<_>>()
    };
    let mut writers = Vec::new();
    for (dc, w) in [("dc1", 0), ("dc1", 1), ("dc2", 0)] {
        writers.push((dc, tokio::spawn(writer(dcs(dc), dc, w, stop.clone()))));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    // The joiner: dc1, rack r4, the next loopback address of dc1.
    let n1 = c.node("dc1-n1").clone();
    let std::net::IpAddr::V4(ip) = n1.client_address.ip() else {
        unreachable!()
    };
    let [a, b, cc, d] = ip.octets();
    let ip = std::net::Ipv4Addr::new(a, b, cc, d + 3);
    let dir = c.dir.path().join("dc1-n4");
    std::fs::create_dir_all(&dir).unwrap();
    let log = std::fs::File::create(dir.join("node.log")).unwrap();
    let began = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_geokv"))
        .args([
            "node",
            "--join",
            &n1.peer_address.to_string(),
            "--id",
            "dc1-n4",
        ])
        .args(["--dc", "dc1", "--rack", "r4"])
        .args([
            "--client-address",
            &format!("{ip}:7070"),
            "--peer-address",
            &format!("{ip}:7071"),
        ])
        .args(["--admin-address", &format!("{ip}:7072")])
        .arg("--data-dir")
        .arg(&dir)
        .args([
            "--fault-injection",
            "--gossip-interval-ms",
            "100",
            "--insecure",
        ])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();

    // Joined: every node reports the finished join (begin + finish = v3).
    let joined = loop {
        if let Some(l) = layout_of(&n1).await {
            if l.node("dc1-n4")
                .is_some_and(|(_, _, n)| n.state == NodeState::Normal)
            {
                break l;
            }
        }
        if let Ok(Some(st)) = child.try_wait() {
            panic!(
                "joiner exited: {st}\n{}",
                std::fs::read_to_string(dir.join("node.log")).unwrap()
            );
        }
        assert!(
            began.elapsed() < Duration::from_secs(240),
            "join did not finish\n{}",
            std::fs::read_to_string(dir.join("node.log")).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    eprintln!(
        "join finished in {:?} (layout v{})",
        began.elapsed(),
        joined.version
    );
    let joiner_log = std::fs::read_to_string(dir.join("node.log")).unwrap();
    for line in joiner_log.lines().filter(|l| l.contains("join complete")) {
        eprintln!("{line}");
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    for (dc, h) in writers {
        acked.push((dc, h.await.unwrap()));
    }
    let n4 = joined
        .member_topology()
        .nodes()
        .into_iter()
        .find(|n| n.id == "dc1-n4")
        .unwrap();

    // Every acknowledged write at LOCAL_QUORUM in its datacenter.
    let mut lost = Vec::new();
    let mut total = 0;
    for (dc, keys) in &acked {
        let mut r = c.client(&format!("{dc}-n2")).await;
        for k in keys {
            total += 1;
            let got = get(&mut r, k, Consistency::LocalQuorum)
                .await
                .map(|g| values(&g));
            if got.as_ref().map_or(true, |v| v != &vec![k.clone()]) {
                lost.push(format!("{dc} {k}: {got:?}"));
            }
        }
    }
    assert!(total > 100, "only {total} writes acknowledged");
    assert!(
        lost.is_empty(),
        "{} of {total} acknowledged writes not read at LOCAL_QUORUM: {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );

    // The joiner holds exactly the pre-join keys it replicates now (~3/4).
    let ring = geokv::ring::Ring::from_layout(&joined);
    let me = ring.node_by_id("dc1-n4").unwrap().idx;
    let reader = ReplicaReader::default();
    let mut held = 0;
    for k in &before {
        let mine = ring.replicas("default", k.as_bytes()).unwrap().contains(me);
        let got = reader
            .holds(&n4, "default", k)
            .await
            .expect("dc1-n4 answers");
        assert_eq!(!got.is_empty(), mine, "{k}: held {got:?}, replica {mine}");
        held += usize::from(mine);
    }
    let share = held as f64 / before.len() as f64;
    eprintln!(
        "dc1-n4 holds {held} of {} pre-join keys ({share:.2})",
        before.len()
    );
    assert!((0.6..=0.9).contains(&share), "share {share}");

    // The old owners clean up by themselves once the join is over: each
    // holds exactly the pre-join keys it still replicates (and `geokv
    // cleanup` by hand answers).
    for id in ["dc1-n1", "dc1-n2", "dc1-n3"] {
        let node = c.node(id).clone();
        let idx = ring.node_by_id(id).unwrap().idx;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut wrong = 0;
            for k in &before {
                let mine = ring
                    .replicas("default", k.as_bytes())
                    .unwrap()
                    .contains(idx);
                let got = reader.holds(&node, "default", k).await.expect("answers");
                wrong += usize::from(got.is_empty() == mine);
            }
            if wrong == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{id}: {wrong} pre-join keys held against its ranges after cleanup"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let body = admin(node.admin_address, "POST", "/cleanup").await.unwrap();
        assert!(body.contains("\"ranges\":"), "{id} cleanup: {body}");
    }

    // At ALL once hints and streams have drained.
    let mut r = c.client("dc1-n1").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    for (_, keys) in &acked {
        for k in keys.iter().step_by(7) {
            loop {
                let got = get(&mut r, k, Consistency::All).await.map(|g| values(&g));
                if got.as_ref().is_ok_and(|v| v == &vec![k.clone()]) {
                    break;
                }
                assert!(Instant::now() < deadline, "{k} at ALL: {got:?}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}
