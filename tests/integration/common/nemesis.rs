//! The nemesis of the oracle tests: it owns a running [`Cluster`] for the
//! length of a run and applies one fault at a time — SIGKILL and restart of
//! a node (or of one node per datacenter), SIGKILL of a coordinator right
//! after it acknowledged a write, a cut between the datacenters, a node cut
//! off from every peer — holds it for a few seconds and undoes it. At the end
//! it heals everything, restarts every killed node and waits until all see
//! each other up. (Also: a coordinator and then the rest of its datacenter
//! SIGKILLed right after it acknowledged.)
//!
//! It also holds what the workloads share: per-node raw gRPC clients
//! ([`Nodes`]), bounded put/get calls, and the [`AckTap`] through which a
//! writer tells the nemesis that a coordinator just acknowledged. It never
//! decides whether a write was lost; the oracles do.
use super::{admin, Cluster, Kv, Spec};
use geokv::proto::v1::*;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Knobs of one run. The long run takes them from the environment.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// How long the nemesis keeps injecting faults (workloads run as long).
    pub nemesis: Duration,
    /// Writer tasks per workload.
    pub workers: usize,
    /// Seed of every random choice (nemesis and workloads), printed.
    pub seed: u64,
    /// Whether the nemesis injects faults at all (off: the workloads alone).
    pub faults: bool,
    /// Chance that a set worker writes with its previous put's context.
    pub reuse: f64,
}

impl RunConfig {
    /// `GEOKV_NEMESIS_SECS`, `GEOKV_NEMESIS_WORKERS`, `GEOKV_NEMESIS_SEED`
    /// (default: the clock), `GEOKV_NEMESIS_FAULTS` (`0` turns the faults
    /// off) and `GEOKV_NEMESIS_REUSE` (default 0.3).
    pub fn from_env(secs: u64, workers: usize) -> RunConfig {
        let var = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
        let clock = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        RunConfig {
            nemesis: Duration::from_secs(var("GEOKV_NEMESIS_SECS").unwrap_or(secs)),
            workers: var("GEOKV_NEMESIS_WORKERS").unwrap_or(workers as u64) as usize,
            seed: var("GEOKV_NEMESIS_SEED").unwrap_or(clock),
            faults: var("GEOKV_NEMESIS_FAULTS") != Some(0),
            reuse: std::env::var("GEOKV_NEMESIS_REUSE")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.3),
        }
    }
}

/// Two datacenters of three nodes ([`Spec::two_dc`]) plus keyspace `rf2`
/// ({dc1: 2, dc2: 2}), where a third of the coordinators are not replicas.
pub fn nemesis_spec() -> Spec {
    let mut spec = Spec::two_dc();
    spec.extra_keyspaces
        .push(("rf2", vec![("dc1", 2), ("dc2", 2)]));
    spec
}

/// Client-side bound on any call: the server is given 2 s.
const CALL_LIMIT: Duration = Duration::from_secs(6);

fn wire_opts(level: Consistency) -> Option<RequestOptions> {
    Some(RequestOptions {
        consistency: level as i32,
        explicit_count: 0,
        timeout_ms: 2000,
    })
}

/// A put in `keyspace`; any error, including the client-side timeout, is a
/// string (the outcome is unknown either way).
pub async fn put_in(
    c: &mut Kv,
    keyspace: &str,
    key: &str,
    value: Vec<u8>,
    context: Vec<u8>,
    level: Consistency,
) -> Result<PutResponse, String> {
    let req = PutRequest {
        keyspace: keyspace.into(),
        key: key.as_bytes().to_vec(),
        value,
        context,
        options: wire_opts(level),
    };
    match tokio::time::timeout(CALL_LIMIT, c.put(req)).await {
        Ok(Ok(r)) => Ok(r.into_inner()),
        Ok(Err(s)) => Err(format!("{:?}: {}", s.code(), s.message())),
        Err(_) => Err("client timeout".into()),
    }
}

