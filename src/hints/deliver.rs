//! The dispatcher: one task per destination queue drains it over one open
//! `Stream`, several batches in flight. What to read, send, delete, and how
//! long to back off is decided by the pure [`Scheduler`] (see `schedule`);
//! this file only performs its actions (engine reads and deletes through the
//! store on blocking threads, sends over the [`Link`]) and waits for the
//! next event: an acknowledgement, a wake-up, a timeout, shutdown.
//!
//! - the **urgent lane** (entries a client waits on) is sent at once, with
//!   its own window, so a waiting write never queues behind a backlog; each
//!   acknowledgement resolves the coordinators' waits;
//! - the **backlog lane** is woken after a short linger (so concurrent
//!   writes share a batch), in batches sized by AIMD.
//!
//! Entries leave a queue only once acknowledged as durable at the
//! destination.
//!
//! The I/O of each action (load, send, remove) is `deliver/actions.rs`.
//!
//! Must not: decide what is enqueued, or make the scheduler's decisions.

use super::failure::HandOverError;
use super::link::{Link, Net, Wire};
use super::queue::{Dest, Lane};
use super::schedule::{Action, Event, Scheduler, Stall, BATCH_TIMEOUT};
use super::waiters::StreamFailure;
use super::{now_ms, Hints};
use crate::membership::Liveness;
use crate::topology::NodeInfo;
use crate::transport::{Peers, TransportError};
use crate::view::Cluster;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

mod actions;
#[cfg(test)]
mod tests;

/// Wait after a backlog wake-up so concurrent writes share one batch.
pub const LINGER: Duration = Duration::from_millis(2);
/// With nothing in flight, look again at least this often.
pub const IDLE_POLL: Duration = Duration::from_millis(250);

/// What a delivery task needs.
#[derive(Clone)]
pub struct Delivery {
    pub hints: Arc<Hints>,
    pub peers: Arc<Peers>,
    pub cluster: Cluster,
    pub liveness: Arc<dyn Liveness>,
    pub me: NodeInfo,
}

impl Delivery {
    /// Runs the hand-over of this node's anti-entropy records once it
    /// has left (`adopt::records`), one task per destination queue, and one more for each
    /// destination a later view adds (a node joining this datacenter, a new
    /// datacenter), until `shutdown` and they have stopped. A destination a
    /// view drops keeps its task: its queue is still on disk. `Err` when
    /// one of them panicked (the node's task set then stops the node);
    /// dropped, it aborts them all.
    pub async fn run_all(self, mut shutdown: watch::Receiver<bool>) -> Result<(), HandOverError> {
        let mut views = self.cluster.subscribe();
        let net = Arc::new(Net {
            peers: self.peers,
            cluster: self.cluster,
            liveness: self.liveness,
        });
        let (hints, me) = (self.hints, self.me);
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(super::adopt::records::run(
            hints.clone(),
            net.clone(),
            me.clone(),
            shutdown.clone(),
        ));
        let mut running = std::collections::BTreeSet::new();
        let mut live = true;
        loop {
            if live {
                views.borrow_and_update();
                for dest in hints.destinations() {
                    if running.insert(dest.clone()) {
                        let pump = Pump::new(hints.clone(), net.clone(), me.clone(), dest);
                        tasks.spawn(pump.run(shutdown.clone()));
                    }
                }
            }
            tokio::select! {
                changed = views.changed(), if live => live = changed.is_ok(),
                _ = shutdown.wait_for(|v| *v), if live => live = false,
                done = tasks.join_next(), if !live || !tasks.is_empty() => match done {
                    None if !live => return Ok(()),
                    None => {}
                    Some(Err(e)) if e.is_panic() => return Err(HandOverError::Panicked(e)),
                    Some(_) => {}
                },
            }
        }
    }
}

/// Waits [`IDLE_POLL`]; or, with only parked entries queued (`idle`:
/// their earliest retry, and the layout version that releases one), until
/// that retry or until this node's view is that new (looked at every
/// [`IDLE_POLL`], which reads no queue).
async fn idle_for<L: Link>(link: &L, idle: Option<(Instant, Option<u64>)>) {
    let Some((until, view)) = idle else {
        return tokio::time::sleep(IDLE_POLL).await;
    };
    loop {
        tokio::time::sleep_until((Instant::now() + IDLE_POLL).min(until)).await;
        if Instant::now() >= until || view.is_some_and(|v| link.view_version() >= v) {
            return;
        }
    }
}

impl From<TransportError> for Stall {
    fn from(e: TransportError) -> Self {
        Stall::Failed(e.to_string())
    }
}

