//! The register oracle: writers put fresh values under unique keys at
//! LOCAL_QUORUM through random nodes of both datacenters (keyspaces
//! `default` and `rf2`); the oracle records every write the cluster
//! acknowledged. A write that failed or timed out is *unknown*: a later read
//! may or may not show it, and the oracle asserts nothing about it.
//!
//! After the nemesis healed everything, [`verify`] checks that every replica
//! of each acknowledged key holds its value (engine reads, no repair), then
//! reads it at LOCAL_ONE through every node and at ALL: the value must be
//! among the siblings every time. Failed reads and misses are retried until a
//! deadline; what still fails is listed with its acknowledgement and what
//! each replica holds.
use super::nemesis::{get_in, put_in, AckTap, Nodes};
use super::{replicas_in, Cluster, ReplicaReader};
use futures::StreamExt;
use geokv::proto::v1::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One write as the client saw it.
#[derive(Debug, Clone)]
pub struct Write {
    pub keyspace: &'static str,
    pub key: String,
    pub value: String,
    pub node: String,
    /// Since the start of the run, when the answer came.
    pub at: Duration,
    /// The error, for unknown writes.
    pub error: Option<String>,
}

/// What one or more writers did.
#[derive(Debug, Default)]
pub struct RegisterLog {
    pub acked: Vec<Write>,
    pub unknown: Vec<Write>,
}

impl RegisterLog {
    pub fn attempted(&self) -> usize {
        self.acked.len() + self.unknown.len()
    }

    pub fn absorb(&mut self, other: RegisterLog) {
        self.acked.extend(other.acked);
        self.unknown.extend(other.unknown);
    }
}

/// Pause between a writer's puts: keeps the number of keys to verify at
/// the end (13 reads each) proportional to the run, about 8 per second.
const PAUSE: Duration = Duration::from_millis(100);

/// Writer `w`: one LOCAL_QUORUM blind put of a fresh key after another
/// until `stop`, a third of them in keyspace `rf2`.
pub async fn writer(
    w: usize,
    nodes: Nodes,
    tap: AckTap,
    stop: Arc<AtomicBool>,
    seed: u64,
    started: Instant,
) -> RegisterLog {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_add(w as u64 * 7919));
    let mut log = RegisterLog::default();
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let keyspace = if i % 3 == 0 { "rf2" } else { "default" };
        let key = format!("reg-{w}-{i}");
        let value = format!("v{w}-{i}-{:08x}", rng.random::<u32>());
        let (node, mut c) = nodes.pick(&mut rng);
        let r = put_in(
            &mut c,
            keyspace,
            &key,
            value.clone().into_bytes(),
            vec![],
            Consistency::LocalQuorum,
        )
        .await;
        let mut write = Write {
            keyspace,
            key,
            value,
            node: node.clone(),
            at: started.elapsed(),
            error: None,
        };
        match r {
            Ok(_) => {
                tap.acked(&node);
                log.acked.push(write);
            }
            Err(e) => {
                write.error = Some(e);
                log.unknown.push(write);
            }
        }
        tokio::time::sleep(PAUSE).await;
    }
    log
}

/// The outcome of [`verify`].
#[derive(Debug, Default)]
pub struct RegisterReport {
    /// Acknowledged writes some replica never received (engine reads).
    pub unreplicated: Vec<String>,
    /// Acknowledged writes some LOCAL_ONE or ALL read did not show.
    pub lost: Vec<String>,
    pub max_siblings: usize,
    /// Unknown writes that did show up (informative).
    pub unknown_present: usize,
}