/// A get in `keyspace`, bounded like [`put_in`].
pub async fn get_in(
    c: &mut Kv,
    keyspace: &str,
    key: &str,
    level: Consistency,
) -> Result<GetResponse, String> {
    let req = GetRequest {
        keyspace: keyspace.into(),
        key: key.as_bytes().to_vec(),
        options: wire_opts(level),
    };
    match tokio::time::timeout(CALL_LIMIT, c.get(req)).await {
        Ok(Ok(r)) => Ok(r.into_inner()),
        Ok(Err(s)) => Err(format!("{:?}: {}", s.code(), s.message())),
        Err(_) => Err("client timeout".into()),
    }
}

/// One lazily connected client per node (they reconnect after a restart).
#[derive(Clone)]
pub struct Nodes {
    pub ids: Vec<String>,
    clients: BTreeMap<String, Kv>,
}

impl Nodes {
    pub async fn of(cluster: &Cluster) -> Nodes {
        let mut clients = BTreeMap::new();
        for n in &cluster.nodes {
            clients.insert(n.id.clone(), cluster.client(&n.id).await);
        }
        Nodes {
            ids: cluster.nodes.iter().map(|n| n.id.clone()).collect(),
            clients,
        }
    }

    pub fn client(&self, id: &str) -> Kv {
        self.clients[id].clone()
    }

    /// A random node of either datacenter and its client.
    pub fn pick(&self, rng: &mut StdRng) -> (String, Kv) {
        let id = self.ids[rng.random_range(0..self.ids.len())].clone();
        let c = self.client(&id);
        (id, c)
    }
}

/// Lets the nemesis wait for the next acknowledgement a given coordinator
/// sends: writers call [`AckTap::acked`] after every successful put.
#[derive(Clone, Default)]
pub struct AckTap(Arc<Mutex<Option<Armed>>>);

/// The coordinator the nemesis waits on, and how to wake it.
type Armed = (String, oneshot::Sender<()>);

impl AckTap {
    pub fn acked(&self, node: &str) {
        let mut armed = self.0.lock().unwrap();
        if armed.as_ref().is_some_and(|(n, _)| n == node) {
            let (_, tx) = armed.take().expect("checked");
            let _ = tx.send(());
        }
    }

    fn arm(&self, node: &str) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        *self.0.lock().unwrap() = Some((node.to_string(), tx));
        rx
    }
}

#[derive(Debug, Clone)]
enum Fault {
    Kill(Vec<String>),
    /// Kill the first node as soon as it acknowledged a write, then the rest.
    KillAfterAck(Vec<String>),
    CutDcs,
    Isolate(String),
}

/// Drives faults against a cluster it owns until [`Nemesis::run`] returns it.
pub struct Nemesis {
    cluster: Cluster,
    tap: AckTap,
    rng: StdRng,
    /// Fault kinds left in this round.
    kinds: Vec<u8>,
    started: Instant,
    /// One line per fault applied, with its start time.
    pub history: Vec<String>,
}

impl Nemesis {
    pub fn new(cluster: Cluster, tap: AckTap, seed: u64) -> Nemesis {
        Nemesis {
            cluster,
            tap,
            rng: StdRng::seed_from_u64(seed ^ 0x6e656d65),
            kinds: Vec::new(),
            started: Instant::now(),
            history: Vec::new(),
        }
    }

    fn node_in(&mut self, dc: &str) -> String {
        let ids: Vec<String> = (self.cluster.nodes.iter())
            .filter(|n| n.dc == dc)
            .map(|n| n.id.clone())
            .collect();
        ids[self.rng.random_range(0..ids.len())].clone()
    }

    fn choose(&mut self) -> Fault {
        let dc = if self.rng.random_bool(0.5) {
            "dc1"
        } else {
            "dc2"
        };
        let node = self.node_in(dc);
        if self.kinds.is_empty() {
            // Every kind once per round, in a random order, so even a short
            // run sees each of them.
            self.kinds = (0..6).collect();
            self.kinds.shuffle(&mut self.rng);
        }
        match self.kinds.pop().expect("refilled") {
            0 => Fault::Kill(vec![node]),
            1 => Fault::Kill(vec![self.node_in("dc1"), self.node_in("dc2")]),
            2 => Fault::KillAfterAck(vec![node]),
            3 => {
                // The coordinator and then the rest of its datacenter: what
                // it was still sending to its peers must not be forgotten.
                let mut ids = vec![node.clone()];
                ids.extend(
                    (self.cluster.nodes.iter())
                        .filter(|n| n.dc == dc && n.id != node)
                        .map(|n| n.id.clone()),
                );
                Fault::KillAfterAck(ids)
            }
            4 => Fault::CutDcs,
            _ => Fault::Isolate(node),
        }
    }