/// What woke a pump that has batches in flight.
enum Woken {
    Ack(Result<crate::proto::v1::internode::StreamAck, TransportError>),
    Wake,
    Timeout,
}

/// The delivery task of one queue.
pub(crate) struct Pump<L: Link> {
    hints: Arc<Hints>,
    link: Arc<L>,
    me: NodeInfo,
    dest: Dest,
    label: String,
    sched: Scheduler,
    stream: Option<L::Stream>,
    /// Entries already copied to the pending replicas of their range (see
    /// `moving`), so a resend does not copy them again.
    forked: std::collections::HashSet<u64>,
    /// The open stream goes to a node adopting this queue's entries (this
    /// node has left and no node of the destination is live; see `adopt`).
    adopting: bool,
    /// Adopters tried so far: each reopen (after a stall) asks the next.
    adopters_tried: usize,
    /// Per batch in flight, the entries left out of it because copying
    /// them to a pending replica failed (see `actions::patch`).
    unforked: std::collections::HashMap<u64, Vec<u64>>,
    /// Failed copies to pending replicas, at warn at most every 30 s.
    fork_warned: super::throttle::Throttle,
    /// A fetch of a receiver's newer layout (`Action::CatchUp`) under way.
    catching_up: Option<tokio::task::JoinHandle<()>>,
    /// Only parked entries are queued: no fill before this instant or this
    /// node's view reaching this layout version (`Action::Idle`).
    idle: Option<(Instant, Option<u64>)>,
}

impl<L: Link> Pump<L> {
    pub(crate) fn new(hints: Arc<Hints>, link: Arc<L>, me: NodeInfo, dest: Dest) -> Self {
        let c = hints.config();
        let sched = Scheduler::new(
            dest.clone(),
            c.max_batch_entries,
            c.hint_window,
            me.idx.0 as usize,
        );
        Pump {
            hints,
            link,
            me,
            label: dest.label(),
            dest,
            sched,
            stream: None,
            forked: Default::default(),
            adopting: false,
            adopters_tried: 0,
            unforked: Default::default(),
            fork_warned: super::throttle::Throttle::new(Duration::from_secs(30)),
            catching_up: None,
            idle: None,
        }
    }

