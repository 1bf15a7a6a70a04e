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
//! Removed everywhere and its new owners hold its keys. And a replacement
//! while every dc2 process is paused (SIGSTOP): it completes from dc1's
//! survivors, dc2 learns it once resumed, nothing acknowledged is lost.

use crate::common::*;
use geokv::layout::NodeState;
use geokv::proto::v1::Consistency;
use geokv::ring::Ring;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Writers with the keys tagged `{dc}-w{w}`, never through dc1-n2 (the
/// node that dies); each joins to its datacenter and acknowledged keys.
type Writers = Vec<(&'static str, tokio::task::JoinHandle<Vec<String>>)>;

/// A 4+3 two-datacenter cluster holding 2000 keys `pre-i`, and LOCAL_QUORUM
/// writers in `tags` running for a second already.
async fn loaded_cluster_under_writers(
    tags: &[(&'static str, usize)],
) -> (Cluster, Vec<String>, Writers, Arc<AtomicBool>) {
    let mut spec = Spec::two_dc();
    spec.dcs = vec![("dc1", 4), ("dc2", 3)];
    let c = Cluster::start(spec).await;
    let before = c.preload("dc1-n1", "pre", 2000).await;
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for &(dc, w) in tags {
        let clients = c.clients_in(dc, &["dc1-n2"]);
        let h = tokio::spawn(writer(clients, format!("{dc}-w{w}"), stop.clone()));
        writers.push((dc, h));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    (c, before, writers, stop)
}

/// Stops the writers (a second later) and collects their acknowledged keys.
async fn stop_writers(writers: Writers, stop: &AtomicBool) -> Vec<(&'static str, Vec<String>)> {
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    for (dc, h) in writers {
        acked.push((dc, h.await.unwrap()));
    }
    acked
}

/// Every acknowledged write: LOCAL_QUORUM in its DC at once, then QUORUM
/// and ALL (all of them plus `before`) once streams and hints drained.
async fn every_write_reads_back(c: &Cluster, acked: &[(&str, Vec<String>)], before: Vec<String>) {
    for (dc, keys) in acked {
        let mut r = c.client(&format!("{dc}-n3")).await;
        assert_all_read(&mut r, keys, Consistency::LocalQuorum, Duration::ZERO).await;
    }
    let all: Vec<String> = acked
        .iter()
        .flat_map(|(_, k)| k.iter().cloned())
        .chain(before)
        .collect();
    let mut r = c.client("dc1-n3").await;
    for level in [Consistency::Quorum, Consistency::All] {
        assert_all_read(&mut r, &all, level, Duration::from_secs(60)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_node_is_replaced_under_writers_and_nothing_acknowledged_is_lost() {
    let tags = [("dc1", 0), ("dc1", 1), ("dc2", 0)];
    let (mut c, before, writers, stop) = loaded_cluster_under_writers(&tags).await;
    let n1 = c.node("dc1-n1").clone();
    let before_layout = layout_at(n1.admin_address).await.expect("GET /layout");
    // New addresses for the replacement: dc1's unused .19.
    let ip = c.spare_ip(19);
    let replace = |dead: &str, dir: &str| {
        c.spawn_new_node("dc1-n9", dir, ip, n1.peer_address, &["--replace", dead])
    };

    // Refused while dc1-n2 is alive, and for an unknown node.
    let limit = Duration::from_secs(30);
    let log = replace("dc1-n2", "refused-live").wait_refused(limit).await;
    assert!(log.contains("dc1-n2' is alive"), "{log}");
    let log = replace("dc1-n77", "refused-unknown")
        .wait_refused(limit)
        .await;
    assert!(log.contains("not in the cluster's layout"), "{log}");

    c.kill("dc1-n2");
    c.wait_seen("dc1-n1", "dc1-n2", false, Duration::from_secs(30))
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    let began = Instant::now();
    let mut n9 = c.spawn_new_node(
        "dc1-n9",
        "dc1-n9",
        ip,
        n1.peer_address,
        &["--replace", "dc1-n2"],
    );
    let new_admin = n9.admin_address();
    let mut saw_progress = false;
    let done = n9
        .wait_normal(n1.admin_address, Duration::from_secs(240), async || {
            if let Ok(body) = admin(new_admin, "GET", "/movement").await {
                saw_progress |= body.contains("replacement of dc1-n2 by dc1-n9");
            }
        })
        .await;
    eprintln!(
        "replaced in {:?} (layout v{})",
        began.elapsed(),
        done.version
    );
    for line in n9
        .full_log()
        .lines()
        .filter(|l| l.contains("replacement complete"))
    {
        eprintln!("{line}");
    }
    assert!(
        saw_progress,
        "GET /movement on the new node never showed the replacement"
    );
    let acked = stop_writers(writers, &stop).await;
    let total: usize = acked.iter().map(|(_, k)| k.len()).sum();
    assert!(total > 100, "only {total} writes acknowledged");

    // Every node's layout: the new node Normal with the dead one's tokens,
    // the dead one Removed with none.
    let dead_tokens = before_layout.node("dc1-n2").unwrap().2.tokens.clone();
    let mut admins: Vec<SocketAddr> = (c.nodes.iter())
        .filter(|n| n.id != "dc1-n2")
        .map(|n| n.admin_address)
        .collect();
    admins.push(new_admin);
    until_every_layout(&admins, |l| {
        let new = l
            .node("dc1-n9")
            .map(|(_, _, n)| (n.state, n.tokens.clone()));
        let dead = l.node("dc1-n2").map(|(_, _, n)| (n.state, n.tokens.len()));
        new == Some((NodeState::Normal, dead_tokens.clone()))
            && dead == Some((NodeState::Removed, 0))
            && l.movements.is_empty()
    })
    .await;

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
    let n9_info = new.node_by_id("dc1-n9").unwrap().clone();
    let reader = c.replica_reader();
    let mut held = 0;
    for k in &before {
        let had = (old.replicas("default", k.as_bytes()).unwrap()).contains(dead_idx);
        let got = reader.holds(&n9_info, "default", k).await;
        let want = if had { vec![k.clone()] } else { Vec::new() };
        assert_eq!(got.expect("dc1-n9 answers"), want, "{k}");
        held += usize::from(had);
    }
    eprintln!(
        "dc1-n9 holds {held} of {} pre-replacement keys",
        before.len()
    );
    every_write_reads_back(&c, &acked, before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_node_is_removed_under_writers_and_its_ranges_are_re_replicated() {
    let (mut c, before, writers, stop) =
        loaded_cluster_under_writers(&[("dc1", 0), ("dc2", 0)]).await;
    let n1 = c.node("dc1-n1").clone();
    let endpoint = n1.admin_address.to_string();
    let removenode = |c: &Cluster, id: &str| c.cli(&["removenode", id, "--endpoint", &endpoint]);

    let (ok, out) = tokio::task::block_in_place(|| removenode(&c, "dc1-n3"));
    assert!(!ok && out.contains("alive"), "removing a live node: {out}");
    c.kill("dc1-n2");
    c.wait_seen("dc1-n1", "dc1-n2", false, Duration::from_secs(30))
        .await;
    let began = Instant::now();
    let (ok, out) = tokio::task::block_in_place(|| removenode(&c, "dc1-n2"));
    assert!(ok, "removenode failed: {out}\n{}", c.log("dc1-n1"));
    let last_line = out.lines().last().unwrap_or("");
    eprintln!("removed in {:?}: {last_line}", began.elapsed());
    let acked = stop_writers(writers, &stop).await;

    let admins: Vec<SocketAddr> = (c.nodes.iter())
        .filter(|n| n.id != "dc1-n2")
        .map(|n| n.admin_address)
        .collect();
    let last = until_every_layout(&admins, |l| {
        l.node("dc1-n2").map(|(_, _, x)| x.state) == Some(NodeState::Removed)
    })
    .await;
    // Every remaining dc1 node holds exactly the pre-removal keys it replicates now.
    let ring = Ring::from_layout(&last);
    let reader = c.replica_reader();
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
    every_write_reads_back(&c, &acked, before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_is_replaced_while_most_of_the_other_datacenter_is_paused_and_nothing_is_lost() {
    let (mut c, before, writers, stop) =
        loaded_cluster_under_writers(&[("dc1", 0), ("dc1", 1)]).await;
    // Two of dc2's three nodes: a layout change is a compare-and-set that
    // needs a majority of the members' votes (the dead node and the
    // joining replacement have none; with the whole of dc2 paused too few
    // may be left to decide the replacement's steps; README "Who decides a
    // layout change"). dc2 has no quorum of its own meanwhile.
    let dc2: Vec<String> = (c.nodes.iter())
        .filter(|n| n.dc == "dc2")
        .map(|n| n.id.clone())
        .take(2)
        .collect();
    for id in &dc2 {
        c.signal(id, libc::SIGSTOP);
    }
    let n1 = c.node("dc1-n1").clone();
    c.kill("dc1-n2");
    for id in dc2.iter().map(String::as_str).chain(["dc1-n2"]) {
        c.wait_seen("dc1-n1", id, false, Duration::from_secs(30))
            .await;
    }
    let ip = c.spare_ip(19);
    let began = Instant::now();
    let mut n9 = c.spawn_new_node(
        "dc1-n9",
        "dc1-n9",
        ip,
        n1.peer_address,
        &["--replace", "dc1-n2"],
    );
    let done = n9
        .wait_normal(n1.admin_address, Duration::from_secs(240), async || {})
        .await;
    eprintln!(
        "replaced with dc2 paused in {:?} (layout v{})",
        began.elapsed(),
        done.version
    );
    let acked = stop_writers(writers, &stop).await;
    let total: usize = acked.iter().map(|(_, k)| k.len()).sum();
    assert!(total > 100, "only {total} writes acknowledged");
    for id in &dc2 {
        c.signal(id, libc::SIGCONT);
    }
    // Every node, dc2's too once resumed, ends on the replacement.
    let mut admins: Vec<SocketAddr> = (c.nodes.iter())
        .filter(|n| n.id != "dc1-n2")
        .map(|n| n.admin_address)
        .collect();
    admins.push(n9.admin_address());
    until_every_layout(&admins, |l| {
        let state = |id: &str| l.node(id).map(|(_, _, n)| n.state);
        state("dc1-n9") == Some(NodeState::Normal)
            && state("dc1-n2") == Some(NodeState::Removed)
            && l.movements.is_empty()
    })
    .await;
    every_write_reads_back(&c, &acked, before).await;
}
