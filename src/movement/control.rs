//! The node's movement controls: decommission and cleanup as the admin port
//! and the node's loops drive them.
//!
//! Owns [`Control`]: `decommission` (begin the leave at once, so a refusal
//! is the caller's answer, then run the rest in the background: announce,
//! hand over, finish — from then on the node refuses client requests
//! (`Cluster::serving`: UNAVAILABLE, and 503 on `/health`, so clients
//! go elsewhere) and coordinates nothing — deliver what the node's hinted
//! queues still hold (hints for nodes that have left are redirected to the
//! key's replicas, `hints::orphans`, so the drain ends), stop the process;
//! a leave that became a removal hands its queues over the same way, then
//! stops the node with the removal as its error, `super::leave_end`),
//! `resume` (continues the leave the layout shows, never begins one: at
//! start-up and at each view that shows it, `control_resume`), its
//! [`Status`], `cancel` (`decommission --cancel`: a
//! running leave stops with no switch, its push cursors forgotten;
//! `control_cancel`; a new leave bumps the leave count before its forget,
//! so an earlier leave's pass lands no cursor after it, `push::LeaveEpoch`),
//! [`Control::on_removed`] (a node whose removal the layout decided ends
//! the same way, decommissioning or not: `leave_end::follow_removal`,
//! `control_removed`),
//! and `cleanup` (by hand, `control_cleanup`; automatically after every
//! movement: `super::cleanup_follow`).
//! Must not change the layout except through the leave's steps.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::watch;

use super::leave::{self, Began, LeaveError};
use super::leave_end::hand_queues_over;
use super::push::PeerSink;
use super::stream::{Progress, ProgressSnapshot, StreamConfig};
use super::throughput::Throughput;
use crate::engine::Engine;
use crate::hints::Hints;
use crate::transport::Peers;
use crate::view::Cluster;

/// Where a decommission stands (`GET /decommission`).
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Status {
    /// `idle`, `announcing`, `streaming`, `finishing`, `draining`, `left`,
    /// `cancelling` (a cancel past the switch: reads went back to the
    /// node, the abort driver's second step is pending), `cancelled`
    /// (`decommission --cancel`: the node stays), or `failed`
    /// (the node was removed meanwhile: it handed its queues over,
    /// `draining`, and stops: exit 3, or 1 when a task failed first (a
    /// restart then hands the queues over and exits 3)).
    pub phase: String,
    /// The last error (the step is retried), or what the phase waits for.
    pub detail: String,
    pub progress: ProgressSnapshot,
    /// The operator passed gainers of an older build
    /// (`--allow-old-gainers`), for this process (review-recover31 L3).
    #[serde(default)]
    pub allow_old_gainers: bool,
}

/// How a node whose removal was decided ended ([`Control::ended`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// Its queues were handed over (a stop during the final wait, too).
    HandedOver,
    /// Stopped before that: start it again to hand them over.
    Stopped,
}

/// What [`Control`] needs of its node: the stop (a decommission that
/// ended stops the node) and the task set its decommission runs in.
pub struct NodeHooks {
    pub stop: watch::Sender<bool>,
    pub spawner: crate::tasks::Spawner,
}

/// What the controls need of the running node.
pub struct Control {
    pub cluster: Cluster,
    /// This node's engine; on a node, its writes pass the replica's gate
    /// (`Replica::gated`), so a stream page or cleanup cannot commit after
    /// the node closed its storage.
    pub engine: Arc<dyn Engine>,
    pub peers: Arc<Peers>,
    pub is_up: Arc<dyn Fn(&str) -> bool + Send + Sync>,
    pub hints: Arc<Hints>,
    /// Stops the node once it has left.
    pub stop: watch::Sender<bool>,
    /// The node's stream cap, shared by every movement it streams.
    pub throughput: Arc<Throughput>,
    /// Where the decommission runs: the node's task set.
    spawner: crate::tasks::Spawner,
    status: Mutex<Status>,
    progress: Arc<Progress>,
    running: Mutex<bool>,
    /// The node stops because its removal was decided, and how far its
    /// end got.
    ended: Mutex<Option<Ended>>,
    /// Set by an accepted `POST /decommission` with `allow_old_gainers`,
    /// for the leave (a later request without it does not take it back; a
    /// cancel or a new leave's begin does): its push passes gainers of an
    /// older build (`StreamError::GainerTooOld`). Not persisted: a
    /// restarted leaver holds them again.
    allow_old_gainers: AtomicBool,
    /// How many decommissions this process began: a running leave's pass
    /// ends once a later one began (its cancel missed) and writes no
    /// cursor after (`push::LeaveEpoch`, review-final33 L5).
    leaves: watch::Sender<u64>,
}