/// Runs `check` on every item, then again on those that failed every 2 s,
/// until all pass or `limit` has passed since the first pass ended (a first
/// pass over many items can take longer than `limit` itself); returns the
/// failing items with their last error.
pub async fn until_passing<'a, T, F, Fut>(
    what: &str,
    items: Vec<&'a T>,
    limit: Duration,
    check: F,
) -> Vec<(&'a T, String)>
where
    F: Fn(&'a T) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let started = Instant::now();
    let total = items.len();
    let mut pending = items;
    let mut pass = 0;
    let mut deadline: Option<Instant> = None;
    loop {
        pass += 1;
        let failed: Vec<(&T, String)> = futures::stream::iter(pending)
            .map(|t| {
                let f = check(t);
                async move { f.await.err().map(|e| (t, e)) }
            })
            .buffer_unordered(24)
            .filter_map(futures::future::ready)
            .collect()
            .await;
        println!(
            "{what} pass {pass}: {} of {total} not yet ({:?})",
            failed.len(),
            started.elapsed()
        );
        let deadline = *deadline.get_or_insert_with(|| Instant::now() + limit);
        if failed.is_empty() || Instant::now() > deadline {
            return failed;
        }
        pending = failed.into_iter().map(|(t, _)| t).collect();
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Reads `w` through every node at LOCAL_ONE, then at ALL; `Err` names
/// the first read that did not show the value. Failed reads are retried a
/// few times before they count.
async fn check(nodes: &Nodes, w: &Write, max_siblings: &AtomicUsize) -> Result<(), String> {
    let mut plan: Vec<(String, Consistency)> = (nodes.ids.iter())
        .map(|n| (n.clone(), Consistency::LocalOne))
        .collect();
    plan.push((
        nodes.ids[w.key.len() % nodes.ids.len()].clone(),
        Consistency::All,
    ));
    for (node, level) in plan {
        let mut c = nodes.client(&node);
        let mut last = String::new();
        let mut shown = false;
        for _ in 0..3 {
            match get_in(&mut c, w.keyspace, &w.key, level).await {
                Ok(r) => {
                    max_siblings.fetch_max(r.siblings.len(), Ordering::Relaxed);
                    let vals: Vec<String> = (r.siblings.iter())
                        .filter_map(|s| s.value.as_ref())
                        .map(|v| String::from_utf8_lossy(v).to_string())
                        .collect();
                    shown = vals.contains(&w.value);
                    last = format!("siblings {vals:?}");
                    break;
                }
                Err(e) => last = e,
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        if !shown {
            return Err(format!("{level:?} via {node}: {last}"));
        }
    }
    Ok(())
}

/// Whether every replica of `w` in both datacenters holds its value in its
/// engine (internode replica reads: no coordination, no read repair).
async fn on_every_replica(
    cluster: &Cluster,
    reader: &ReplicaReader,
    w: &Write,
) -> Result<(), String> {
    let mut missing = Vec::new();
    for dc in ["dc1", "dc2"] {
        for r in replicas_in(cluster, w.keyspace, &w.key, dc) {
            let held = reader.holds(&r, w.keyspace, &w.key).await;
            if !held.as_ref().is_some_and(|h| h.contains(&w.value)) {
                missing.push(format!("{}={held:?}", r.id));
            }
        }
    }
    match missing.is_empty() {
        true => Ok(()),
        false => Err(format!("missing on {}", missing.join(", "))),
    }
}

fn describe(w: &Write, e: &str) -> String {
    format!(
        "{}/{} = {:?} acked by {} at {:.2}s: {e}",
        w.keyspace,
        w.key,
        w.value,
        w.node,
        w.at.as_secs_f64()
    )
}

/// Checks every acknowledged write (see the module doc): first that every
/// replica holds it, waiting up to `limit` for convergence (before any
/// coordinated read can repair a replica), then the LOCAL_ONE and ALL reads.
pub async fn verify(
    cluster: &Cluster,
    nodes: &Nodes,
    log: &RegisterLog,
    limit: Duration,
) -> RegisterReport {
    let mut report = RegisterReport::default();
    let reader = cluster.replica_reader();
    let acked: Vec<&Write> = log.acked.iter().collect();
    let reader = &reader;
    let missing = until_passing("register replicas", acked.clone(), limit, |w| {
        on_every_replica(cluster, reader, w)
    })
    .await;
    report.unreplicated = missing.iter().map(|(w, e)| describe(w, e)).collect();
    let max = AtomicUsize::new(0);
    let max = &max;
    let lost = until_passing("register reads", acked, limit, |w| check(nodes, w, max)).await;
    for (w, e) in lost {
        let held = on_every_replica(cluster, reader, w).await.err();
        let held = held.unwrap_or_else(|| "every replica holds it".into());
        report.lost.push(describe(w, &format!("{e}; {held}")));
    }
    report.max_siblings = max.load(Ordering::Relaxed);
    report.unknown_present = count_present(nodes, &log.unknown).await;
    report
}

/// How many unknown writes a LOCAL_QUORUM read shows (informative only).
async fn count_present(nodes: &Nodes, unknown: &[Write]) -> usize {
    futures::stream::iter(unknown.iter())
        .map(|w| async move {
            let mut c = nodes.client(&w.node);
            match get_in(&mut c, w.keyspace, &w.key, Consistency::LocalQuorum).await {
                Ok(r) => r
                    .siblings
                    .iter()
                    .any(|s| s.value.as_deref() == Some(w.value.as_bytes())),
                Err(_) => false,
            }
        })
        .buffer_unordered(12)
        .filter(|p| futures::future::ready(*p))
        .count()
        .await
}
