//! When and in what order this node repairs: recorded ranges first, then
//! each of its ranges an `interval` after that range's last sweep (persisted
//! in the meta column family, see [`records`]), one session at a time.
//!
//! A *pass* runs the pairwise sessions of a list of ranges ([`super::plan`])
//! sequentially, resting after each session in proportion to its duration
//! (`pause_ratio`), so foreground requests keep most of the disk and cores;
//! peers believed down are skipped in sweeps (the range is retried next
//! time). A recorded range is repaired only when all its replicas are up,
//! and its meta records are deleted only once every session succeeded, and
//! only while the view the pass pinned is still in force: the check and the
//! delete run under the view's install lock (`Cluster::while_current`), so a
//! view installed meanwhile either keeps the records or waits for the
//! delete to commit. One pass runs at
//! a time (`pass_lock`): a triggered sweep waits for a background one.
//!
//! The recorded pass (grouping records, clearing them) is `recorded.rs`.
//!
//! Must not: hash or stream itself (that is `session`), or decide placement.

use super::error::RepairError;
use super::plan::{pairs, sweep_plan, within_dc, RangePlan, Side};
use super::records::SweepClock;
use super::session::{Pinned, SessionIo, SessionLimits};
use crate::clock::now_ms;
use crate::engine::Engine;
use crate::membership::Liveness;
use crate::topology::NodeIdx;
use crate::view::NOT_A_MEMBER;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, MutexGuard};

mod recorded;

/// Anti-entropy settings.
#[derive(Clone, Debug)]
pub struct RepairConfig {
    /// Full sweep period; zero disables the periodic sweep (recorded ranges
    /// are still repaired).
    pub interval: Duration,
    /// How often recorded ranges are looked for.
    pub recorded_poll: Duration,
    /// Merkle tree depth (2^depth leaves per range).
    pub depth: u32,
    /// After a session that took `t`, rest `t × pause_ratio` (0.5: repair
    /// keeps at most two thirds of one core and one disk stream busy).
    pub pause_ratio: f64,
    /// Recorded ranges handled per pass (the rest wait for the next one).
    pub max_recorded_per_pass: usize,
    /// After a start that may have lost a WAL tail, record every range this
    /// node replicates ([`records::record_every_range`]).
    pub after_unclean_start: bool,
    pub session: SessionLimits,
}

impl Default for RepairConfig {
    fn default() -> Self {
        RepairConfig {
            interval: Duration::from_secs(3600),
            recorded_poll: Duration::from_secs(5),
            depth: 10,
            pause_ratio: 0.5,
            max_recorded_per_pass: 100_000,
            after_unclean_start: true,
            session: SessionLimits::default(),
        }
    }
}

/// The outcome of a pass, as `POST /repair` returns it.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    /// Ranges planned (recorded ranges included).
    pub ranges: u64,
    /// Ranges every live replica was compared with.
    pub ranges_compared: u64,
    pub sessions: u64,
    pub leaves_differing: u64,
    /// Keys merged into this node / into peers.
    pub keys_pulled: u64,
    pub keys_pushed: u64,
    /// Sessions skipped because a peer was down.
    pub peers_skipped: u64,
    /// Recorded ranges repaired and their records deleted.
    pub recorded_cleared: u64,
    /// Recorded ranges still waiting.
    pub recorded_pending: u64,
    pub errors: Vec<String>,
    pub elapsed_ms: u64,
}

impl Summary {
    fn add(&mut self, o: Summary) {
        self.ranges += o.ranges;
        self.ranges_compared += o.ranges_compared;
        self.sessions += o.sessions;
        self.leaves_differing += o.leaves_differing;
        self.keys_pulled += o.keys_pulled;
        self.keys_pushed += o.keys_pushed;
        self.peers_skipped += o.peers_skipped;
        self.recorded_cleared += o.recorded_cleared;
        self.recorded_pending += o.recorded_pending;
        self.errors.extend(o.errors);
    }
}

/// This node's anti-entropy: share it in an `Arc` (node task and admin port).
pub struct Repair {
    io: SessionIo,
    /// Where repair's own records live: the ranges to repair and when each
    /// was last swept (`records.rs`), not replica data.
    records: Arc<dyn Engine>,
    liveness: Arc<dyn Liveness>,
    config: RepairConfig,
    /// Held for the duration of a pass: one pass at a time.
    pass_lock: tokio::sync::Mutex<()>,
    /// When each range was last swept (persisted); `None` if the meta
    /// column family could not be read at start (sweeps then run every
    /// interval from this start).
    clock: Option<SweepClock>,
    /// Ranges done / planned in the pass running (or the last one).
    progress: (AtomicU64, AtomicU64),
}

/// Drops the `geokv_repair_running` gauge back to 0 however a pass ends.
struct Running;
impl Running {
    fn start() -> Running {
        metrics::gauge!("geokv_repair_running").set(1.0);
        Running
    }
}
impl Drop for Running {
    fn drop(&mut self) {
        metrics::gauge!("geokv_repair_running").set(0.0);
    }
}

