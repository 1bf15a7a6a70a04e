//! The set workload (Jepsen's and Riak's): workers read-modify-write a few
//! hot keys whose values are sets of unique u64 elements (comma-separated).
//! A step reads the siblings and context, takes the union of the sibling
//! sets, adds a fresh element and writes it back with that context — or,
//! sometimes, writes its own last written set plus a fresh element with the
//! context its previous put on that key returned (a client may only be
//! handed a context that covers what it has seen, so this must be safe).
//! LOCAL_QUORUM mostly, QUORUM sometimes, through random nodes of both
//! datacenters, in keyspaces `default` and `rf2`. Hot keys rotate every few
//! seconds so values stay small in long runs.
//!
//! The oracle: every element whose put was acknowledged is in the union of
//! the siblings read at ALL after the heal, through every node; no element
//! appears that was never written. Failed or timed-out puts are unknown.
use super::nemesis::{get_in, put_in, AckTap, Nodes};
use super::register::until_passing;
use geokv::proto::v1::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Hot keys at any time.
const SLOTS: u64 = 3;
/// How long a hot key stays hot.
const GENERATION: Duration = Duration::from_secs(12);

/// One element's put as the client saw it.
#[derive(Debug, Clone)]
pub struct Element {
    pub element: u64,
    pub keyspace: &'static str,
    pub key: String,
    pub node: String,
    pub level: Consistency,
    /// Written with the context of the worker's own previous put.
    pub reused_put_context: bool,
    pub at: Duration,
}

/// What the workers did.
#[derive(Debug, Default)]
pub struct SetLog {
    pub acked: Vec<Element>,
    pub unknown: Vec<Element>,
    pub failed_reads: usize,
    /// Largest sibling count a worker's read returned.
    pub max_siblings: usize,
    pub keys: BTreeSet<(&'static str, String)>,
}

impl SetLog {
    pub fn attempted(&self) -> usize {
        self.acked.len() + self.unknown.len()
    }

