//! Restart durability against six real node processes (rf {dc1:3, dc2:3}):
//! blind puts at ONE through every node, every node SIGKILLed right after
//! the last acknowledgement, all restarted. Each acknowledged write must
//! reach every replica of the coordinator's datacenter within 30 s and every
//! replica of both within 60 s, checked per replica on its engine (internode
//! replica reads: no coordination, no read repair) and WITHOUT a manual
//! repair — the intent to replicate must have been as durable as the write.

use crate::common::nemesis::{put_in, Nodes};
use crate::common::*;
use geokv::proto::v1::*;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Acknowledged writes the run is made of.
const TARGET: usize = 2000;
/// Writer tasks (each round-robins over the six coordinators).
const WRITERS: usize = 48;

#[derive(Debug, Clone)]
struct Acked {
    key: String,
    value: String,
    node: String,
    dc: String,
}

/// Replicas (of `dcs`) that do not hold `a` yet.
async fn missing_on(
    cluster: &Cluster,
    reader: &ReplicaReader,
    a: &Acked,
    dcs: &[&str],
) -> Vec<String> {
    let mut out = Vec::new();
    for dc in dcs {
        for r in replicas_in(cluster, "default", &a.key, dc) {
            let held = reader.holds(&r, "default", &a.key).await;
            if !held.as_ref().is_some_and(|h| h.contains(&a.value)) {
                out.push(format!("{}={held:?}", r.id));
            }
        }
    }
    out
}

/// Waits until every write is on every replica of `scope` (its own DC or
/// both); panics after `limit` listing what is missing where.
async fn wait_everywhere(
    cluster: &Cluster,
    acked: &[Acked],
    own_dc: bool,
    limit: Duration,
) -> Duration {
    let reader = cluster.replica_reader();
    let started = Instant::now();
    let mut pending: Vec<&Acked> = acked.iter().collect();
    let mut pass = 0;
    loop {
        pass += 1;
        let mut still = Vec::new();
        for a in pending {
            let dcs: Vec<&str> = if own_dc {
                vec![a.dc.as_str()]
            } else {
                vec!["dc1", "dc2"]
            };
            let missing = missing_on(cluster, &reader, a, &dcs).await;
            if !missing.is_empty() {
                still.push((a, missing));
            }
        }
        let scope = if own_dc {
            "its own datacenter"
        } else {
            "both datacenters"
        };
        if pass == 1 || still.is_empty() || started.elapsed() > limit {
            println!(
                "pass {pass} at {:?}: {} of {} acknowledged writes not yet on every replica of {scope}",
                started.elapsed(),
                still.len(),
                acked.len()
            );
        }
        if still.is_empty() {
            return started.elapsed();
        }
        if started.elapsed() > limit {
            let list: Vec<String> = (still.iter())
                .map(|(a, m)| {
                    format!(
                        "{} = {:?} acked at ONE by {}; missing on {}",
                        a.key,
                        a.value,
                        a.node,
                        m.join(", ")
                    )
                })
                .collect();
            panic!(
                "{} of {} acknowledged writes are not on every replica of {scope} {limit:?} after \
                 the restart (no repair was run):\n{}",
                list.len(),
                acked.len(),
                list.join("\n")
            );
        }
        pending = still.into_iter().map(|(a, _)| a).collect();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_write_reaches_every_replica_after_a_kill_of_every_node() {
    let mut cluster = Cluster::start(Spec::two_dc()).await;
    let nodes = Nodes::of(&cluster).await;
    let dc_of: BTreeMap<String, String> = (cluster.nodes.iter())
        .map(|n| (n.id.clone(), n.dc.clone()))
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, mut rx) = mpsc::unbounded_channel::<Acked>();
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (nodes, stop, tx, dc_of) = (nodes.clone(), stop.clone(), tx.clone(), dc_of.clone());
        writers.push(tokio::spawn(async move {
            let mut unknown = 0usize;
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let node = nodes.ids[(w + i) % nodes.ids.len()].clone();
                let (key, value) = (format!("dur-{w}-{i}"), format!("v{w}-{i}"));
                let mut c = nodes.client(&node);
                match put_in(
                    &mut c,
                    "default",
                    &key,
                    value.clone().into_bytes(),
                    vec![],
                    Consistency::One,
                )
                .await
                {
                    Ok(_) => {
                        let dc = dc_of[&node].clone();
                        let _ = tx.send(Acked {
                            key,
                            value,
                            node,
                            dc,
                        });
                    }
                    Err(_) => unknown += 1,
                }
            }
            unknown
        }));
    }
    drop(tx);
    let mut acked = Vec::new();
    while let Some(a) = rx.recv().await {
        acked.push(a);
        if acked.len() == TARGET {
            // Right after the last acknowledgement: SIGKILL every node.
            stop.store(true, Ordering::Relaxed);
            for n in cluster.nodes.clone() {
                cluster.kill(&n.id);
            }
        }
    }
    let mut unknown = 0;
    for w in writers {
        unknown += w.await.expect("writer");
    }
    println!(
        "{} puts acknowledged at ONE ({} after the kill began), {unknown} unknown; every node SIGKILLed",
        acked.len(),
        acked.len() - TARGET
    );
    let restarted = Instant::now();
    for n in cluster.nodes.clone() {
        cluster.restart(&n.id).await;
    }
    cluster.wait_all_up(Duration::from_secs(60)).await;
    println!("all six nodes up again after {:?}", restarted.elapsed());
    let local = wait_everywhere(&cluster, &acked, true, Duration::from_secs(30)).await;
    println!("every write on every replica of its own datacenter {local:?} after the restart");
    let all = wait_everywhere(&cluster, &acked, false, Duration::from_secs(60)).await;
    println!("every write on every replica of both datacenters {all:?} later");
}

