//! Movements under LOCAL_QUORUM writers **and readers** in both
//! datacenters, with real node processes (issue 11, 4.1): a node of dc2
//! decommissions; a node joining dc1 is SIGKILLed mid-stream and restarted
//! with only `--join SEED --id --data-dir`, and its join resumes. Oracles:
//! no LOCAL_QUORUM read during the movement misses a write acknowledged
//! in its datacenter before the read began (`common::ryw`), and every
//! acknowledged write reads back afterwards at LOCAL_QUORUM and at ALL
//! from each datacenter. Timed-out writes are unknown: never counted.

use crate::common::ryw::{logged_writer, reader, Acks, ReadLog};
use crate::common::*;
use geokv::layout::NodeState;
use geokv::proto::v1::Consistency;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Writers and readers running against a cluster until [`Workload::stop`].
struct Workload {
    acks: Arc<Acks>,
    stop: Arc<AtomicBool>,
    writers: Vec<tokio::task::JoinHandle<()>>,
    readers: Vec<(&'static str, tokio::task::JoinHandle<ReadLog>)>,
}

impl Workload {
    /// One writer and one reader per datacenter, through each of its nodes.
    fn start(c: &Cluster) -> Workload {
        let (acks, stop) = (Arc::new(Acks::default()), Arc::new(AtomicBool::new(false)));
        let (mut writers, mut readers) = (Vec::new(), Vec::new());
        for dc in ["dc1", "dc2"] {
            let (a, s) = (acks.clone(), stop.clone());
            let clients = c.clients_in(dc, &[]);
            let tag = format!("{dc}-w");
            writers.push(tokio::spawn(async move {
                logged_writer(clients, dc, tag, a, s).await
            }));
            let (a, s) = (acks.clone(), stop.clone());
            let clients = c.clients_in(dc, &[]);
            readers.push((dc, tokio::spawn(reader(clients, dc, a, s))));
        }
        Workload {
            acks,
            stop,
            writers,
            readers,
        }
    }