impl Repair {
    /// Repair over `io`, keeping its records and sweep times in `records`.
    pub fn new(
        io: SessionIo,
        records: Arc<dyn Engine>,
        liveness: Arc<dyn Liveness>,
        config: RepairConfig,
    ) -> Self {
        let clock = SweepClock::open(records.clone(), config.interval, now_ms())
            .inspect_err(|e| tracing::warn!(error = %e, "sweep times unreadable"))
            .ok();
        Repair {
            io,
            records,
            liveness,
            config,
            pass_lock: tokio::sync::Mutex::new(()),
            clock,
            progress: Default::default(),
        }
    }

    /// `(ranges swept, ranges planned)` of the pass in progress, or of the
    /// last one (what `geokv repair` shows as a progress bar).
    pub fn progress(&self) -> (u64, u64) {
        let (done, total) = &self.progress;
        (done.load(Relaxed), total.load(Relaxed))
    }

    /// Keyspaces to repair: `only`, or all; an unknown name is an error.
    fn keyspaces(&self, only: Option<&str>) -> Result<Vec<String>, RepairError> {
        let ring = self.io.ring();
        let all = &ring.topology().keyspaces;
        match only {
            Some(k) if all.contains_key(k) => Ok(vec![k.to_string()]),
            Some(k) => Err(crate::ring::RingError::UnknownKeyspace(k.to_string()).into()),
            None => Ok(all.keys().cloned().collect()),
        }
    }

    /// Recorded ranges, then a full sweep of our ranges (of `keyspace`, or
    /// every keyspace). What `POST /repair` runs.
    pub async fn sweep(&self, keyspace: Option<&str>) -> Result<Summary, RepairError> {
        self.sweep_in(keyspace, None).await
    }

    /// [`Repair::sweep`], or with `dc` a sweep of our ranges among that
    /// datacenter's replicas only (`geokv repair --dc`, Cassandra's
    /// `nodetool repair -dc`): this node must be in `dc`; recorded ranges
    /// (whose targets may be elsewhere) wait for the background pass, and
    /// the ranges' sweep times stay (the other datacenters were not compared).
    #[tracing::instrument(name = "repair.sweep", skip(self))]
    pub async fn sweep_in(
        &self,
        keyspace: Option<&str>,
        dc: Option<&str>,
    ) -> Result<Summary, RepairError> {
        let _pass = self.begin_pass().await?;
        if let Some(dc) = dc {
            let mine = self.io.ring().node(self.io.me()).dc.clone();
            if mine != dc {
                return Err(RepairError::OtherDc {
                    dc: dc.to_string(),
                    mine,
                });
            }
        }
        let keyspaces = self.keyspaces(keyspace)?;
        let _running = Running::start();
        let started = Instant::now();
        let mut plans = Vec::with_capacity(keyspaces.len());
        for ks in &keyspaces {
            plans.push((ks, sweep_plan(&self.io.ring(), ks, self.io.me())?));
        }
        self.progress.0.store(0, Relaxed);
        (self.progress.1).store(plans.iter().map(|p| p.1.len() as u64).sum(), Relaxed);
        let mut total = match dc {
            None => self.recorded_pass(keyspace).await?,
            Some(_) => Summary::default(),
        };
        for (ks, plan) in plans {
            total.add(self.sweep_ranges(ks, plan, dc).await);
        }
        total.elapsed_ms = started.elapsed().as_millis() as u64;
        tracing::info!(?total, ?dc, "repair sweep done");
        Ok(total)
    }

    /// One pass at a time, in one view: the pass lock, then the view
    /// pinned; refused when this node is not a member of that view.
    async fn begin_pass(&self) -> Result<(MutexGuard<'_, ()>, Pinned<'_>), RepairError> {
        let lock = self.pass_lock.lock().await;
        let pin = self.io.pin();
        if self.io.me() == NOT_A_MEMBER {
            return Err(RepairError::NotAMember {
                version: pin.version(),
            });
        }
        Ok((lock, pin))
    }

    /// The background pass: recorded ranges, then the ranges of every
    /// keyspace whose periodic sweep is due (their last sweep, persisted,
    /// an interval ago).
    #[tracing::instrument(name = "repair.periodic", skip(self))]
    async fn periodic(&self) -> Result<Summary, RepairError> {
        let _pass = self.begin_pass().await?;
        let due = self.due_ranges();
        self.progress.0.store(0, Relaxed);
        self.progress.1.store(due.len() as u64, Relaxed);
        let _running = Running::start();
        let started = Instant::now();
        let mut total = self.recorded_pass(None).await?;
        for (ks, p) in due {
            total.add(self.sweep_ranges(&ks, vec![p], None).await);
        }
        total.elapsed_ms = started.elapsed().as_millis() as u64;
        tracing::info!(?total, "periodic repair sweep done");
        Ok(total)
    }

