//! One peer's batching lane: a task that runs the [`batch::Batcher`]'s
//! decisions against a call function (the network, or a test's fake).
//! Callers [`Lane::submit`] an item and await its own outcome; the task
//! sends what the batcher says, polls the calls in flight, and hands each
//! entry the outcome the call returned for it (matched by entry, never by
//! position in a filtered list).
//!
//! A call whose future panics settles its own entries [`Settled::Lost`]
//! (maybe applied); the task's other calls go on. A task that died (a
//! panic of its own, its channel closed) is replaced by the next
//! submit; the entries it held settle truthfully: [`Settled::NotSent`] for
//! those it had not handed to a call, [`Settled::Lost`] (maybe applied)
//! for those it had. The task runs in the node's task set as a last one
//! (`crate::tasks::Spawner::spawn_last`): it carries requests through the
//! stop's drain; told to end after it, it takes no more entries and ends
//! once those it holds are settled, as it does when the lane is dropped.
//! A lane so ended is not dead: it is not replaced, and a later submit is
//! [`Settled::NotSent`].
//! Must not: interpret outcomes or retry (the call function
//! maps a failed call to per-entry outcomes; callers decide what they
//! mean).

use super::batch::{Action, BatchId, Batcher, EntryId, Limits};
use crate::tasks::Spawner;
use futures::future::{BoxFuture, FutureExt};
use futures::stream::{FuturesUnordered, StreamExt};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// How an entry settled.
#[derive(Debug, PartialEq, Eq)]
pub enum Settled<O> {
    /// Its call returned this outcome for it.
    Answered(O),
    /// Its deadline passed while queued: never sent.
    Expired,
    /// The lane held too much (its memory cap): never queued nor sent.
    Shed,
    /// The lane's task died before handing it to a call: never sent.
    NotSent,
    /// No outcome after it was handed to a call (the task died, or the
    /// call answered for other entries): it may have been applied.
    Lost,
}

/// Sends one batch: `(item, deadline)` per entry, in order; returns one
/// outcome per entry, in the same order (any other length leaves every
/// entry [`Settled::Lost`]).
pub type CallFn<E, O> = Arc<dyn Fn(Vec<(E, Instant)>) -> BoxFuture<'static, Vec<O>> + Send + Sync>;

/// Where an entry's outcome goes. Dropped unanswered (the task died) it
/// answers for itself: not sent, or lost once handed to a call.
struct Reply<O> {
    tx: Option<oneshot::Sender<Settled<O>>>,
    sent: bool,
}

impl<O> Reply<O> {
    fn send(mut self, s: Settled<O>) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(s);
        }
    }
}

impl<O> Drop for Reply<O> {
    fn drop(&mut self) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(if self.sent {
                Settled::Lost
            } else {
                Settled::NotSent
            });
        }
    }
}

struct Submit<E, O> {
    item: E,
    bytes: usize,
    deadline: Instant,
    reply: Reply<O>,
}

/// A handle on one lane's task, re-spawned when it died.
pub struct Lane<E, O> {
    limits: Limits,
    call: CallFn<E, O>,
    /// The peer named on the lane's gauges (none: no gauges).
    label: Option<String>,
    /// Where the lane's task runs (and a replacement of it).
    spawner: Spawner,
    tx: parking_lot::Mutex<mpsc::UnboundedSender<Submit<E, O>>>,
    /// Set by the task told to end (the node's drain is over): the lane
    /// ended on purpose and is not replaced.
    ended: Arc<AtomicBool>,
}

impl<E: Send + 'static, O: Send + 'static> Lane<E, O> {
    /// Spawns the lane's task through `spawner` (a last task of the node's
    /// set, or detached); `label` names the peer on the lane's gauges.
    pub fn spawn(
        limits: Limits,
        call: CallFn<E, O>,
        label: Option<String>,
        spawner: &Spawner,
    ) -> Self {
        let spawner = spawner.clone();
        let ended = Arc::new(AtomicBool::new(false));
        let tx = spawn_task(limits, call.clone(), label.clone(), &spawner, &ended);
        Lane {
            limits,
            call,
            label,
            spawner,
            tx: parking_lot::Mutex::new(tx),
            ended,
        }
    }

    /// Sends `item` (`bytes` long) with the next batch, if before
    /// `deadline`, and returns its outcome.
    pub async fn submit(&self, item: E, bytes: usize, deadline: Instant) -> Settled<O> {
        let (tx, rx) = oneshot::channel();
        let mut sub = Submit {
            item,
            bytes,
            deadline,
            reply: Reply {
                tx: Some(tx),
                sent: false,
            },
        };
        // A dead task is replaced once; the entry was not handed to it.
        for _ in 0..2 {
            match self.sender().send(sub) {
                Ok(()) => return rx.await.unwrap_or(Settled::Lost),
                Err(mpsc::error::SendError(back)) => sub = back,
            }
        }
        sub.reply.send(Settled::NotSent);
        rx.await.unwrap_or(Settled::NotSent)
    }

    /// The live task's sender, spawning a new task if it died (not if it
    /// was told to end: then the closed sender, and the submit is not sent).
    fn sender(&self) -> mpsc::UnboundedSender<Submit<E, O>> {
        let mut tx = self.tx.lock();
        if tx.is_closed() && !self.ended.load(Ordering::Acquire) {
            tracing::warn!(peer = ?self.label, "a batching lane's task died; replaced");
            metrics::counter!("geokv_internode_lane_restarts_total").increment(1);
            *tx = spawn_task(
                self.limits,
                self.call.clone(),
                self.label.clone(),
                &self.spawner,
                &self.ended,
            );
        }
        tx.clone()
    }
}

