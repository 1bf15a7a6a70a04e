//! The node's task set: every long-running task a node starts (its
//! servers, gossip, repair, movements, hint delivery, metrics, ...) is
//! spawned here, named, and ended by one shutdown in a fixed order (the
//! order of Cassandra's drain: client transport, then the loops, then
//! messaging, then the flush):
//!
//! 1. until the node is told to stop, a task that fails or panics is logged
//!    and stops the node (no half-alive node); one that ends `Ok` is done;
//! 2. on stop every task but the last ones sees the shutdown signal: the
//!    client server stops accepting and lets requests in flight finish,
//!    the loops end. They get [`Grace::drain`] in all. The last ones (the
//!    internode server, spawned with [`TaskSet::spawn_last`]) keep serving
//!    meanwhile: other nodes' replica calls and this node's own requests
//!    in flight still reach this replica;
//! 3. then the last ones get their own signal ([`TaskSet::late_signal`]):
//!    the internode server stops accepting and finishes the calls in
//!    flight, for at most [`Grace::linger`] (a peer's hint stream would
//!    hold it open; its sender resumes from its cursor);
//! 4. whatever is left is aborted and named in the [`Outcome`].
//!
//! Subsystems hand their own background tasks (pushes to peers, a
//! decommission) over through [`TaskSet::spawner`] (`crate::tasks`): they
//! end with the others in step 2 (or, handed over as last ones, as a
//! peer's batching lane that carries the requests of the drain, in step
//! 3), and once the set is gone a task handed over is dropped unstarted. Their failure or panic is logged and named in
//! [`Outcome::reported`] but does not stop the node (a push lost is
//! carried by gossip or anti-entropy).
//!
//! Aborting a server does not end its connections (tonic runs each as its
//! own task): the node then closes its replica, which refuses every later
//! write ("shutting down, nothing applied"), and only then syncs the
//! engine and writes the clean-shutdown marker (`node::run`).
//! Must not know what its tasks do.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::{AbortHandle, Id, JoinError, JoinSet};

pub(super) use crate::tasks::TaskResult;
use crate::tasks::{Spawned, Spawner, TaskError};

/// How long the shutdown waits (steps 2 and 3 of the module doc).
#[derive(Debug, Clone, Copy)]
pub(super) struct Grace {
    /// For every task but the last ones to end after the signal.
    pub drain: Duration,
    /// For the last ones, once the others have ended.
    pub linger: Duration,
}

/// Below `geokv dev stop`'s 10 s before a SIGKILL, above any client request
/// that was about to finish.
pub(super) const GRACE: Grace = Grace {
    drain: Duration::from_secs(5),
    linger: Duration::from_secs(1),
};

/// How the node's tasks ended.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Outcome {
    /// Tasks that failed or panicked (name: what), in the order seen.
    pub failed: Vec<String>,
    /// Tasks still running when their bound ran out, aborted.
    pub aborted: Vec<&'static str>,
    /// Subsystems' tasks (handed over through the spawner) that failed or
    /// panicked (name: what): logged, the node ran on.
    pub reported: Vec<String>,
}

/// One running task.
struct Entry {
    name: &'static str,
    /// Spawned with [`TaskSet::spawn_last`].
    last: bool,
    /// Handed over through [`TaskSet::spawner`]: its failure does not
    /// stop the node.
    handed: bool,
    abort: AbortHandle,
}

/// The node's named tasks.
pub(super) struct TaskSet {
    set: JoinSet<TaskResult>,
    running: HashMap<Id, Entry>,
    /// Turned on once the tasks but the last ones have ended (step 3).
    late: watch::Sender<bool>,
    /// The subsystems' tasks handed over, and where they arrive.
    spawner: Spawner,
    handed: mpsc::UnboundedReceiver<Spawned>,
}

impl Default for TaskSet {
    fn default() -> Self {
        let late = watch::channel(false).0;
        let (spawner, handed) = Spawner::channel();
        TaskSet {
            set: JoinSet::new(),
            running: HashMap::new(),
            spawner: spawner.with_late(late.subscribe()),
            late,
            handed,
        }
    }
}

impl TaskSet {
    /// The shutdown signal of the tasks spawned with
    /// [`TaskSet::spawn_last`]: on once every other task has ended (or been
    /// aborted) after the node's shutdown signal.
    pub fn late_signal(&self) -> watch::Receiver<bool> {
        self.late.subscribe()
    }

    /// Where subsystems hand their background tasks over: each must end
    /// soon after the shutdown signal, like [`TaskSet::spawn`]'s, or, spawned
    /// with [`Spawner::spawn_last`], soon after [`TaskSet::late_signal`].
    pub fn spawner(&self) -> Spawner {
        self.spawner.clone()
    }

    /// Spawns a task that must end soon after the shutdown signal; its
    /// error is typed where it is raised.
    pub fn spawn<E: Into<Box<dyn std::error::Error + Send + Sync>>>(
        &mut self,
        name: &'static str,
        task: impl Future<Output = Result<(), E>> + Send + 'static,
    ) {
        self.add(name, false, async move {
            task.await.map_err(TaskError::stopped)
        });
    }