/// Copies `from` over `to` (a data directory, the node stopped).
fn restore(from: &std::path::Path, to: &std::path::Path) {
    std::fs::remove_dir_all(to.join("db")).ok();
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg(from.join("db"))
        .arg(to)
        .status()
        .expect("cp");
    assert!(st.success());
}

/// Under `--durability periodic` a replica acknowledges before its fsync, and
/// the coordinator then forgets its intent to replicate there: a power loss
/// on the replica drops that tail of its WAL. Simulated here by restoring an
/// older copy of its data directory and a new boot id. The node's next
/// (unclean, after an OS restart) start must record every range it
/// replicates for anti-entropy, so the writes come back from the other
/// replicas without a manual repair (the periodic sweep is an hour away).
/// A plain SIGKILL (the first restart here) loses nothing and records
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_wal_tail_comes_back_from_the_other_replicas() {
    let mut spec = Spec::two_dc();
    spec.dcs = vec![("dc1", 3)];
    spec.replication = vec![("dc1", 3)];
    spec.extra_keyspaces.clear();
    let mut cluster = Cluster::start(spec).await;
    let victim = "dc1-n3";
    let older = tempfile::tempdir().unwrap();
    let mut c = cluster.client("dc1-n1").await;
    for i in 0..50 {
        put(
            &mut c,
            &format!("before-{i}"),
            "v",
            vec![],
            Consistency::All,
        )
        .await
        .expect("ALL put");
    }
    cluster.kill(victim);
    restore(&cluster.data_dir(victim), older.path());
    cluster.restart(victim).await;
    assert!(
        !cluster
            .log(victim)
            .contains("every range this node replicates or gains is recorded"),
        "a SIGKILL without an OS restart loses no WAL: no repair"
    );
    cluster
        .wait_seen("dc1-n1", victim, true, Duration::from_secs(20))
        .await;
    let mut lost = Vec::new();
    for i in 0..100 {
        let key = format!("tail-{i}");
        put(&mut c, &key, "v", vec![], Consistency::All)
            .await
            .expect("ALL put: every replica acknowledged it");
        lost.push(key);
    }
    // The power loss: the node dies and its disk is the older copy.
    cluster.kill(victim);
    restore(older.path(), &cluster.data_dir(victim));
    cluster.restart_after_reboot(victim).await;
    assert!(
        cluster
            .log(victim)
            .contains("every range this node replicates or gains is recorded"),
        "the start counted as after an OS restart"
    );

    let reader = cluster.replica_reader();
    let node = cluster.node(victim).clone();
    let started = Instant::now();
    loop {
        let mut missing = Vec::new();
        for key in &lost {
            if reader.holds(&node, "default", key).await != Some(vec!["v".to_string()]) {
                missing.push(key.clone());
            }
        }
        if missing.is_empty() {
            eprintln!("the lost tail was back after {:?}", started.elapsed());
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{} acknowledged writes still missing on {victim} 60 s after its unclean \
             start (e.g. {:?})\n{}",
            missing.len(),
            &missing[..missing.len().min(5)],
            cluster.log(victim)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