    pub fn absorb(&mut self, o: SetLog) {
        self.acked.extend(o.acked);
        self.unknown.extend(o.unknown);
        self.failed_reads += o.failed_reads;
        self.max_siblings = self.max_siblings.max(o.max_siblings);
        self.keys.extend(o.keys);
    }
}

pub fn encode(set: &BTreeSet<u64>) -> Vec<u8> {
    let v: Vec<String> = set.iter().map(u64::to_string).collect();
    v.join(",").into_bytes()
}

/// The union of the sibling sets of a read (tombstones hold nothing).
pub fn union(r: &GetResponse) -> BTreeSet<u64> {
    let mut set = BTreeSet::new();
    for v in r.siblings.iter().filter_map(|s| s.value.as_ref()) {
        let text = String::from_utf8_lossy(v);
        set.extend(text.split(',').filter_map(|e| e.parse::<u64>().ok()));
    }
    set
}

fn hot_key(rng: &mut StdRng, started: Instant) -> (&'static str, String) {
    let slot = rng.random_range(0..SLOTS);
    let generation = started.elapsed().as_secs() / GENERATION.as_secs();
    let keyspace = if slot == SLOTS - 1 { "rf2" } else { "default" };
    (keyspace, format!("set-{slot}-{generation}"))
}

/// Worker `w` until `stop`; `reuse` is the chance of writing with the
/// context of its own previous put instead of a fresh read's.
pub async fn worker(
    w: usize,
    nodes: Nodes,
    tap: AckTap,
    stop: Arc<AtomicBool>,
    seed: u64,
    reuse: f64,
    started: Instant,
) -> SetLog {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_add(w as u64 * 104_729));
    let mut log = SetLog::default();
    // Per key: the context of this worker's last acknowledged put and the
    // set that put wrote.
    let mut own: BTreeMap<String, (Vec<u8>, BTreeSet<u64>)> = BTreeMap::new();
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let (keyspace, key) = hot_key(&mut rng, started);
        log.keys.insert((keyspace, key.clone()));
        let (node, mut c) = nodes.pick(&mut rng);
        let level = match rng.random_bool(0.2) {
            true => Consistency::Quorum,
            false => Consistency::LocalQuorum,
        };
        let reused = own.contains_key(&key) && rng.random_bool(reuse);
        let (context, mut set) = if reused {
            own[&key].clone()
        } else {
            match get_in(&mut c, keyspace, &key, level).await {
                Ok(r) => {
                    log.max_siblings = log.max_siblings.max(r.siblings.len());
                    (r.context.clone(), union(&r))
                }
                Err(_) => {
                    log.failed_reads += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            }
        };
        i += 1;
        let element = (w as u64 + 1) * 1_000_000_000 + i;
        set.insert(element);
        let r = put_in(&mut c, keyspace, &key, encode(&set), context, level).await;
        let e = Element {
            element,
            keyspace,
            key: key.clone(),
            node: node.clone(),
            level,
            reused_put_context: reused,
            at: started.elapsed(),
        };
        match r {
            Ok(p) => {
                tap.acked(&node);
                own.insert(key, (p.context, set));
                log.acked.push(e);
            }
            Err(_) => {
                own.remove(&key);
                log.unknown.push(e);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    log
}

/// The outcome of [`verify`].
#[derive(Debug, Default)]
pub struct SetReport {
    /// One line per acknowledged element missing from a final ALL read.
    pub lost: Vec<String>,
    /// Elements read that were never written.
    pub phantoms: Vec<u64>,
    pub max_siblings: usize,
    /// Unknown elements that are in the final sets (informative).
    pub unknown_present: usize,
}

/// Per key, from the latest attempt: the read error, or the acknowledged
/// elements a read at ALL did not show (and through which node).
type Misses = std::sync::Mutex<BTreeMap<String, Result<(String, Vec<u64>), String>>>;

/// Reads `key` at ALL through every node, records the union of what they
/// showed in `finals` and what some read missed in `misses`.
async fn read_all(
    nodes: &Nodes,
    k: &(&'static str, String),
    want: Option<&BTreeSet<u64>>,
    max: &AtomicUsize,
    misses: &Misses,
    finals: &std::sync::Mutex<BTreeMap<String, BTreeSet<u64>>>,
) -> Result<(), String> {
    misses.lock().unwrap().remove(&k.1);
    let mut seen = BTreeSet::new();
    let mut first_miss: Option<(String, Vec<u64>)> = None;
    for node in &nodes.ids {
        let mut c = nodes.client(node);
        let r = match get_in(&mut c, k.0, &k.1, Consistency::All).await {
            Ok(r) => r,
            Err(e) => {
                let e = format!("ALL via {node} failed: {e}");
                misses.lock().unwrap().insert(k.1.clone(), Err(e.clone()));
                return Err(e);
            }
        };
        max.fetch_max(r.siblings.len(), Ordering::Relaxed);
        let got = union(&r);
        let missing: Vec<u64> = want.map_or(Vec::new(), |w| w.difference(&got).copied().collect());
        if !missing.is_empty() && first_miss.is_none() {
            first_miss = Some((node.clone(), missing));
        }
        seen.extend(got);
    }
    finals.lock().unwrap().insert(k.1.clone(), seen);
    match first_miss {
        None => Ok(()),
        Some((node, missing)) => {
            let e = format!("ALL via {node} misses {} elements", missing.len());
            misses
                .lock()
                .unwrap()
                .insert(k.1.clone(), Ok((node, missing)));
            Err(e)
        }
    }
}

/// Reads every key at ALL through every node (retrying failures and misses
/// until `limit`) and compares the unions with the log.
pub async fn verify(nodes: &Nodes, log: &SetLog, limit: Duration) -> SetReport {
    let mut want: BTreeMap<(&'static str, String), BTreeSet<u64>> = BTreeMap::new();
    for e in &log.acked {
        (want.entry((e.keyspace, e.key.clone())).or_default()).insert(e.element);
    }
    let keys: Vec<(&'static str, String)> = log.keys.iter().cloned().collect();
    let max = AtomicUsize::new(0);
    let misses = Misses::default();
    let finals = std::sync::Mutex::new(BTreeMap::<String, BTreeSet<u64>>::new());
    until_passing("set reads at ALL", keys.iter().collect(), limit, |k| {
        let (want, max, misses, finals) = (&want, &max, &misses, &finals);
        read_all(nodes, k, want.get(k), max, misses, finals)
    })
    .await;
    let misses = misses.into_inner().unwrap();
    let finals = finals.into_inner().unwrap();
    let mut report = SetReport {
        max_siblings: max.load(Ordering::Relaxed).max(log.max_siblings),
        ..Default::default()
    };
    for e in &log.acked {
        let why = match misses.get(&e.key) {
            None => continue,
            Some(Ok((node, lost))) if lost.contains(&e.element) => {
                format!("not in the siblings read at ALL via {node}")
            }
            Some(Ok(_)) => continue,
            Some(Err(read)) => format!("unverified, no read at ALL succeeded: {read}"),
        };
        report.lost.push(format!(
            "element {} of {}/{} acked by {} at {:?} at {:.2}s{}: {why}",
            e.element,
            e.keyspace,
            e.key,
            e.node,
            e.level,
            e.at.as_secs_f64(),
            match e.reused_put_context {
                true => " (written with its previous put's context)",
                false => "",
            },
        ));
    }
    let written: BTreeSet<u64> = (log.acked.iter().chain(&log.unknown))
        .map(|e| e.element)
        .collect();
    for (key, seen) in &finals {
        report
            .phantoms
            .extend(seen.iter().filter(|e| !written.contains(e)));
        report.unknown_present += (log.unknown.iter())
            .filter(|e| &e.key == key && seen.contains(&e.element))
            .count();
    }
    report
}