impl Control {
    pub fn new(
        cluster: Cluster,
        engine: Arc<dyn Engine>,
        peers: Arc<Peers>,
        is_up: Arc<dyn Fn(&str) -> bool + Send + Sync>,
        hints: Arc<Hints>,
        node: NodeHooks,
        throughput: Arc<Throughput>,
    ) -> Arc<Control> {
        Arc::new(Control {
            cluster,
            engine,
            peers,
            is_up,
            hints,
            stop: node.stop,
            throughput,
            spawner: node.spawner,
            status: Mutex::new(Status {
                phase: "idle".into(),
                ..Status::default()
            }),
            progress: Arc::default(),
            running: Mutex::new(false),
            ended: Mutex::new(None),
            allow_old_gainers: AtomicBool::new(false),
            leaves: watch::channel(0).0,
        })
    }

    /// The decommission's status.
    pub fn status(&self) -> Status {
        let mut s = self.status.lock();
        // A cancel's second step is the abort driver's, on some node: the
        // phase follows the layout (review-cancel31 M3), on the board too
        // (review-cancel2-31 L3).
        if s.phase == "cancelling" {
            let (phase, detail) = self.cancel_phase(self.cluster.me());
            if phase != s.phase {
                self.show(&mut s, &phase, detail);
            }
        }
        let mut s = s.clone();
        s.progress = self.progress.snapshot();
        s.allow_old_gainers = self.allow_old_gainers.load(Ordering::SeqCst);
        s
    }

    /// The decommission's phase, also on the node's movement board
    /// (`GET /movement`, `geokv ring`).
    fn set(&self, phase: &str, detail: impl Into<String>) {
        self.show(&mut self.status.lock(), phase, detail);
    }

    /// [`Control::set`] on the status `s` (locked by the caller).
    fn show(&self, s: &mut Status, phase: &str, detail: impl Into<String>) {
        s.phase = phase.into();
        s.detail = detail.into();
        let shown = match s.detail.as_str() {
            "" => s.phase.clone(),
            d => format!("{}: {d}", s.phase),
        };
        super::progress::board(self.cluster.me()).status(&shown);
    }

    /// Begins (or resumes) this node's decommission and runs the rest in
    /// the background; a refusal (another movement, too few nodes) is
    /// returned here. `allow_old_gainers` (the operator's override) stays
    /// on for the leave once a request with it is accepted (a refused
    /// one leaves it off, review-recover2-31 N3; a new leave starts without
    /// it), and reaches a running leave at its next push.
    pub async fn decommission(
        self: &Arc<Self>,
        allow_old_gainers: bool,
    ) -> Result<Status, LeaveError> {
        let me = self.cluster.me();
        let bump = self.clone().new_leave();
        let began = leave::begin_after(&self.cluster, &self.engine, me, bump).await?;
        (self.allow_old_gainers).fetch_or(allow_old_gainers, Ordering::SeqCst);
        Ok(self.run(began))
    }

    /// Runs the rest of the leave `began` in the background, unless it
    /// runs already; the status.
    fn run(self: &Arc<Self>, began: Began) -> Status {
        let me = self.cluster.me().to_string();
        let mut running = self.running.lock();
        if !*running {
            *running = true;
            super::progress::board(&me).start(
                &format!("decommission of {me}"),
                self.cluster.current().version(),
                self.progress.clone(),
            );
            let phase = if began == Began::AlreadyLeft {
                "finishing"
            } else {
                "announcing"
            };
            self.set(phase, "");
            self.spawner.spawn("decommission", self.clone().run_leave());
        }
        drop(running);
        self.status()
    }

    /// The background part of a decommission, retried until done or until
    /// the node stops (a restart resumes it: `node::serve`).
    async fn run_leave(self: Arc<Self>) {
        self.clone()
            .until_stopped(self.clone().leave_until_done())
            .await
    }

