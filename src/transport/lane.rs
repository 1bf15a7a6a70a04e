//! One peer's batching lane: a task that runs the [`batch::Batcher`]'s
//! decisions against a call function (the network, or a test's fake).
//! Callers [`Lane::submit`] an item and await its own outcome; the task
//! sends what the batcher says, polls the calls in flight, and hands each
//! entry the outcome the call returned for it.
//!
//! The task ends when the lane is dropped and its calls are done. Must
//! not: interpret outcomes or retry (the call function maps a failed call
//! to per-entry outcomes; callers decide what they mean).

use super::batch::{Action, Batcher, EntryId, Limits};
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use std::collections::HashMap;
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
    /// The lane went away without an outcome for it (it may have been sent).
    Lost,
}

/// Sends one batch: `(item, deadline)` per entry, in order; returns one
/// outcome per entry, in the same order.
pub type CallFn<E, O> = Arc<dyn Fn(Vec<(E, Instant)>) -> BoxFuture<'static, Vec<O>> + Send + Sync>;

struct Submit<E, O> {
    item: E,
    bytes: usize,
    deadline: Instant,
    reply: oneshot::Sender<Settled<O>>,
}

/// A handle on one lane's task.
pub struct Lane<E, O> {
    tx: mpsc::UnboundedSender<Submit<E, O>>,
}

impl<E: Send + 'static, O: Send + 'static> Lane<E, O> {
    /// Spawns the lane's task on the current runtime.
    pub fn spawn(limits: Limits, call: CallFn<E, O>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(Batcher::new(limits), rx, call));
        Lane { tx }
    }

    /// Sends `item` (`bytes` long) with the next batch, if before
    /// `deadline`, and returns its outcome.
    pub async fn submit(&self, item: E, bytes: usize, deadline: Instant) -> Settled<O> {
        let (reply, rx) = oneshot::channel();
        let sub = Submit {
            item,
            bytes,
            deadline,
            reply,
        };
        if self.tx.send(sub).is_err() {
            return Settled::Expired;
        }
        rx.await.unwrap_or(Settled::Lost)
    }
}

/// Entries submitted and not yet settled: the item until it is sent.
type Waiting<E, O> = HashMap<EntryId, (Option<(E, Instant)>, oneshot::Sender<Settled<O>>)>;

async fn run<E: Send + 'static, O: Send + 'static>(
    mut batcher: Batcher,
    mut rx: mpsc::UnboundedReceiver<Submit<E, O>>,
    call: CallFn<E, O>,
) {
    let mut calls: FuturesUnordered<BoxFuture<'static, (u64, Vec<O>)>> = FuturesUnordered::new();
    let mut waiting: Waiting<E, O> = HashMap::new();
    let mut next: EntryId = 0;
    let mut open = true;
    while open || !calls.is_empty() || batcher.queued() > 0 {
        let wake = batcher.next_deadline();
        let actions = tokio::select! {
            biased;
            Some((batch, outs)) = calls.next(), if !calls.is_empty() => {
                let mut outs: Vec<Option<O>> = outs.into_iter().map(Some).collect();
                let take = |i: usize| outs.get_mut(i).and_then(Option::take);
                batcher.finished(batch, take, Instant::now())
            }
            sub = rx.recv(), if open => match sub {
                Some(s) => {
                    let id = next;
                    next += 1;
                    waiting.insert(id, (Some((s.item, s.deadline)), s.reply));
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
        };
        for a in actions {
            apply(a, &mut waiting, &call, &mut calls);
        }
    }
}

fn apply<E: Send + 'static, O: Send + 'static>(
    action: Action<Option<O>>,
    waiting: &mut Waiting<E, O>,
    call: &CallFn<E, O>,
    calls: &mut FuturesUnordered<BoxFuture<'static, (u64, Vec<O>)>>,
) {
    match action {
        Action::Send { batch, entries } => {
            let items = (entries.iter())
                .filter_map(|id| waiting.get_mut(id).and_then(|w| w.0.take()))
                .collect::<Vec<_>>();
            let fut = call(items);
            calls.push(Box::pin(async move { (batch, fut.await) }));
        }
        Action::Complete { id, outcome } => {
            if let Some((_, reply)) = waiting.remove(&id) {
                let _ = reply.send(outcome.map_or(Settled::Lost, Settled::Answered));
            }
        }
        Action::Expire { id } => {
            if let Some((_, reply)) = waiting.remove(&id) {
                let _ = reply.send(Settled::Expired);
            }
        }
    }
}

#[cfg(test)]
mod tests;
