//! Replacing a dead node with real node processes: a two-datacenter cluster
//! (dc1 four nodes, dc2 three, rf 3/3) under continuous LOCAL_QUORUM
//! writers; dc1-n2 is SIGKILLed and replaced by a new node id on new
//! addresses (`geokv node --replace dc1-n2 --join SEED …`). Replacing a
//! live or an unknown node is refused. Afterwards every acknowledged write
//! reads back at LOCAL_QUORUM in its datacenter, then at QUORUM and at
//! ALL; `GET /layout` on every node shows the new node Normal and the dead
//! one Removed; the new node has the dead node's tokens, every range's
//! owners are the old ones with the dead node swapped for the new one, and
//! it holds exactly the pre-replacement keys the dead node held. The same
//! for `geokv removenode`: a live node is refused; the killed node ends
//! Removed everywhere and its new owners hold its keys.

use crate::common::*;
use geokv::layout::{Layout, NodeState};
use geokv::proto::v1::Consistency;
use geokv::ring::Ring;
use geokv::topology::NodeInfo;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

async fn layout_at(admin_addr: SocketAddr) -> Option<Layout> {
    let body = admin(admin_addr, "GET", "/layout").await.ok()?;
    serde_json::from_str(&body).ok()
}

/// Writes unique keys at LOCAL_QUORUM through `nodes` until `stop`; the
/// keys acknowledged.
async fn writer(nodes: Vec<NodeInfo>, tag: String, stop: Arc<AtomicBool>) -> Vec<String> {
    let mut clients = Vec::new();
    for n in &nodes {
        let ch = tonic::transport::Endpoint::from_shared(format!("http://{}", n.client_address))
            .unwrap()
            .connect_lazy();
        clients.push(geokv::proto::v1::kv_client::KvClient::new(ch));
    }
    let (mut acked, mut i) = (Vec::new(), 0usize);
    while !stop.load(Ordering::Relaxed) {
        let key = format!("{tag}-{i}");
        let k = clients.len();
        let level = Consistency::LocalQuorum;
        if put(&mut clients[i % k], &key, &key, Vec::new(), level)
            .await
            .is_ok()
        {
            acked.push(key);
        }
        i += 1;
    }
    acked
}

/// `geokv node --join SEED --replace DEAD --id ID` on `ip`, logging to DIR/node.log.
fn spawn_replacement(seed: SocketAddr, dead: &str, id: &str, ip: &str, dir: &Path) -> Child {
    std::fs::create_dir_all(dir).unwrap();
    let log = std::fs::File::create(dir.join("node.log")).unwrap();
    Command::new(env!("CARGO_BIN_EXE_geokv"))
        .args(["node", "--join", &seed.to_string(), "--replace", dead])
        .args(["--id", id])
        .args(["--client-address", &format!("{ip}:7070")])
        .args(["--peer-address", &format!("{ip}:7071")])
        .args(["--admin-address", &format!("{ip}:7072")])
        .arg("--data-dir")
        .arg(dir)
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
        .unwrap()
}

/// Runs a replacement that must be refused; its log.
fn refused(seed: SocketAddr, dead: &str, id: &str, ip: &str, dir: &Path) -> String {
    let mut child = spawn_replacement(seed, dead, id, ip, dir);
    let began = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            let log = std::fs::read_to_string(dir.join("node.log")).unwrap();
            assert!(!st.success(), "replacing {dead} should fail:\n{log}");
            return log;
        }
        assert!(began.elapsed() < Duration::from_secs(30), "still running");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Reads every key at `level` through `via` until it returns the key's
