//! "Nothing acknowledged is ever lost", checked by oracles under faults
//! against six real node processes (2 DCs × 3 nodes, keyspaces `default`
//! {dc1:3, dc2:3} and `rf2` {dc1:2, dc2:2}): the register oracle and the set
//! workload (common/register.rs, set_workload.rs) run while the
//! nemesis (common/nemesis.rs) kills, restarts, cuts and heals nodes.
//! After the last heal and restart every acknowledged write must be read
//! back; each test prints one summary line.
//!
//! The CI variants run 30 s of nemesis each. The long run is ignored by
//! default and takes its knobs from the environment:
//!
//! ```sh
//! GEOKV_NEMESIS_SECS=600 GEOKV_NEMESIS_WORKERS=8 \
//!   cargo test --test integration nemesis::long_nemesis_run -- --ignored --nocapture
//! ```
//! (`scripts/nemesis` wraps it; `GEOKV_NEMESIS_SEED` replays a seed.)

use crate::common::nemesis::{nemesis_spec, wait_drained, AckTap, Nemesis, Nodes, RunConfig};
use crate::common::register::{self, RegisterLog};
use crate::common::set_workload::{self, SetLog};
use crate::common::Cluster;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Which workloads a run drives.
#[derive(Clone, Copy)]
struct Workloads {
    register: bool,
    set: bool,
}

/// Starts the cluster, runs the workloads under the nemesis, heals, waits
/// for convergence and checks both oracles; panics with every loss listed.
async fn run(cfg: RunConfig, which: Workloads) {
    println!(
        "nemesis run: {:?}, faults {}, {} workers per workload, put-context reuse {}, \
         seed {} (GEOKV_NEMESIS_SEED replays the fault and workload choices)",
        cfg.nemesis, cfg.faults, cfg.workers, cfg.reuse, cfg.seed
    );
    let cluster = Cluster::start(nemesis_spec()).await;
    let nodes = Nodes::of(&cluster).await;
    let tap = AckTap::default();
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut registers = Vec::new();
    let mut sets = Vec::new();
    for w in 0..cfg.workers {
        let (n, t, s) = (nodes.clone(), tap.clone(), stop.clone());
        if which.register {
            registers.push(tokio::spawn(register::writer(
                w,
                n.clone(),
                t.clone(),
                s.clone(),
                cfg.seed,
                started,
            )));
        }
        if which.set {
            sets.push(tokio::spawn(set_workload::worker(
                w, n, t, s, cfg.seed, cfg.reuse, started,
            )));
        }
    }
    let (cluster, history) = Nemesis::new(cluster, tap, cfg.seed)
        .run(cfg.nemesis, cfg.faults)
        .await;
    stop.store(true, Ordering::Relaxed);
    let mut reg_log = RegisterLog::default();
    for h in registers {
        reg_log.absorb(h.await.expect("register writer"));
    }
    let mut set_log = SetLog::default();
    for h in sets {
        set_log.absorb(h.await.expect("set worker"));
    }
    println!(
        "workloads stopped after {:?}; {} faults (listed above)",
        started.elapsed(),
        history.len()
    );
    let drained = wait_drained(&cluster, Duration::from_secs(90)).await;
    println!("hint and stream backlogs drained: {drained:?}");
    let mut failures = Vec::new();
    if which.register {
        failures.extend(check_register(&cluster, &nodes, &reg_log).await);
    }
    if which.set {
        failures.extend(check_set(&nodes, &set_log).await);
    }
    assert!(
        failures.is_empty(),
        "seed {}: acknowledged writes were lost:\n{}\nfaults (start since the run began):\n{}",
        cfg.seed,
        failures.join("\n"),
        history.join("\n")
    );
}

async fn check_register(cluster: &Cluster, nodes: &Nodes, log: &RegisterLog) -> Vec<String> {
    let report = register::verify(cluster, nodes, log, Duration::from_secs(30)).await;
    println!(
        "REGISTER SUMMARY: attempted {}, acknowledged {}, unknown {} ({} of them present), \
         lost {}, not on every replica {}, max siblings seen {}",
        log.attempted(),
        log.acked.len(),
        log.unknown.len(),
        report.unknown_present,
        report.lost.len(),
        report.unreplicated.len(),
        report.max_siblings
    );
    let mut out = Vec::new();
    for l in &report.lost {
        out.push(format!("register LOST: {l}"));
    }
    for l in &report.unreplicated {
        out.push(format!(
            "register NOT ON EVERY REPLICA 30 s after the first check: {l}"
        ));
    }
    assert!(log.acked.len() > 20, "the register writers made progress");
    out
}

async fn check_set(nodes: &Nodes, log: &SetLog) -> Vec<String> {
    let report = set_workload::verify(nodes, log, Duration::from_secs(30)).await;
    let reused = log.acked.iter().filter(|e| e.reused_put_context).count();
    println!(
        "SET SUMMARY: keys {}, elements attempted {}, acknowledged {} ({reused} with a put's \
         context), unknown {} ({} of them present), lost {}, phantoms {}, failed reads {}, \
         max siblings seen {}",
        log.keys.len(),
        log.attempted(),
        log.acked.len(),
        log.unknown.len(),
        report.unknown_present,
        report.lost.len(),
        report.phantoms.len(),
        log.failed_reads,
        report.max_siblings
    );
    let mut out: Vec<String> = report
        .lost
        .iter()
        .map(|l| format!("set LOST: {l}"))
        .collect();
    if !report.phantoms.is_empty() {
        out.push(format!(
            "set PHANTOM elements (never written): {:?}",
            report.phantoms
        ));
    }
    assert!(log.acked.len() > 20, "the set workers made progress");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_oracle_under_nemesis() {
    let mut cfg = RunConfig::from_env(30, 4);
    cfg.nemesis = Duration::from_secs(30);
    cfg.workers = 4;
    let which = Workloads {
        register: true,
        set: false,
    };
    run(cfg, which).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_workload_under_nemesis() {
    let mut cfg = RunConfig::from_env(30, 4);
    cfg.nemesis = Duration::from_secs(30);
    cfg.workers = 4;
    let which = Workloads {
        register: false,
        set: true,
    };
    run(cfg, which).await;
}

/// Both workloads under one long nemesis run; see the module doc.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long run: GEOKV_NEMESIS_SECS=600 scripts/nemesis (or cargo test --test integration nemesis::long -- --ignored)"]
async fn long_nemesis_run() {
    let cfg = RunConfig::from_env(600, 8);
    let which = Workloads {
        register: true,
        set: true,
    };
    run(cfg, which).await;
}