    /// [`TaskSet::spawn`] for a loop that cannot fail.
    pub fn spawn_loop(
        &mut self,
        name: &'static str,
        task: impl Future<Output = ()> + Send + 'static,
    ) {
        self.add(name, false, async move {
            task.await;
            Ok(())
        });
    }

    /// Spawns a task that must end soon after [`TaskSet::late_signal`],
    /// waited for only after every other one ended.
    pub fn spawn_last(
        &mut self,
        name: &'static str,
        task: impl Future<Output = TaskResult> + Send + 'static,
    ) {
        self.add(name, true, task);
    }

    fn add(
        &mut self,
        name: &'static str,
        last: bool,
        task: impl Future<Output = TaskResult> + Send + 'static,
    ) {
        let abort = self.set.spawn(task);
        let handed = false;
        let entry = Entry {
            name,
            last,
            handed,
            abort,
        };
        self.running.insert(entry.abort.id(), entry);
    }

    /// Takes the tasks handed over through the spawner so far.
    fn take_handed(&mut self) {
        while let Ok(handed) = self.handed.try_recv() {
            self.adopt(handed);
        }
    }

    fn adopt(&mut self, Spawned { name, task, last }: Spawned) {
        let abort = self.set.spawn(task);
        let handed = true;
        let entry = Entry {
            name,
            last,
            handed,
            abort,
        };
        self.running.insert(entry.abort.id(), entry);
    }

    /// Runs the tasks until `shutdown` turns true (a failing task turns it
    /// through `stop`), then ends them in the module doc's order.
    pub async fn run(
        mut self,
        stop: &watch::Sender<bool>,
        mut shutdown: watch::Receiver<bool>,
        grace: Grace,
    ) -> Outcome {
        let mut out = Outcome::default();
        while !*shutdown.borrow() {
            tokio::select! {
                biased;
                _ = shutdown.wait_for(|v| *v) => break,
                Some(handed) = self.handed.recv() => self.adopt(handed),
                done = self.set.join_next_with_id() => match done {
                    None => break,
                    Some(done) => {
                        if !self.record(done, &mut out) {
                            tracing::error!("a task failed: the node stops");
                            let _ = stop.send(true);
                        }
                    }
                },
            }
        }
        self.wait(false, grace.drain, &mut out).await;
        self.late.send_replace(true);
        self.wait(true, grace.linger, &mut out).await;
        out
    }

    /// The tasks a wait covers: all (`last`), or all but the last ones.
    fn covered(&self, last: bool) -> Vec<Id> {
        let mut ids: Vec<Id> = (self.running.iter())
            .filter(|(_, e)| last || !e.last)
            .map(|(id, _)| *id)
            .collect();
        ids.sort_by_key(|id| self.running[id].name);
        ids
    }

    /// Waits up to `bound` until the tasks covered have ended; aborts those
    /// still running then.
    async fn wait(&mut self, last: bool, bound: Duration, out: &mut Outcome) {
        let deadline = tokio::time::Instant::now() + bound;
        self.take_handed();
        while !self.covered(last).is_empty() {
            let next = tokio::select! {
                Some(handed) = self.handed.recv() => {
                    self.adopt(handed);
                    continue;
                }
                next = tokio::time::timeout_at(deadline, self.set.join_next_with_id()) => next,
            };
            match next {
                Ok(Some(done)) => {
                    self.record(done, out);
                }
                Ok(None) | Err(_) => break,
            }
        }
        self.take_handed();
        let late = self.covered(last);
        if late.is_empty() {
            return;
        }
        let names: Vec<&'static str> = late.iter().map(|id| self.running[id].name).collect();
        tracing::warn!(tasks = ?names, ?bound, "tasks still running at the shutdown bound: aborted");
        out.aborted.extend(names);
        for id in &late {
            self.running[id].abort.abort();
        }
        while late.iter().any(|id| self.running.contains_key(id)) {
            match self.set.join_next_with_id().await {
                Some(done) => {
                    self.record(done, out);
                }
                None => break,
            }
        }
    }

    /// Logs an ended task; false when it failed or panicked (and was not
    /// handed over by a subsystem: those are only reported).
    fn record(&mut self, done: Result<(Id, TaskResult), JoinError>, out: &mut Outcome) -> bool {
        let (id, result) = match done {
            Ok((id, r)) => (id, r),
            Err(e) if e.is_cancelled() => {
                self.running.remove(&e.id());
                return true;
            }
            Err(e) => (e.id(), Err(TaskError::Panicked(e.to_string()))),
        };
        let (name, handed) =
            (self.running.remove(&id)).map_or(("unknown", false), |e| (e.name, e.handed));
        match result {
            Ok(()) => {
                tracing::debug!(task = name, "task ended");
                true
            }
            Err(e) if handed => {
                tracing::error!(task = name, error = %e, "a subsystem's task failed: the node runs on");
                out.reported.push(format!("{name}: {e}"));
                true
            }
            Err(e) => {
                tracing::error!(task = name, error = %e, "a node task failed");
                out.failed.push(format!("{name}: {e}"));
                false
            }
        }
    }
}

#[cfg(test)]
#[path = "tasks/tests.rs"]
mod tests;