/// value (or the deadline); the keys that never did.
async fn unread(
    c: &Cluster,
    via: &str,
    keys: &[String],
    level: Consistency,
    limit: Duration,
) -> Vec<String> {
    let mut r = c.client(via).await;
    let deadline = Instant::now() + limit;
    let mut missing = Vec::new();
    for k in keys {
        loop {
            let got = get(&mut r, k, level).await.map(|g| values(&g));
            if got.as_ref().is_ok_and(|v| v == &vec![k.clone()]) {
                break;
            }
            if Instant::now() >= deadline {
                missing.push(format!("{k}: {got:?}"));
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    missing
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_node_is_replaced_under_writers_and_nothing_acknowledged_is_lost() {
    let mut spec = Spec::two_dc();
    spec.dcs = vec![("dc1", 4), ("dc2", 3)];
    let mut c = Cluster::start(spec).await;
    let n1 = c.node("dc1-n1").clone();
    let before_layout = layout_at(n1.admin_address).await.expect("GET /layout");
    let mut pre = c.client("dc1-n1").await;
    let mut before = Vec::new();
    for i in 0..2000 {
        let key = format!("pre-{i}");
        put(&mut pre, &key, &key, Vec::new(), Consistency::LocalQuorum)
            .await
            .unwrap();
        before.push(key);
    }

    // Writers in both datacenters, never through the node that dies.
    let stop = Arc::new(AtomicBool::new(false));
    let through = |dc: &str| -> Vec<NodeInfo> {
        let ok = |n: &&NodeInfo| n.dc == dc && n.id != "dc1-n2";
        c.nodes.iter().filter(ok).cloned().collect()
    };
    let mut writers = Vec::new();
    for (dc, w) in [("dc1", 0), ("dc1", 1), ("dc2", 0)] {
        let h = tokio::spawn(writer(through(dc), format!("{dc}-w{w}"), stop.clone()));
        writers.push((dc, h));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    // New addresses for the replacement: dc1's unused .19.
    let std::net::IpAddr::V4(ip) = n1.client_address.ip() else {
        unreachable!()
    };
    let [a, b, cc, _] = ip.octets();
    let ip = format!("{a}.{b}.{cc}.19");
    let base = c.dir.path().to_path_buf();

    // Refused while dc1-n2 is alive, and for an unknown node.
    let log = refused(
        n1.peer_address,
        "dc1-n2",
        "dc1-n9",
        &ip,
        &base.join("refused-live"),
    );
    assert!(log.contains("dc1-n2' is alive"), "{log}");
    let log = refused(
        n1.peer_address,
        "dc1-n77",
        "dc1-n9",
        &ip,
        &base.join("refused-unknown"),
    );
    assert!(log.contains("not in the cluster's layout"), "{log}");

    c.kill("dc1-n2");
    c.wait_seen("dc1-n1", "dc1-n2", false, Duration::from_secs(30))
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    let dir = base.join("dc1-n9");
    let began = Instant::now();
    let mut child = spawn_replacement(n1.peer_address, "dc1-n2", "dc1-n9", &ip, &dir);
    let node_log = || std::fs::read_to_string(dir.join("node.log")).unwrap_or_default();
    let new_admin: SocketAddr = format!("{ip}:7072").parse().unwrap();
    let mut saw_progress = false;
    let done = loop {
        if let Ok(body) = admin(new_admin, "GET", "/movement").await {
            saw_progress |= body.contains("replacement of dc1-n2 by dc1-n9");
        }
        if let Some(l) = layout_at(n1.admin_address).await {
            let state = |id: &str| l.node(id).map(|(_, _, n)| n.state);
            if state("dc1-n9") == Some(NodeState::Normal) {
                break l;
            }
        }
        if let Ok(Some(st)) = child.try_wait() {
            panic!("replacement exited: {st}\n{}", node_log());
        }
        assert!(
            began.elapsed() < Duration::from_secs(240),
            "not replaced\n{}",
            node_log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    eprintln!(
        "replaced in {:?} (layout v{})",
        began.elapsed(),
        done.version
    );
    for line in node_log()
        .lines()
        .filter(|l| l.contains("replacement complete"))
    {
        eprintln!("{line}");
    }
    assert!(
        saw_progress,
        "GET /movement on the new node never showed the replacement"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    for (dc, h) in writers {
        acked.push((dc, h.await.unwrap()));
    }
    let total: usize = acked.iter().map(|(_, k)| k.len()).sum();
    assert!(total > 100, "only {total} writes acknowledged");

    // Every node's layout: the new node Normal with the dead one's tokens,
    // the dead one Removed with none.
    let dead_tokens = before_layout.node("dc1-n2").unwrap().2.tokens.clone();
    let mut admins: Vec<SocketAddr> = c
        .nodes
        .iter()
        .filter(|n| n.id != "dc1-n2")
        .map(|n| n.admin_address)
        .collect();
    admins.push(new_admin);
    for addr in admins {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let l = layout_at(addr).await;
            let ok = l.as_ref().is_some_and(|l| {
                let new = l
                    .node("dc1-n9")
                    .map(|(_, _, n)| (n.state, n.tokens.clone()));
                let dead = l.node("dc1-n2").map(|(_, _, n)| (n.state, n.tokens.len()));
                new == Some((NodeState::Normal, dead_tokens.clone()))
                    && dead == Some((NodeState::Removed, 0))
                    && l.movements.is_empty()
            });
            if ok {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{addr}: {:?}",
                l.map(|l| l.version)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    // Only the dead node's ranges moved: every range's owners are the old
    // ones with dc1-n2 swapped for dc1-n9.
    let (old, new) = (Ring::from_layout(&before_layout), Ring::from_layout(&done));
    for ks in ["default", "dc1_only"] {
        for (r, set) in old.ranges_with_replicas(ks).unwrap() {
            let was: Vec<String> = set
                .all()
                .map(|n| old.node(n).id.replace("dc1-n2", "dc1-n9"))
                .collect();
            let now = new.replicas_for_token(ks, r.end).unwrap();
            let now: Vec<String> = now.all().map(|n| new.node(n).id.clone()).collect();
            assert_eq!(was, now, "{ks} {r:?}");
        }
    }

    // The new node holds exactly the pre-replacement keys dc1-n2 held.
    let dead_idx = old.node_by_id("dc1-n2").unwrap().idx;
    let n9 = new.node_by_id("dc1-n9").unwrap().clone();
    let reader = ReplicaReader::default();
    let mut held = 0;
    for k in &before {
        let had = old
            .replicas("default", k.as_bytes())
            .unwrap()
            .contains(dead_idx);
        let got = reader
            .holds(&n9, "default", k)
            .await
            .expect("dc1-n9 answers");
        let want = if had { vec![k.clone()] } else { Vec::new() };
        assert_eq!(got, want, "{k}");
        held += usize::from(had);
    }
    eprintln!(
        "dc1-n9 holds {held} of {} pre-replacement keys",
        before.len()
    );

    // Every acknowledged write: LOCAL_QUORUM in its DC at once, then
    // QUORUM and ALL once streams and hints drained.
    for (dc, keys) in &acked {
        let via = format!("{dc}-n3");
        let lost = unread(&c, &via, keys, Consistency::LocalQuorum, Duration::ZERO).await;
        assert!(
            lost.is_empty(),
            "{} of {} not read at LOCAL_QUORUM in {dc}: {:?}",
            lost.len(),
            keys.len(),
            &lost[..lost.len().min(10)]
        );
    }
    let all: Vec<String> = acked
        .iter()
        .flat_map(|(_, k)| k.iter().cloned())
        .chain(before)
        .collect();
    for level in [Consistency::Quorum, Consistency::All] {
        let lost = unread(&c, "dc1-n3", &all, level, Duration::from_secs(60)).await;
        assert!(
            lost.is_empty(),
            "{} of {} not read at {level:?}: {:?}",
            lost.len(),
            all.len(),
            &lost[..lost.len().min(10)]
        );
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// `geokv removenode ID --endpoint E`; its exit status and output.
fn removenode(id: &str, endpoint: SocketAddr) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_geokv"))
        .args(["removenode", id, "--endpoint", &endpoint.to_string()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_node_is_removed_under_writers_and_its_ranges_are_re_replicated() {
    let mut spec = Spec::two_dc();
    spec.dcs = vec![("dc1", 4), ("dc2", 3)];
    let mut c = Cluster::start(spec).await;
    let n1 = c.node("dc1-n1").clone();
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
    let through = |dc: &str| -> Vec<NodeInfo> {
        let ok = |n: &&NodeInfo| n.dc == dc && n.id != "dc1-n2";
        c.nodes.iter().filter(ok).cloned().collect()
    };
    let mut writers = Vec::new();
    for (dc, w) in [("dc1", 0), ("dc2", 0)] {
        let h = tokio::spawn(writer(through(dc), format!("{dc}-w{w}"), stop.clone()));
        writers.push((dc, h));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    let (ok, out) = tokio::task::block_in_place(|| removenode("dc1-n3", n1.admin_address));
    assert!(!ok && out.contains("alive"), "removing a live node: {out}");
    c.kill("dc1-n2");
    c.wait_seen("dc1-n1", "dc1-n2", false, Duration::from_secs(30))
        .await;
    let began = Instant::now();
    let (ok, out) = tokio::task::block_in_place(|| removenode("dc1-n2", n1.admin_address));
    assert!(ok, "removenode failed: {out}\n{}", c.log("dc1-n1"));
    eprintln!(
        "removed in {:?}: {}",
        began.elapsed(),
        out.lines().last().unwrap_or("")
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    for (dc, h) in writers {
        acked.push((dc, h.await.unwrap()));
    }

    let mut last = None;
    for n in c.nodes.iter().filter(|n| n.id != "dc1-n2") {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let l = layout_at(n.admin_address).await;
            let removed = l
                .as_ref()
                .and_then(|l| l.node("dc1-n2"))
                .map(|(_, _, x)| x.state);
            if removed == Some(NodeState::Removed) {
                last = l;
                break;
            }
            assert!(Instant::now() < deadline, "{}: dc1-n2 {removed:?}", n.id);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // Every remaining dc1 node holds exactly the pre-removal keys it replicates now.
    let ring = Ring::from_layout(&last.unwrap());
    let reader = ReplicaReader::default();
    for n in ring.nodes().iter().filter(|n| n.dc == "dc1") {
        for k in &before {
            let mine = ring
                .replicas("default", k.as_bytes())
                .unwrap()
                .contains(n.idx);
            let got = reader.holds(n, "default", k).await.expect("answers");
            if mine {
                assert_eq!(got, vec![k.clone()], "{} lacks {k}", n.id);
            }
        }
    }
    for (dc, keys) in &acked {
        let lost = unread(
            &c,
            &format!("{dc}-n3"),
            keys,
            Consistency::LocalQuorum,
            Duration::ZERO,
        )
        .await;
        assert!(
            lost.is_empty(),
            "{} of {} lost in {dc}: {:?}",
            lost.len(),
            keys.len(),
            &lost[..lost.len().min(10)]
        );
    }
    let all: Vec<String> = acked
        .iter()
        .flat_map(|(_, k)| k.iter().cloned())
        .chain(before)
        .collect();
    for level in [Consistency::Quorum, Consistency::All] {
        let lost = unread(&c, "dc1-n3", &all, level, Duration::from_secs(60)).await;
        assert!(
            lost.is_empty(),
            "{} of {} not read at {level:?}: {:?}",
            lost.len(),
            all.len(),
            &lost[..lost.len().min(10)]
        );
    }
}
