//! [`Gossiper`]: the cheaply clonable handle the node shares between the
//! gossip loop, the internode gRPC server and whoever asks "is X up?".
//!
//! Owns the round loop (tick → choose peers → exchange digests → merge
//! replies) and the clock seam. Must not know the transport: the caller
//! passes an `exchange` function (a tonic client in the node, a direct
//! [`Gossiper::handle_digest`] call in tests). The algorithms stay in
//! `state.rs` and `select.rs`; this file only sequences and locks.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::Poll;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;
use tracing::{debug, instrument};

use super::config::MembershipConfig;
use super::state::{Membership, MembershipError, MergeOutcome, PeerInfo, PeerStatus};
use crate::proto::v1::internode::GossipDigest;
use crate::topology::{NodeInfo, Topology};

/// Where membership gets "now" from: monotonic milliseconds since an
/// arbitrary origin. Injected so simulations and tests control time.
pub trait Clock: Send + Sync + 'static {
    /// Monotonic milliseconds; must never go backwards.
    fn now_ms(&self) -> u64;
}

/// The real clock: milliseconds since the clock was created.
#[derive(Debug)]
pub struct MonotonicClock {
    origin: Instant,
}

impl MonotonicClock {
    /// A clock whose zero is now.
    pub fn new() -> Self {
        Self {
            origin: Instant::now(),
        }
    }
}

impl Default for MonotonicClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for MonotonicClock {
    fn now_ms(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64
    }
}

/// A clock that only moves when told to: for tests and simulations.
#[derive(Debug, Default)]
pub struct ManualClock {
    now: AtomicU64,
}

impl ManualClock {
    /// A clock reading `start_ms`.
    pub fn new(start_ms: u64) -> Self {
        Self {
            now: AtomicU64::new(start_ms),
        }
    }

    /// Moves the clock to `now_ms` (never backwards).
    pub fn set(&self, now_ms: u64) {
        self.now.fetch_max(now_ms, Ordering::Relaxed);
    }

    /// Moves the clock forward by `ms`.
    pub fn advance(&self, ms: u64) {
        self.now.fetch_add(ms, Ordering::Relaxed);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.now.load(Ordering::Relaxed)
    }
}

/// Gossip membership for one node. Clones share state.
#[derive(Clone)]
pub struct Gossiper {
    inner: Arc<Inner>,
}

struct Inner {
    /// The table. Every method locks it briefly; never held across `.await`.
    table: Mutex<Membership>,
    /// The members, by id; handed to `exchange` so the caller knows where
    /// to dial.
    nodes: Mutex<HashMap<String, NodeInfo>>,
    /// Source of `now` for every table call.
    clock: Arc<dyn Clock>,
    /// Round period; also the deadline for one round's exchanges.
    interval: Duration,
    /// Whether this node takes writes, asked at each round (set once by
    /// the node: `Cluster::serving`); unset, it is ready.
    ready: OnceLock<ReadyProbe>,
}

/// Answers whether this node takes writes now; cheap, takes no lock the
/// table's holders take.
pub type ReadyProbe = Arc<dyn Fn() -> bool + Send + Sync>;

impl std::fmt::Debug for Gossiper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gossiper")
            .field("nodes", &self.inner.nodes.lock().len())
            .field("interval", &self.inner.interval)
            .finish_non_exhaustive()
    }
}