    async fn leave_until_done(self: Arc<Self>) {
        let me = self.cluster.me().to_string();
        let mut leaves = self.leaves.subscribe();
        loop {
            // A leave turned into a removal (declared dead meanwhile) is
            // over: retrying cannot help (review-elastic28 L3).
            // Its queues are handed over first, and the node then stops
            // with the removal as its error (audit11 D4).
            if let Err(e) = leave::still_leaving(&self.cluster.current().layout, &me) {
                return self.end_removed(e).await;
            }
            // Cancelled (`decommission --cancel`): no switch, the node
            // serves as Normal (audit11 D1).
            let mine = *leaves.borrow_and_update();
            let epoch = super::push::LeaveEpoch {
                mine,
                count: leaves.clone(),
            };
            // Biased, a new begin first: a pass's `Superseded` ready in the
            // same poll must not win and skip the forget (review-elastic35 M3).
            let once = tokio::select! {
                biased;
                // Begun again, its cancel missed (review-final33 L5): what
                // the pass saved since the new begin's forget is forgotten.
                Ok(()) = leaves.changed() => {
                    self.superseded(&me).await;
                    continue;
                }
                () = leave::until_cancelled(&self.cluster, &me) => {
                    if self.cancelled(&me, true).await {
                        return;
                    }
                    continue;
                }
                r = self.leave_once(&me, epoch) => r,
            };
            match once {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(node = %me, error = %e, "decommission not finished; retrying in 2 s");
                    self.status.lock().detail = e;
                    let pause = Duration::from_secs(2);
                    if leave::cancelled_within(&self.cluster, &me, pause).await
                        && self.cancelled(&me, true).await
                    {
                        return;
                    }
                }
            }
        }
        tracing::info!(node = %me, "decommissioned: stopping");
        self.set("left", "");
        self.stop_after_a_while().await
    }

    /// Stops the node, after time for `geokv decommission` to see the
    /// outcome.
    async fn stop_after_a_while(&self) {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let _ = self.stop.send(true);
    }

    async fn leave_once(&self, me: &str, epoch: super::push::LeaveEpoch) -> Result<(), String> {
        let leaving = self.cluster.current().version();
        self.set(
            "announcing",
            format!("every live member to layout v{leaving}"),
        );
        self.announce(leaving).await?;
        self.set("streaming", "");
        let view = self.cluster.clone();
        let up = self.is_up.clone();
        let sink = PeerSink {
            peers: self.peers.clone(),
            resolve: Arc::new(move |id: &str| {
                let node = view.current().node(id).cloned()?;
                Some((node, up(id)))
            }),
            timeout: Duration::from_secs(10),
        };
        leave::hand_over(
            &self.cluster,
            self.engine.clone(),
            &sink,
            me,
            &StreamConfig {
                epoch: Some(epoch.clone()),
                ..self.stream_config()
            },
            &self.progress,
        )
        .await
        .map_err(|e| e.to_string())?;
        self.set("finishing", "");
        let handle = super::switch::Announcing {
            cluster: self.cluster.clone(),
            peers: self.peers.clone(),
            is_up: self.is_up.clone(),
            timeout: Duration::from_secs(30),
        };
        let handle = leave::Epoched {
            inner: &handle,
            epoch: &epoch,
        };
        leave::finish(&handle, &self.engine, me)
            .await
            .map_err(|e| e.to_string())?;
        self.announce(self.cluster.current().version()).await?;
        // Nothing the node queued (hints for peers, the inter-DC streams)
        // may be lost: it stops only once its queues are delivered.
        let report = |detail: String| self.set("draining", detail);
        hand_queues_over(&*self.hints, &self.cluster, false, &report).await;
        Ok(())
    }

    /// The push's configuration, read at each attempt of the leave.
    fn stream_config(&self) -> StreamConfig {
        let mut cfg = StreamConfig::capped(self.throughput.clone());
        cfg.allow_old_gainers = self.allow_old_gainers.load(Ordering::SeqCst);
        cfg
    }

    pub(super) async fn announce(&self, version: u64) -> Result<(), String> {
        super::announce::until_announced(
            &self.cluster,
            &self.peers,
            &*self.is_up,
            version,
            Duration::from_secs(30),
        )
        .await
        .map_err(|e| e.to_string())
    }
}

#[path = "control_cancel.rs"]
mod cancel;

#[path = "control_cleanup.rs"]
mod by_hand;

#[path = "control_removed.rs"]
mod removed;

#[path = "control_resume.rs"]
mod resume;

#[cfg(test)]
#[path = "tests_control_removed.rs"]
mod tests_removed;

#[cfg(test)]
#[path = "tests_control_cancel.rs"]
mod tests_cancel;
