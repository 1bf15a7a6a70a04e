//! A drain-only start: a node whose stored layout says it is out of the
//! cluster (decommissioned, Left; or removed, Removed) and that was stopped
//! before its hinted queues were empty (killed while draining) starts again
//! only to hand them over (a Removed node then stops with
//! `NodeError::Removed`, `node::run`).
//! It runs hint delivery and gossip (to know which peers are up, and to
//! learn newer layouts), and nothing else: no client port, no internode
//! server (so no replica write, read or hint reaches it, as a Left node
//! refuses them), no movement, repair or cleanup. Hints for peers are
//! delivered; those for a node that has left or that no longer
//! replicates the key are redirected (`hints::orphans`); a queue whose
//! destination is down (a peer, a remote datacenter) is handed by its own
//! delivery task to a live member of this datacenter, which adopts it
//! (`hints::adopt`), so the drain does not wait for an outage; its
//! anti-entropy records go to a live Normal member of any datacenter, one
//! that replicates their ranges first (`hints::adopt::records`). It stops (exit 0) once
//! every queue is empty and every record handed over, or on `shutdown` with
//! an error naming what is left ([`outcome`]: the process exits non-zero). With no admin
//! port, its progress is its log: every [`PROGRESS`] a line with the
//! entries left per queue (and its anti-entropy records, `repair-records`)
//! and the peers it waits for ([`progress`]).
//!
//! Must not serve anything or change the layout.

use super::storage::Storage;
use super::tasks::TaskSet;
use super::{NodeConfig, NodeError};
use crate::hints::deliver::Delivery;
use crate::hints::queue::Dest;
use crate::hints::Hints;
use crate::membership::Gossiper;
use crate::topology::NodeIdx;
use crate::transport::faults::Faults;
use crate::transport::tls::Tls;
use crate::transport::{Peers, TransportError};
use crate::view::sync::LayoutSync;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How often the backlog is looked at.
const POLL: Duration = Duration::from_millis(200);
/// How often the entries left are logged.
const PROGRESS: Duration = Duration::from_secs(10);

/// The progress line of a drain: the entries left per queue (`node:ID` or
/// `dc:NAME`, empty queues left out) and the nodes it waits for because
/// they are down, e.g. `node:dc1-n2=3 dc:dc2=120; waiting for dc1-n2 (down)`.
pub(crate) fn progress(left: &[(String, u64)], down: &[String]) -> String {
    let queues: Vec<String> = (left.iter().filter(|(_, n)| *n > 0))
        .map(|(d, n)| format!("{d}={n}"))
        .collect();
    let mut out = match queues.is_empty() {
        true => "every queue empty".to_string(),
        false => queues.join(" "),
    };
    if !down.is_empty() {
        out += &format!("; waiting for {} (down)", down.join(", "));
    }
    out
}

/// How a drain ended: `Ok` once every queue is empty; stopped first (by
/// `shutdown`) with `left` entries still queued, an error naming them, so
/// the process exits non-zero and an operator (or systemd) sees that the
/// drain did not finish.
pub(crate) fn outcome(left: u64, per_queue: &[(String, u64)]) -> Result<(), NodeError> {
    match left {
        0 => Ok(()),
        _ => Err(NodeError::DrainUnfinished {
            left,
            queues: progress(per_queue, &[]),
        }),
    }
}

/// Delivers the queues of a node that has left until they are empty (or
/// `shutdown`); what is left when it stopped (see [`outcome`]). Gossip,
/// hint delivery and the wait run in `tasks` (the node's task set, its
/// stop forwarder already in it): once every queue is empty the wait turns
/// `stop`, and the set ends them all as a node's stop does.
pub(super) async fn run(
    cfg: &NodeConfig,
    s: &Storage,
    mut tasks: TaskSet,
    stop: &watch::Sender<bool>,
    shutdown: watch::Receiver<bool>,
) -> Result<Result<(), NodeError>, NodeError> {
    let running = start(cfg, s, &mut tasks, shutdown.clone())?;
    let hints = running.hints.clone();
    let (me, done) = (s.me.id.clone(), stop.clone());
    let sd = shutdown.clone();
    tasks.spawn_loop("drain", async move {
        running.until_handed_over(&me, sd).await;
        let _ = done.send(true);
    });
    let ended = tasks.run(stop, shutdown, super::tasks::GRACE).await;
    if !ended.failed.is_empty() {
        return Ok(Err(NodeError::Tasks(ended.failed.join("; "))));
    }
    // Counted again once delivery has stopped: an entry delivered in the
    // meantime is not reported as left.
    Ok(outcome(
        hints.left_to_hand_over().await,
        &hints.left_per_queue(),
    ))
}

/// A drain under way: its hints and gossip (which peers are up).
struct Running {
    hints: Arc<Hints>,
    gossiper: Gossiper,
}