impl Gossiper {
    /// Membership for `self_id` among every node of `topology`.
    /// `generation` is our start time in ms, persisted by the caller so that
    /// it is strictly greater than any earlier generation of this node:
    /// peers ignore a lower one, so we would look dead until it caught up.
    pub fn from_topology(
        config: MembershipConfig,
        topology: &Topology,
        self_id: &str,
        generation: u64,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, MembershipError> {
        Self::new(config, topology.nodes(), self_id, generation, clock)
    }

    /// As [`from_topology`](Self::from_topology), from
    /// `Topology::nodes()` (ourselves included, `nodes[i].idx == NodeIdx(i)`).
    pub fn new(
        config: MembershipConfig,
        nodes: Vec<NodeInfo>,
        self_id: &str,
        generation: u64,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, MembershipError> {
        if let Some((position, n)) = nodes
            .iter()
            .enumerate()
            .find(|(i, n)| n.idx.0 as usize != *i)
        {
            return Err(MembershipError::IndexMismatch {
                id: n.id.clone(),
                idx: n.idx.0,
                position,
            });
        }
        let interval = Duration::from_millis(config.gossip_interval_ms);
        let peers = nodes.iter().map(PeerInfo::from);
        let table = Membership::new(config, peers, self_id, generation, clock.now_ms())?;
        let nodes = nodes.into_iter().map(|n| (n.id.clone(), n)).collect();
        Ok(Self {
            inner: Arc::new(Inner {
                table: Mutex::new(table),
                nodes: Mutex::new(nodes),
                clock,
                interval,
                ready: OnceLock::new(),
            }),
        })
    }

    /// Server side of a gossip exchange: merge the caller's digest, reply
    /// with ours (which now holds the maximum of both).
    #[instrument(level = "trace", skip_all, fields(from = %incoming.from))]
    pub fn handle_digest(&self, incoming: GossipDigest) -> GossipDigest {
        let now = self.inner.clock.now_ms();
        let mut table = self.inner.table.lock();
        let merged = table.apply_digest(&incoming, now);
        log_merge(&incoming.from, merged);
        table.digest()
    }

    /// Client side, after an exchange: merge the peer's reply.
    pub fn apply_reply(&self, reply: &GossipDigest) -> MergeOutcome {
        let now = self.inner.clock.now_ms();
        let merged = self.inner.table.lock().apply_digest(reply, now);
        log_merge(&reply.from, merged);
        merged
    }

    /// Starts a round: bumps our heartbeat, re-evaluates every verdict, and
    /// returns the peers to contact with the digest to send each. `run`
    /// calls this every interval; simulations call it directly.
    /// Our entry carries whether we take writes, as the probe says now.
    pub fn begin_round(&self, rng: &mut impl Rng) -> Vec<(NodeInfo, GossipDigest)> {
        let now = self.inner.clock.now_ms();
        let ready = self.inner.ready.get().is_none_or(|probe| probe());
        let (peers, digest) = {
            let mut table = self.inner.table.lock();
            table.set_ready(ready);
            table.tick(now);
            let ids: Vec<String> = (table.plan_round(now, rng).into_iter())
                .map(|i| table.peer(i).id.clone())
                .collect();
            (ids, table.digest())
        };
        let nodes = self.inner.nodes.lock();
        peers
            .into_iter()
            .filter_map(|id| nodes.get(&id).map(|n| (n.clone(), digest.clone())))
            .collect()
    }

    /// Follows a new layout: gossip with exactly `members` (ourselves
    /// kept), keeping what is known of the nodes that stay.
    pub fn set_members(&self, members: &[NodeInfo]) {
        let mut table = self.inner.table.lock();
        table.set_members(members.iter().map(PeerInfo::from).collect());
        *self.inner.nodes.lock() = members.iter().map(|n| (n.id.clone(), n.clone())).collect();
    }

    /// Whether `node_id` is up now (ourselves: always; unknown ids: never).
    pub fn is_up(&self, node_id: &str) -> bool {
        let now = self.inner.clock.now_ms();
        self.inner.table.lock().is_up_id(node_id, now)
    }

    /// Whether `node_id` takes writes ([`Membership::is_ready`]): a node
    /// up but not ready serves reads, not writes (review-tidy34 L4).
    pub fn is_ready(&self, node_id: &str) -> bool {
        self.inner.table.lock().is_ready(node_id)
    }

    /// Sets (once) how this node knows whether it takes writes, which each
    /// round gossips with its heartbeat.
    pub fn report_readiness(&self, probe: ReadyProbe) {
        let _ = self.inner.ready.set(probe);
    }

    /// The feature bits `node_id` advertises ([`Membership::features`]).
    pub fn features(&self, node_id: &str) -> Option<u64> {
        self.inner.table.lock().features(node_id)
    }

    /// Every node's status now, in topology order.
    pub fn snapshot(&self) -> Vec<PeerStatus> {
        let now = self.inner.clock.now_ms();
        self.inner.table.lock().snapshot(now)
    }

    /// Our current digest (what the next exchange would send).
    pub fn digest(&self) -> GossipDigest {
        self.inner.table.lock().digest()
    }

    /// The gossip loop: every interval, one round of exchanges with the
    /// peers [`begin_round`](Self::begin_round) picks, run concurrently;
    /// each reply is merged as it arrives. A round's exchanges get one
    /// interval to finish and are then dropped, so a hung peer never delays
    /// our heartbeat. Returns when `shutdown` turns true or its sender drops.
    /// A failed exchange (`E`, the transport's typed error) is logged and
    /// otherwise ignored: the peer's silence is what liveness counts.
    pub async fn run<F, Fut, E>(self, exchange: F, mut shutdown: watch::Receiver<bool>)
    where
        F: Fn(NodeInfo, GossipDigest) -> Fut,
        Fut: Future<Output = Result<GossipDigest, E>>,
        E: std::fmt::Display,
    {
        let mut rng = StdRng::from_rng(&mut rand::rng());
        let mut ticker = tokio::time::interval(self.inner.interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            if *shutdown.borrow() {
                break;
            }
            tokio::select! {
                biased;
                changed = shutdown.changed() => {
                    if changed.is_err() { break; }
                    continue;
                }
                _ = ticker.tick() => {}
            }
            let calls: Vec<(String, Pin<Box<Fut>>)> = self
                .begin_round(&mut rng)
                .into_iter()
                .map(|(peer, digest)| (peer.id.clone(), Box::pin(exchange(peer, digest))))
                .collect();
            let round = tokio::time::timeout(self.inner.interval, self.exchange_all(calls));
            tokio::select! {
                biased;
                changed = shutdown.changed() => {
                    if changed.is_err() { break; }
                }
                done = round => {
                    if done.is_err() {
                        debug!("membership: gossip round hit its deadline");
                    }
                }
            }
        }
        debug!("membership: gossip loop stopped");
    }

    /// Drives all of one round's exchanges at once, merging each reply as
    /// soon as it is ready.
    async fn exchange_all<Fut, E>(&self, calls: Vec<(String, Pin<Box<Fut>>)>)
    where
        Fut: Future<Output = Result<GossipDigest, E>>,
        E: std::fmt::Display,
    {
        let mut pending: Vec<Option<(String, Pin<Box<Fut>>)>> =
            calls.into_iter().map(Some).collect();
        std::future::poll_fn(|cx| {
            let mut busy = false;
            for slot in pending.iter_mut() {
                let Some((peer, fut)) = slot else { continue };
                match fut.as_mut().poll(cx) {
                    Poll::Ready(Ok(reply)) => {
                        self.apply_reply(&reply);
                        *slot = None;
                    }
                    Poll::Ready(Err(error)) => {
                        debug!(peer = %peer, %error, "membership: gossip exchange failed");
                        *slot = None;
                    }
                    Poll::Pending => busy = true,
                }
            }
            if busy {
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })
        .await
    }
}

fn log_merge(from: &str, merged: MergeOutcome) {
    if merged.unknown > 0 {
        debug!(
            from,
            unknown = merged.unknown,
            "membership: digest names nodes outside our topology"
        );
    }
}
