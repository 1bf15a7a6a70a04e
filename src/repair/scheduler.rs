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
//! Must not: hash or stream itself (that is `session`), or decide placement.

use super::error::RepairError;
use super::plan::{coalesce, pairs, sweep_plan, RangePlan, RangeTable, Recorded, Side};
use super::records::{self, SweepClock};
use super::session::{Pinned, SessionIo, SessionLimits};
use crate::clock::now_ms;
use crate::membership::Liveness;
use crate::topology::NodeIdx;
use crate::view::NOT_A_MEMBER;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, MutexGuard};

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
    pub fn new(io: SessionIo, liveness: Arc<dyn Liveness>, config: RepairConfig) -> Self {
        let engine = io.replica.engine().clone();
        let clock = SweepClock::open(engine, config.interval, now_ms())
            .inspect_err(|e| tracing::warn!(error = %e, "sweep times unreadable"))
            .ok();
        Repair {
            io,
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
    #[tracing::instrument(name = "repair.sweep", skip(self))]
    pub async fn sweep(&self, keyspace: Option<&str>) -> Result<Summary, RepairError> {
        let _pass = self.begin_pass().await?;
        let keyspaces = self.keyspaces(keyspace)?;
        let _running = Running::start();
        let started = Instant::now();
        let mut plans = Vec::with_capacity(keyspaces.len());
        for ks in &keyspaces {
            plans.push((ks, sweep_plan(&self.io.ring(), ks, self.io.me())?));
        }
        self.progress.0.store(0, Relaxed);
        (self.progress.1).store(plans.iter().map(|p| p.1.len() as u64).sum(), Relaxed);
        let mut total = self.recorded_pass(keyspace).await?;
        for (ks, plan) in plans {
            total.add(self.sweep_ranges(ks, plan).await);
        }
        total.elapsed_ms = started.elapsed().as_millis() as u64;
        tracing::info!(?total, "repair sweep done");
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
            total.add(self.sweep_ranges(&ks, vec![p]).await);
        }
        total.elapsed_ms = started.elapsed().as_millis() as u64;
        tracing::info!(?total, "periodic repair sweep done");
        Ok(total)
    }

    /// Sweeps `plan`'s ranges, persisting when each was swept (also when a
    /// peer was down: it is retried at the next sweep, as before).
    async fn sweep_ranges(&self, ks: &str, plan: Vec<RangePlan>) -> Summary {
        let mut total = Summary::default();
        for p in plan {
            let (s, _) = self.repair_range(ks, &p, &[], false).await;
            total.add(s);
            self.progress.0.fetch_add(1, Relaxed);
            if let Some(c) = &self.clock {
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

    /// Repairs the recorded ranges only.
    pub async fn recorded(&self) -> Result<Summary, RepairError> {
        let _pass = self.begin_pass().await?;
        let _running = Running::start();
        let started = Instant::now();
        let mut s = self.recorded_pass(None).await?;
        s.elapsed_ms = started.elapsed().as_millis() as u64;
        Ok(s)
    }

    /// Reads the records (of `keyspace`, or all), groups them by vnode
    /// range, repairs each range with every replica and deletes the records
    /// of the ranges that completed.
    #[tracing::instrument(name = "repair.recorded", skip(self))]
    async fn recorded_pass(&self, keyspace: Option<&str>) -> Result<Summary, RepairError> {
        let records = self.load_records().await?;
        let total = records.len() as u64;
        metrics::gauge!("geokv_repair_pending").set(total as f64);
        let mut summary = Summary::default();
        // keyspace → vnode range index → (plan, records).
        let mut groups: BTreeMap<String, BTreeMap<usize, (RangePlan, Vec<Recorded>)>> =
            BTreeMap::new();
        let mut tables: BTreeMap<String, Option<RangeTable>> = BTreeMap::new();
        let mut orphans = Vec::new();
        for r in records.into_iter().take(self.config.max_recorded_per_pass) {
            if keyspace.is_some_and(|k| k != r.keyspace) {
                continue;
            }
            let table = tables
                .entry(r.keyspace.clone())
                .or_insert_with(|| RangeTable::new(&self.io.ring(), &r.keyspace).ok());
            match table.as_ref().and_then(|t| t.find(r.token)) {
                Some((i, plan)) => groups
                    .entry(r.keyspace.clone())
                    .or_default()
                    .entry(i)
                    .or_insert_with(|| (plan.clone(), Vec::new()))
                    .1
                    .push(r),
                None => orphans.push(r),
            }
        }
        let mut cleared = 0u64;
        if !orphans.is_empty() && !self.io.view_changed() {
            // The keyspace left the topology: there is nothing to repair.
            tracing::warn!(
                count = orphans.len(),
                "dropping repair records of unknown keyspaces"
            );
            cleared += self.delete_records(&orphans).await? as u64;
        }
        let mut work: Vec<(String, RangePlan, Vec<Recorded>)> = Vec::new();
        for (ks, table) in &tables {
            let Some(table) = table else { continue };
            let sweep = sweep_plan(&self.io.ring(), ks, self.io.me())?;
            let mine = groups
                .remove(ks)
                .unwrap_or_default()
                .into_values()
                .collect();
            work.extend(
                coalesce(table, &sweep, mine)
                    .into_iter()
                    .map(|(plan, recs)| (ks.clone(), plan, recs)),
            );
        }
        for (ks, plan, recs) in work {
            let mut targets: Vec<NodeIdx> = recs
                .iter()
                .flat_map(|r| r.targets(&self.io.ring(), &plan.replicas))
                .collect();
            targets.sort_unstable();
            targets.dedup();
            let (s, complete) = self.repair_range(&ks, &plan, &targets, true).await;
            summary.add(s);
            // Repaired in a view that is no longer the cluster's: the
            // replicas may have moved, so the records stay for the next pass.
            if complete && !self.io.view_changed() {
                summary.recorded_cleared += recs.len() as u64;
                cleared += self.delete_records(&recs).await? as u64;
            }
        }
        summary.recorded_pending = total.saturating_sub(cleared);
        metrics::gauge!("geokv_repair_pending").set(summary.recorded_pending as f64);
        Ok(summary)
    }

    async fn load_records(&self) -> Result<Vec<Recorded>, RepairError> {
        let engine = self.io.replica.engine().clone();
        tokio::task::spawn_blocking(move || records::load_records(&*engine))
            .await
            .map_err(|e| RepairError::Task(e.to_string()))?
    }

    /// Deletes `recs` if the pinned view is still in force, and while it
    /// is (a view installed meanwhile waits for the deletion to commit):
    /// the check and the delete are one step, so a view installed after
    /// `SessionIo::view_changed` answered cannot slip in before the
    /// delete. 0 (and the records kept) when another view is in force.
    async fn delete_records(&self, recs: &[Recorded]) -> Result<usize, RepairError> {
        let engine = self.io.replica.engine().clone();
        let recs = recs.to_vec();
        let Some(pinned) = self.io.pinned.read().clone() else {
            return Ok(0);
        };
        let cluster = self.io.cluster.clone();
        tokio::task::spawn_blocking(move || {
            let batch = records::deletes(&recs);
            let ok = || Ok::<(), RepairError>(());
            match cluster.write_exclusive(&pinned, &*engine, &batch, ok) {
                Some(Ok(())) => Ok(recs.len()),
                Some(Err(e)) => Err(e),
                None => Ok(0),
            }
        })
        .await
        .map_err(|e| RepairError::Task(e.to_string()))?
    }

    /// Runs every session of one range; `true` when all of them succeeded
    /// (no peer skipped, no error). With `all_or_nothing`, nothing runs
    /// unless every replica is up (a recorded range cannot be cleared
    /// otherwise, and would be compared again on every poll).
    async fn repair_range(
        &self,
        ks: &str,
        plan: &RangePlan,
        targets: &[NodeIdx],
        all_or_nothing: bool,
    ) -> (Summary, bool) {
        let mut s = Summary {
            ranges: 1,
            ..Summary::default()
        };
        let is_down = |side: Side| match side {
            Side::Peer(n) => !self.io.peer(n).is_some_and(|p| self.liveness.is_up(&p.id)),
            Side::Local => false,
        };
        let pairs = pairs(&self.io.ring(), self.io.me(), &plan.replicas, targets);
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