/// Opens the hints and starts gossip and hint delivery in `tasks`, from a
/// node that is no longer in the ring.
fn start(
    cfg: &NodeConfig,
    s: &Storage,
    tasks: &mut TaskSet,
    shutdown: watch::Receiver<bool>,
) -> Result<Running, NodeError> {
    let me = &s.me;
    let faults = Arc::new(Faults::new(cfg.fault_injection));
    let tls = Tls::load(&cfg.tls, &me.id)?;
    tls.spawn_reload(Duration::from_secs(5), shutdown.clone());
    let peers = Arc::new(Peers::new(me.clone(), faults, &tls).lanes_in(tasks.spawner()));
    // The members and this node (listed last), so gossip can run from a
    // node that is no longer in the ring.
    let mut nodes = s.cluster.current().ring.nodes().to_vec();
    let mut myself = me.clone();
    myself.idx = NodeIdx(nodes.len() as u32);
    nodes.push(myself);
    let (gossiper, liveness) = super::wiring::gossip(cfg, s, nodes)?;
    let hints = Arc::new(Hints::open(
        s.engine.clone(),
        s.cluster.clone(),
        me.clone(),
        cfg.hints.clone(),
    )?);
    let queued = hints.total_backlog();
    tracing::warn!(node = %me.id, queued,
        "this node has left the cluster: starting only to hand its queued hints over, then stopping");
    spawn_gossip(tasks, cfg, s, &gossiper, &peers, shutdown.clone());
    let delivery = Delivery {
        hints: hints.clone(),
        peers,
        cluster: s.cluster.clone(),
        liveness,
        me: me.clone(),
    };
    tasks.spawn("hint delivery", delivery.run_all(shutdown));
    Ok(Running { hints, gossiper })
}

/// Gossips with the members (learning newer layouts from their answers)
/// until `shutdown`, in `tasks`.
fn spawn_gossip(
    tasks: &mut TaskSet,
    cfg: &NodeConfig,
    s: &Storage,
    gossiper: &Gossiper,
    peers: &Arc<Peers>,
    shutdown: watch::Receiver<bool>,
) {
    let sync = LayoutSync::new(s.cluster.clone(), peers.clone(), tasks.spawner());
    s.cluster.set_push(sync.push_hook());
    s.cluster
        .set_net(Arc::new(crate::view::cas::PeersNet(peers.clone())));
    let interval = Duration::from_millis(cfg.membership.gossip_interval_ms);
    let p = peers.clone();
    let gossip = gossiper.clone().run(
        move |peer, mut digest| {
            let (peers, sync) = (p.clone(), sync.clone());
            sync.stamp(&mut digest);
            async move {
                let reply = peers.gossip(&peer, digest, interval).await?;
                sync.observe(&reply);
                Ok::<_, TransportError>(reply)
            }
        },
        shutdown,
    );
    tasks.spawn_loop("gossip", gossip);
}

impl Running {
    /// Waits until every hint and record is handed over, or `shutdown`,
    /// logging the progress every [`PROGRESS`].
    async fn until_handed_over(&self, me: &str, mut shutdown: watch::Receiver<bool>) {
        let hints = &self.hints;
        let mut logged = tokio::time::Instant::now();
        loop {
            let left = hints.left_to_hand_over().await;
            if left == 0 {
                tracing::info!(node = %me, "every queued hint and anti-entropy record handed over: stopping");
                return;
            }
            if logged.elapsed() >= PROGRESS {
                logged = tokio::time::Instant::now();
                let (per, down) = (hints.left_per_queue(), self.down());
                tracing::info!(node = %me, left, "draining: {}", progress(&per, &down));
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = shutdown.wait_for(|v| *v) => {
                    tracing::error!(node = %me, left, "stopped with hints still queued ({}); start it again to go on",
                        progress(&hints.left_per_queue(), &[]));
                    return;
                }
            }
        }
    }

    /// The nodes with entries queued for them that gossip says are down.
    fn down(&self) -> Vec<String> {
        let hints = &self.hints;
        (hints.destinations().iter())
            .filter(|d| hints.backlog_entries(d) > 0)
            .filter_map(|d| match d {
                Dest::Node(n) if !self.gossiper.is_up(n) => Some(n.clone()),
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::{outcome, progress};
    use crate::node::NodeError;

    #[test]
    fn a_drain_stopped_with_entries_queued_is_an_error_naming_them() {
        assert!(outcome(0, &[("dc:dc2".to_string(), 0)]).is_ok());
        let left = [("node:dc1-n2".to_string(), 3), ("dc:dc2".to_string(), 120)];
        let err = outcome(123, &left).expect_err("a drain that did not finish");
        assert!(matches!(err, NodeError::DrainUnfinished { left: 123, .. }));
        let said = err.to_string();
        assert!(said.contains("123"), "{said}");
        assert!(said.contains("node:dc1-n2=3 dc:dc2=120"), "{said}");
        // The count includes a leaver's records (`repair-records=N`).
        assert!(said.contains("anti-entropy records"), "{said}");
    }

    #[test]
    fn the_progress_line_names_each_non_empty_queue_and_the_peers_waited_for() {
        let left = [
            ("node:dc1-n2".to_string(), 3),
            ("node:dc1-n3".to_string(), 0),
            ("dc:dc2".to_string(), 120),
        ];
        assert_eq!(progress(&left, &[]), "node:dc1-n2=3 dc:dc2=120");
        assert_eq!(
            progress(&left, &["dc1-n2".to_string()]),
            "node:dc1-n2=3 dc:dc2=120; waiting for dc1-n2 (down)"
        );
        assert_eq!(progress(&left[1..2], &[]), "every queue empty");
    }
}
