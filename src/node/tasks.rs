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
//! Aborting a server does not end its connections (tonic runs each as its
//! own task): the node then closes its replica, which refuses every later
//! write ("shutting down, nothing applied"), and only then syncs the
//! engine and writes the clean-shutdown marker (`node::run`).
//! Must not know what its tasks do.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::{AbortHandle, Id, JoinError, JoinSet};

/// A task's result: `Err` is a server or loop that stopped on a failure.
pub(super) type TaskResult = Result<(), String>;

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
}

/// One running task.
struct Entry {
    name: &'static str,
    /// Spawned with [`TaskSet::spawn_last`].
    last: bool,
    abort: AbortHandle,
}

/// The node's named tasks.
pub(super) struct TaskSet {
    set: JoinSet<TaskResult>,
    running: HashMap<Id, Entry>,
    /// Turned on once the tasks but the last ones have ended (step 3).
    late: watch::Sender<bool>,
}

impl Default for TaskSet {
    fn default() -> Self {
        TaskSet {
            set: JoinSet::new(),
            running: HashMap::new(),
            late: watch::channel(false).0,
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

    /// Spawns a task that must end soon after the shutdown signal; its
    /// error, typed where it is raised, is kept as text for the log.
    pub fn spawn<E: std::fmt::Display>(
        &mut self,
        name: &'static str,
        task: impl Future<Output = Result<(), E>> + Send + 'static,
    ) {
        self.add(
            name,
            false,
            async move { task.await.map_err(|e| e.to_string()) },
        );
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
        let entry = Entry { name, last, abort };
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
        while !self.covered(last).is_empty() {
            match tokio::time::timeout_at(deadline, self.set.join_next_with_id()).await {
                Ok(Some(done)) => {
                    self.record(done, out);
                }
                Ok(None) | Err(_) => break,
            }
        }
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

    /// Logs an ended task; false when it failed or panicked.
    fn record(&mut self, done: Result<(Id, TaskResult), JoinError>, out: &mut Outcome) -> bool {
        let (id, result) = match done {
            Ok((id, r)) => (id, r.map_err(|e| format!("stopped: {e}"))),
            Err(e) if e.is_cancelled() => {
                self.running.remove(&e.id());
                return true;
            }
            Err(e) => (e.id(), Err(format!("panicked: {e}"))),
        };
        let name = self.running.remove(&id).map_or("unknown", |e| e.name);
        match result {
            Ok(()) => {
                tracing::debug!(task = name, "task ended");
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