    /// Sweeps `plan`'s ranges (with `dc`: among that datacenter's replicas
    /// only), persisting when each was swept (also when a peer was down: it
    /// is retried at the next sweep, as before; not after a `dc` sweep).
    async fn sweep_ranges(&self, ks: &str, plan: Vec<RangePlan>, dc: Option<&str>) -> Summary {
        let mut total = Summary::default();
        for p in plan {
            let (s, _) = self.repair_range(ks, &p, &[], false, dc).await;
            total.add(s);
            self.progress.0.fetch_add(1, Relaxed);
            if let (Some(c), None) = (&self.clock, dc) {
                if let Err(e) = c.swept(ks, p.range, now_ms()) {
                    tracing::warn!(keyspace = ks, range = %p.range, error = %e, "could not persist the sweep time");
                }
            }
        }
        total
    }

    /// The ranges (of every keyspace) due for their periodic sweep now.
    fn due_ranges(&self) -> Vec<(String, RangePlan)> {
        let Some(clock) = &self.clock else {
            return Vec::new();
        };
        let now = now_ms();
        let mut due = Vec::new();
        for ks in self.keyspaces(None).unwrap_or_default() {
            for p in sweep_plan(&self.io.ring(), &ks, self.io.me()).unwrap_or_default() {
                if clock.is_due(&ks, p.range, now).unwrap_or(false) {
                    due.push((ks.clone(), p));
                }
            }
        }
        due
    }

    /// Runs every session of one range; `true` when all of them succeeded
    /// (no peer skipped, no error). With `all_or_nothing`, nothing runs
    /// unless every replica is up (a recorded range cannot be cleared
    /// otherwise, and would be compared again on every poll). With `dc`,
    /// only the sessions between that datacenter's replicas run.
    async fn repair_range(
        &self,
        ks: &str,
        plan: &RangePlan,
        targets: &[NodeIdx],
        all_or_nothing: bool,
        dc: Option<&str>,
    ) -> (Summary, bool) {
        let mut s = Summary {
            ranges: 1,
            ..Summary::default()
        };
        let is_down = |side: Side| match side {
            Side::Peer(n) => !self.io.peer(n).is_some_and(|p| self.liveness.is_up(&p.id)),
            Side::Local => false,
        };
        let ring = self.io.ring();
        let mut pairs = pairs(&ring, self.io.me(), &plan.replicas, targets);
        if let Some(dc) = dc {
            pairs = within_dc(&ring, self.io.me(), pairs, dc);
        }
        if all_or_nothing && pairs.iter().any(|(a, b)| is_down(*a) || is_down(*b)) {
            s.peers_skipped = pairs.len() as u64;
            return (s, false);
        }
        let mut complete = true;
        for (a, b) in pairs {
            if is_down(a) || is_down(b) {
                s.peers_skipped += 1;
                complete = false;
                continue;
            }
            let started = Instant::now();
            match self
                .io
                .sync_pair(ks, plan.range, a, b, self.config.depth)
                .await
            {
                Ok(st) => {
                    s.sessions += 1;
                    s.leaves_differing += st.leaves_differing;
                    for (side, n) in [(a, st.to_a), (b, st.to_b)] {
                        match side {
                            Side::Local => s.keys_pulled += n,
                            Side::Peer(_) => s.keys_pushed += n,
                        }
                    }
                }
                Err(e) => {
                    complete = false;
                    metrics::counter!("geokv_repair_failures_total").increment(1);
                    tracing::warn!(keyspace = ks, range = %plan.range, error = %e, "repair session failed");
                    s.errors.push(format!("{ks} {}: {e}", plan.range));
                }
            }
            let rest = started.elapsed().mul_f64(self.config.pause_ratio.max(0.0));
            if !rest.is_zero() {
                tokio::time::sleep(rest).await;
            }
        }
        if complete {
            s.ranges_compared = 1;
        }
        (s, complete)
    }

    /// The background schedule, until `shutdown` turns true: recorded ranges
    /// every `recorded_poll`, and each range swept an `interval` after its
    /// last sweep (none if zero). Sweep times are persisted, so a restart
    /// neither delays a sweep nor repeats one; a range never swept counts
    /// from the node's first start, so a new cluster does not stampede.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                biased;
                _ = shutdown.changed() => {}
                _ = tokio::time::sleep(self.config.recorded_poll) => {}
            }
            if *shutdown.borrow() {
                return;
            }
            tokio::select! {
                biased;
                _ = shutdown.changed() => return,
                res = self.periodic() => match res {
                    Err(e @ RepairError::NotAMember { .. }) => tracing::debug!(error = %e, "no repair pass"),
                    Err(e) => tracing::warn!(error = %e, "repair pass failed"),
                    Ok(_) => {}
                },
            }
        }
    }
}

#[cfg(test)]
mod tests;