fn spawn_task<E: Send + 'static, O: Send + 'static>(
    limits: Limits,
    call: CallFn<E, O>,
    label: Option<String>,
    spawner: &Spawner,
    ended: &Arc<AtomicBool>,
) -> mpsc::UnboundedSender<Submit<E, O>> {
    let (tx, rx) = mpsc::unbounded_channel();
    let (late, ended) = (spawner.late(), ended.clone());
    // Told to end: marked so before the channel closes, so a submit that
    // finds it closed knows the lane was ended, not dead.
    let told = async move {
        late.await;
        ended.store(true, Ordering::Release);
    };
    let task = run(Batcher::new(limits), rx, call, label, told);
    spawner.spawn_last("batching lane", task);
    tx
}

/// Entries submitted and not yet settled: the item until it is sent.
type Waiting<E, O> = HashMap<EntryId, (Option<(E, Instant)>, Reply<O>)>;

/// The task's state besides the batcher.
struct Task<E, O> {
    waiting: Waiting<E, O>,
    /// The entries each call in flight was actually given, in order.
    sent: HashMap<BatchId, Vec<EntryId>>,
    calls: FuturesUnordered<BoxFuture<'static, (BatchId, Vec<O>)>>,
    call: CallFn<E, O>,
}

/// The lane's task: until the lane is dropped or `late` resolves, then
/// until the entries it holds are settled.
async fn run<E: Send + 'static, O: Send + 'static>(
    mut batcher: Batcher,
    mut rx: mpsc::UnboundedReceiver<Submit<E, O>>,
    call: CallFn<E, O>,
    label: Option<String>,
    late: impl std::future::Future<Output = ()> + Send,
) {
    let mut late = std::pin::pin!(late);
    let mut told = false;
    let gauges = label.map(|peer| {
        (
            metrics::gauge!("geokv_internode_lane_entries", "peer" => peer.clone()),
            metrics::gauge!("geokv_internode_lane_bytes", "peer" => peer),
        )
    });
    let mut t = Task {
        waiting: HashMap::new(),
        sent: HashMap::new(),
        calls: FuturesUnordered::new(),
        call,
    };
    let mut next: EntryId = 0;
    let mut open = true;
    while open || !t.calls.is_empty() || batcher.queued() > 0 {
        let wake = batcher.next_wake();
        let actions = tokio::select! {
            biased;
            Some((batch, outs)) = t.calls.next(), if !t.calls.is_empty() => {
                let mut by_id = by_entry(t.sent.remove(&batch).unwrap_or_default(), outs);
                batcher.finished(batch, |id| by_id.remove(&id), Instant::now())
            }
            sub = rx.recv(), if open => match sub {
                Some(s) => {
                    let id = next;
                    next += 1;
                    t.waiting.insert(id, (Some((s.item, s.deadline)), s.reply));
                    batcher.submit(id, s.bytes, s.deadline, Instant::now())
                }
                None => {
                    open = false;
                    Vec::new()
                }
            },
            _ = tokio::time::sleep_until(wake.unwrap_or_else(Instant::now)), if wake.is_some() => {
                batcher.tick(Instant::now())
            }
            // Told to end: no new entries (a later submit finds the lane
            // closed); those already submitted are still sent.
            () = &mut late, if !told => {
                told = true;
                rx.close();
                Vec::new()
            }
        };
        for a in actions {
            t.apply(a);
        }
        if let Some((entries, bytes)) = &gauges {
            let (n, b) = batcher.held();
            entries.set(n as f64);
            bytes.set(b as f64);
        }
    }
}

/// A call's outcomes by entry; none (every entry lost) when the call did
/// not answer one outcome per entry it was given.
fn by_entry<O>(ids: Vec<EntryId>, outs: Vec<O>) -> HashMap<EntryId, O> {
    if ids.len() != outs.len() {
        return HashMap::new();
    }
    ids.into_iter().zip(outs).collect()
}

impl<E: Send + 'static, O: Send + 'static> Task<E, O> {
    fn apply(&mut self, action: Action<Option<O>>) {
        match action {
            Action::Send { batch, entries } => {
                let mut ids = Vec::with_capacity(entries.len());
                let mut items = Vec::with_capacity(entries.len());
                for id in entries {
                    let Some(w) = self.waiting.get_mut(&id) else {
                        continue;
                    };
                    if let Some(item) = w.0.take() {
                        w.1.sent = true;
                        ids.push(id);
                        items.push(item);
                    }
                }
                self.sent.insert(batch, ids);
                let fut = std::panic::AssertUnwindSafe((self.call)(items));
                // A panic in one call settles its own entries (lost: maybe
                // applied), not the task's other calls.
                self.calls.push(Box::pin(async move {
                    let outs = fut.catch_unwind().await.unwrap_or_else(|_| {
                        tracing::error!("a batch call panicked: its entries may have been applied");
                        Vec::new()
                    });
                    (batch, outs)
                }));
            }
            Action::Complete { id, outcome } => {
                if let Some((_, reply)) = self.waiting.remove(&id) {
                    reply.send(outcome.map_or(Settled::Lost, Settled::Answered));
                }
            }
            Action::Expire { id } => self.settle(id, Settled::Expired),
            Action::Shed { id } => self.settle(id, Settled::Shed),
        }
    }

    fn settle(&mut self, id: EntryId, s: Settled<O>) {
        if let Some((_, reply)) = self.waiting.remove(&id) {
            reply.send(s);
        }
    }
}

#[cfg(test)]
mod tests;
