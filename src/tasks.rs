//! Background work a subsystem starts on its own, outside a request and
//! outside the node's start-up (a push of the layout or of the auth state
//! to every peer, a layout fetch, a decommission running on after its
//! `POST`): handed to the node's task set through a cloneable [`Spawner`],
//! so the node's stop waits for it or aborts it and its panic is reported
//! (`node::tasks`). A task's failure is a typed [`TaskError`]. A task that
//! must carry requests through the stop's drain (a peer's batching lane)
//! is spawned *last* ([`Spawner::spawn_last`]): it runs on through the
//! drain and is told to end by [`Spawner::late`], after it.
//! Must not: know what the tasks do, or decide the shutdown order (that is
//! `node::tasks`).

use std::future::Future;
use std::pin::Pin;

use tokio::sync::{mpsc, watch};

/// Why a node task ended other than well.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// A server or loop returned its error.
    #[error("stopped: {0}")]
    Stopped(Box<dyn std::error::Error + Send + Sync>),
    /// The task panicked (the panic's message).
    #[error("panicked: {0}")]
    Panicked(String),
}

impl TaskError {
    /// A task's own error, typed where it is raised.
    pub fn stopped(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        TaskError::Stopped(e.into())
    }
}

/// A task's result.
pub type TaskResult = Result<(), TaskError>;

/// A task as handed over.
pub type BoxTask = Pin<Box<dyn Future<Output = TaskResult> + Send>>;

/// A task handed to the owner of a [`Spawner`].
pub struct Spawned {
    pub name: &'static str,
    pub task: BoxTask,
    /// Spawned with [`Spawner::spawn_last`]: waited for after the drain.
    pub last: bool,
}

/// Where a subsystem spawns its background tasks: the node's task set, or,
/// with no node around (unit tests, tools), the current runtime.
#[derive(Clone, Default)]
pub struct Spawner {
    /// `None`: detached on the current runtime.
    owner: Option<mpsc::UnboundedSender<Spawned>>,
    /// The owner's signal to the last tasks (`None`: never given).
    late: Option<watch::Receiver<bool>>,
}

impl std::fmt::Debug for Spawner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.owner {
            Some(_) => "Spawner(owned)",
            None => "Spawner(detached)",
        })
    }
}

impl Spawner {
    /// A spawner with no owner: its tasks run detached on the current
    /// runtime (unit tests and tools, which have no node to stop).
    pub fn detached() -> Self {
        Spawner::default()
    }

    /// A spawner whose tasks arrive on the receiver (the node's task set).
    pub fn channel() -> (Spawner, mpsc::UnboundedReceiver<Spawned>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let owner = Some(tx);
        (Spawner { owner, late: None }, rx)
    }

    /// This spawner, its last tasks told to end when `late` turns true.
    pub fn with_late(self, late: watch::Receiver<bool>) -> Self {
        let late = Some(late);
        Spawner { late, ..self }
    }

    /// Runs `task` as `name`. Once the owner has stopped (the node ended),
    /// the task is dropped without running: nothing starts after a stop.
    pub fn spawn(&self, name: &'static str, task: impl Future<Output = ()> + Send + 'static) {
        self.hand(name, false, task);
    }

    /// [`Spawner::spawn`] for a task that serves the node's requests in
    /// flight: it runs on through the stop's drain, and must end soon
    /// after [`Spawner::late`] resolves.
    pub fn spawn_last(&self, name: &'static str, task: impl Future<Output = ()> + Send + 'static) {
        self.hand(name, true, task);
    }

    /// Resolves when the owner tells its last tasks to end (its drain is
    /// over, or it is gone); never for a detached spawner, whose tasks end
    /// on their own.
    pub fn late(&self) -> impl Future<Output = ()> + Send + 'static {
        let late = self.late.clone();
        async move {
            match late {
                Some(mut late) => {
                    let _ = late.wait_for(|l| *l).await;
                }
                None => std::future::pending().await,
            }
        }
    }

    fn hand(
        &self,
        name: &'static str,
        last: bool,
        task: impl Future<Output = ()> + Send + 'static,
    ) {
        match &self.owner {
            None => {
                tokio::spawn(task);
            }
            Some(owner) => {
                let task: BoxTask = Box::pin(async move {
                    task.await;
                    Ok(())
                });
                if owner.send(Spawned { name, task, last }).is_err() {
                    tracing::debug!(task = name, "the node has stopped: task not started");
                }
            }
        }
    }
}