    /// Applies random faults for `length` (or only waits, without
    /// `faults`), then heals, restarts every node and waits for the cluster
    /// to see itself whole. Returns the cluster.
    pub async fn run(mut self, length: Duration, faults: bool) -> (Cluster, Vec<String>) {
        if !faults {
            tokio::time::sleep(length).await;
        }
        while self.started.elapsed() < length {
            let fault = self.choose();
            let hold = Duration::from_millis(self.rng.random_range(1000..4000));
            let at = self.started.elapsed();
            let what = self.apply(&fault).await;
            self.history
                .push(format!("{:>6.1}s {what} for {hold:?}", at.as_secs_f64()));
            println!("nemesis {}", self.history.last().unwrap());
            tokio::time::sleep(hold).await;
            self.undo(&fault).await;
            let gap = self.rng.random_range(500..2000);
            tokio::time::sleep(Duration::from_millis(gap)).await;
        }
        self.settle().await;
        (self.cluster, self.history)
    }

    async fn apply(&mut self, fault: &Fault) -> String {
        match fault {
            Fault::Kill(ids) => {
                for id in ids {
                    self.cluster.kill(id);
                }
                format!("SIGKILL {ids:?}")
            }
            Fault::KillAfterAck(ids) => {
                let rx = self.tap.arm(&ids[0]);
                let waited = Instant::now();
                let seen = tokio::time::timeout(Duration::from_secs(5), rx).await;
                for id in ids {
                    self.cluster.kill(id);
                }
                match seen {
                    Ok(Ok(())) => format!(
                        "SIGKILL {ids:?} right after {} acknowledged (waited {:?})",
                        ids[0],
                        waited.elapsed()
                    ),
                    _ => format!("SIGKILL {ids:?} (no ack from {} within 5 s)", ids[0]),
                }
            }
            Fault::CutDcs => {
                self.cluster.partition_dcs("dc1", "dc2", true).await;
                "cut dc1 <-> dc2".into()
            }
            Fault::Isolate(id) => {
                for n in self.cluster.nodes.clone() {
                    let targets: Vec<String> = if n.id == *id {
                        vec!["dc1".into(), "dc2".into()]
                    } else {
                        vec![id.clone()]
                    };
                    for t in targets {
                        let path = format!("/faults/cut?target={t}");
                        let _ = admin(n.admin_address, "POST", &path).await;
                    }
                }
                format!("isolate {id} from every peer")
            }
        }
    }

    async fn undo(&mut self, fault: &Fault) {
        match fault {
            Fault::Kill(ids) | Fault::KillAfterAck(ids) => {
                for id in ids {
                    self.cluster.restart(id).await;
                }
            }
            Fault::CutDcs | Fault::Isolate(_) => self.heal_all().await,
        }
    }

    async fn heal_all(&self) {
        for n in &self.cluster.nodes {
            let _ = admin(n.admin_address, "POST", "/faults/heal?target=*").await;
        }
    }

    async fn settle(&mut self) {
        self.heal_all().await;
        self.cluster.wait_all_up(Duration::from_secs(60)).await;
    }
}

/// Waits until no node has hint or stream backlog; how long it took, or
/// `None` if some remained after `limit` (the oracle then still checks).
pub async fn wait_drained(cluster: &Cluster, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    loop {
        let mut backlog = 0.0;
        for n in &cluster.nodes {
            backlog += cluster
                .metric(&n.id, "geokv_hint_backlog_entries", "")
                .await;
        }
        if backlog == 0.0 {
            return Some(started.elapsed());
        }
        if started.elapsed() > limit {
            println!("backlog still {backlog} entries after {limit:?}");
            return None;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