    pub(crate) async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        while !*shutdown.borrow() {
            if super::orphans::gone(&self.hints.cluster.current(), self.dest.name())
                && matches!(self.dest, Dest::Node(_))
            {
                let (hints, me, dest) = (self.hints, self.me.id, self.dest);
                return super::orphans::drain(hints, me, dest, shutdown).await;
            }
            // Stay on the open stream while its node is up.
            if let Some(s) = self.stream.as_ref().filter(|s| !self.link.is_up(s.to())) {
                tracing::debug!(dest = %self.label, to = s.to(), "stream's node is down; reopening");
                self.stream = None;
                // No acknowledgement comes on it any more: nothing to patch.
                self.unforked.clear();
                self.sched.on(Event::Lost);
            }
            let rewind = match &self.dest {
                Dest::Dc(dc) => self.hints.take_rewind(dc),
                Dest::Node(_) => None,
            };
            self.sched.on(Event::View(self.link.view_version()));
            self.idle = None;
            let fill = self.sched.on(Event::Fill {
                now: Instant::now(),
                rewind,
            });
            if let Some(d) = self.perform(fill).await {
                self.idle(&mut shutdown, d).await;
                continue;
            }
            metrics::gauge!("geokv_stream_batches_in_flight", "dest" => self.label.clone())
                .set(self.sched.in_flight() as f64);
            let woken = self.wait(&mut shutdown).await;
            let actions = match woken {
                Woken::Wake => continue,
                Woken::Ack(Ok(mut ack)) => {
                    self.patch(&mut ack);
                    self.sched.on(Event::View(self.link.view_version()));
                    self.sched.on(Event::Acked {
                        ack,
                        now: Instant::now(),
                    })
                }
                Woken::Ack(Err(e)) => self.stall(Stall::from(e)),
                Woken::Timeout => self.stall(Stall::Failed(format!(
                    "no acknowledgement within {} s",
                    BATCH_TIMEOUT.as_secs()
                ))),
            };
            if let Some(d) = self.perform(actions).await {
                self.idle(&mut shutdown, d).await;
            }
        }
    }

    /// Waits for what comes next: with batches in flight, an
    /// acknowledgement, a wake-up of a lane with room, or the oldest batch's
    /// timeout; otherwise a wake-up (a backlog one after a linger) or the
    /// idle poll (with only parked entries queued: their release).
    async fn wait(&mut self, shutdown: &mut watch::Receiver<bool>) -> Woken {
        let (hints, dest) = (self.hints.clone(), self.dest.clone());
        let (link, idle) = (self.link.clone(), self.idle.take());
        let urgent_room = self.sched.has_room(Lane::Urgent);
        let backlog_room = self.sched.has_room(Lane::Backlog);
        let give_up = self.sched.give_up_at();
        let Some((stream, give_up)) = self.stream.as_mut().zip(give_up) else {
            tokio::select! {
                biased;
                _ = shutdown.changed() => {}
                _ = hints.notified(&dest, Lane::Urgent) => {}
                _ = hints.notified(&dest, Lane::Backlog) => tokio::time::sleep(LINGER).await,
                _ = idle_for(&*link, idle) => {}
            }
            return Woken::Wake;
        };
        tokio::select! {
            biased;
            _ = shutdown.changed() => Woken::Wake,
            ack = stream.next_ack() => Woken::Ack(ack),
            _ = hints.notified(&dest, Lane::Urgent), if urgent_room => Woken::Wake,
            _ = hints.notified(&dest, Lane::Backlog), if backlog_room => Woken::Wake,
            _ = tokio::time::sleep_until(give_up) => Woken::Timeout,
        }
    }

    fn stall(&mut self, stall: Stall) -> Vec<Action> {
        if let Stall::Failed(e) = &stall {
            tracing::debug!(dest = %self.label, error = %e, "stream stalled");
        }
        self.sched.on(Event::Stalled(stall))
    }

    /// Performs `actions` in order, feeding their results back to the
    /// scheduler; the back-off to wait, if it asked for one. A stall (an
    /// engine or a stream failure) drops the rest of the queue.
    async fn perform(&mut self, actions: Vec<Action>) -> Option<Duration> {
        let mut queue = VecDeque::from(actions);
        let mut backoff = None;
        while let Some(action) = queue.pop_front() {
            let next = match action {
                Action::Backoff(d) => {
                    backoff = Some(d);
                    Vec::new()
                }
                io @ (Action::Load(_)
                | Action::Expire(_)
                | Action::Send { .. }
                | Action::Remove { .. }) => match self.perform_io(io).await {
                    Ok(next) => next,
                    Err(stall) => {
                        queue.clear();
                        self.stall(stall)
                    }
                },
                other => self.perform_local(other),
            };
            queue.extend(next);
        }
        backoff
    }

    /// An action without I/O of its own (waiters, metrics, the stream's
    /// state, a layout fetch in the background); never a next action.
    fn perform_local(&mut self, action: Action) -> Vec<Action> {
        match action {
            Action::Resolve { seq, outcome } => {
                let outcome = self.handed_over(outcome);
                self.hints.waiters().resolve(seq, outcome);
            }
            Action::Reset => {
                self.stream = None;
                self.unforked.clear();
                metrics::counter!("geokv_hint_send_failures_total", "dest" => self.label.clone())
                    .increment(1);
            }
            Action::FailWaits => {
                // Waiting clients learn now rather than at their deadline.
                let dc = self.dest.name();
                let why = StreamFailure::NoLiveNode { dc: dc.to_string() };
                self.hints.waiters().fail_dc(dc, &why);
            }
            Action::Idle { until, view } => self.idle = Some((until, view)),
            Action::CatchUp { from, version } => self.catch_up(from, version),
            Action::Oldest(oldest) => {
                let age = oldest.map_or(0.0, |o| now_ms().saturating_sub(o) as f64 / 1000.0);
                metrics::gauge!("geokv_hint_oldest_age_seconds", "dest" => self.label.clone())
                    .set(age);
            }
            Action::Backoff(_)
            | Action::Load(_)
            | Action::Expire(_)
            | Action::Send { .. }
            | Action::Remove { .. } => unreachable!("performed by `perform`/`perform_io`"),
        }
        Vec::new()
    }

    /// Fetches `from`'s layout (`version`, newer than ours) in the
    /// background, unless a fetch is already under way; the parked entries
    /// wait for it (`schedule::park`), the rest of the queue does not.
    fn catch_up(&mut self, from: String, version: u64) {
        if self.catching_up.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        tracing::debug!(dest = %self.label, %from, version, "hints placed elsewhere on a newer layout; fetching it");
        let link = self.link.clone();
        self.catching_up = Some(tokio::spawn(async move { link.catch_up(&from).await }));
    }

    /// Backs off after a stall; a new urgent entry (a client waiting) cuts
    /// the back-off short, so it never waits for the retry timer.
    async fn idle(&self, shutdown: &mut watch::Receiver<bool>, d: Duration) {
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = self.hints.notified(&self.dest, Lane::Urgent) => {}
            _ = shutdown.changed() => {}
        }
    }
}