    /// Stops everything; the keys acknowledged. Asserts that the readers
    /// read during the movement and that none missed an earlier ack.
    async fn stop(self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        for w in self.writers {
            w.await.unwrap();
        }
        for (dc, r) in self.readers {
            let log = r.await.unwrap();
            eprintln!(
                "{dc} readers: {} reads, {} failed, {} missed",
                log.reads,
                log.errors,
                log.misses.len()
            );
            assert!(log.reads > 50, "{dc}: only {} reads", log.reads);
            assert!(
                log.misses.is_empty(),
                "{dc}: {} LOCAL_QUORUM reads missed a write acknowledged before they began: {:?}",
                log.misses.len(),
                &log.misses[..log.misses.len().min(10)]
            );
        }
        let keys = self.acks.keys(None);
        assert!(keys.len() > 100, "only {} writes acknowledged", keys.len());
        keys
    }
}

/// Every key reads back at `level` through node `via` (eight readers in
/// parallel, each retrying a key until `limit` from now).
async fn read_back(c: &Cluster, via: &str, keys: &[String], level: Consistency, limit: Duration) {
    let chunk = keys.len().div_ceil(8).max(1);
    let tasks = keys.chunks(chunk).map(|part| {
        let (mut kv, part) = (c.client_at(c.node(via).client_address), part.to_vec());
        tokio::spawn(async move { unread(&mut kv, &part, level, limit).await })
    });
    let mut lost = Vec::new();
    for t in tasks.collect::<Vec<_>>() {
        lost.extend(t.await.unwrap());
    }
    assert!(
        lost.is_empty(),
        "via {via}: {} of {} acknowledged writes not read at {level:?}: {:?}",
        lost.len(),
        keys.len(),
        &lost[..lost.len().min(10)]
    );
}

/// Every key at LOCAL_QUORUM and at ALL from each datacenter (the other
/// datacenter's writes arrive by the inter-DC stream: a bounded wait).
async fn read_back_everywhere(c: &Cluster, keys: &[String]) {
    for via in ["dc1-n2", "dc2-n2"] {
        let lq = Consistency::LocalQuorum;
        read_back(c, via, keys, lq, Duration::from_secs(30)).await;
        read_back(c, via, keys, Consistency::All, Duration::from_secs(30)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dc2_node_decommissions_under_readers_and_writers_in_both_dcs() {
    let spec = Spec {
        dcs: vec![("dc1", 3), ("dc2", 4)],
        ..Spec::pair(3, 3)
    };
    let mut c = Cluster::start(spec).await;
    let began = Instant::now();
    let before = c.preload("dc2-n1", "pre", 1500).await;
    let load = Workload::start(&c);
    tokio::time::sleep(Duration::from_secs(1)).await;

    let endpoint = c.node("dc2-n4").admin_address.to_string();
    let (ok, out) =
        tokio::task::block_in_place(|| c.cli(&["decommission", "--endpoint", &endpoint]));
    assert!(ok, "decommission failed: {out}\n{}", c.log("dc2-n4"));
    let exit = c.wait_exit("dc2-n4", Duration::from_secs(60)).await;
    assert!(exit.success(), "leaver exited {exit}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let acked = load.stop().await;

    let admins: Vec<SocketAddr> = (c.nodes.iter())
        .filter(|n| n.id != "dc2-n4")
        .map(|n| n.admin_address)
        .collect();
    until_every_layout(&admins, |l| {
        l.node("dc2-n4").map(|(_, _, n)| n.state) == Some(NodeState::Left) && l.movements.is_empty()
    })
    .await;
    let all: Vec<String> = acked.into_iter().chain(before).collect();
    read_back_everywhere(&c, &all).await;
    eprintln!("{} keys; test body took {:?}", all.len(), began.elapsed());
}

/// Polls the joiner's `GET /movement` until its join has streamed some
/// keys and is still streaming (up to 60 s).
async fn until_mid_stream(n4: &mut NewNode) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(body) = admin(n4.admin_address(), "GET", "/movement").await {
            let board: serde_json::Value = serde_json::from_str(&body).unwrap();
            let s = &board["streaming"];
            if s["status"] == "streaming" && s["keys"].as_u64().unwrap_or(0) > 0 {
                return board;
            }
            assert_ne!(s["status"], "done", "the join ended before the kill");
        }
        assert!(n4.exited().is_none(), "joiner exited\n{}", n4.log());
        assert!(Instant::now() < deadline, "never streamed\n{}", n4.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_joiner_killed_mid_stream_resumes_after_a_restart_and_loses_nothing() {
    let c = Cluster::start(Spec::two_dc()).await;
    let began = Instant::now();
    let before = c.preload("dc1-n1", "pre", 2000).await;
    let load = Workload::start(&c);
    tokio::time::sleep(Duration::from_secs(1)).await;

    // A slow stream (50 KiB/s) so the kill lands mid-stream.
    let seed = c.node("dc1-n1").peer_address;
    let extra = [
        "--dc",
        "dc1",
        "--rack",
        "r4",
        "--stream-throughput-mib",
        "0.05",
    ];
    let mut n4 = c.spawn_new_node("dc1-n4", "dc1-n4", c.spare_ip(14), seed, &extra);
    let board = until_mid_stream(&mut n4).await;
    n4.kill();
    eprintln!("killed the joiner mid-stream: {}", board["streaming"]);
    let first_run = n4.full_log().len();

    // Only the seed, the id and the data directory; the default stream cap.
    let mut n4 = c.restart_new_node(n4, seed);
    let n1 = c.node("dc1-n1").admin_address;
    let joined = n4
        .wait_normal(n1, Duration::from_secs(120), async || {})
        .await;
    // The restart resumed the persisted join, it did not begin another.
    let restarted = n4.full_log()[first_run..].to_string();
    assert!(
        restarted.contains("resuming the join") && !restarted.contains("join begun"),
        "{restarted}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let acked = load.stop().await;
    eprintln!("joined at layout v{}", joined.version);

    // The joiner holds every pre-join key it replicates now.
    let ring = geokv::ring::Ring::from_layout(&joined);
    let me = ring.node_by_id("dc1-n4").unwrap().idx;
    let info = (joined.member_topology().nodes().into_iter())
        .find(|n| n.id == "dc1-n4")
        .unwrap();
    let replicas = c.replica_reader();
    for k in &before {
        if ring.replicas("default", k.as_bytes()).unwrap().contains(me) {
            let got = replicas.holds(&info, "default", k).await;
            assert_eq!(got, Some(vec![k.clone()]), "dc1-n4 lacks {k}");
        }
    }
    let all: Vec<String> = acked.into_iter().chain(before).collect();
    read_back_everywhere(&c, &all).await;
    eprintln!("{} keys; test body took {:?}", all.len(), began.elapsed());
}
