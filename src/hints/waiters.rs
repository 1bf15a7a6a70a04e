//! Coordinators waiting on urgent stream entries: a level that needs a remote
//! datacenter's acknowledgements (QUORUM, EACH_QUORUM, ALL, TWO/THREE beyond
//! the local replicas) gets them *through that datacenter's stream*. The
//! coordinator registers a [`StreamWait`] for the entry's sequence number
//! when it enqueues it; the delivery task resolves it with the number of
//! replicas in that datacenter that applied the entry, or fails it when the
//! datacenter has no live node to deliver to.
//!
//! Must not: send anything or touch storage; a dropped wait only forgets the
//! waiter, never the entry (which stays queued until delivered).

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::oneshot;

/// What a waiting coordinator learns: replicas of the key in the destination
/// datacenter that applied the entry, or why delivery gave up for now.
pub type StreamOutcome = Result<u32, StreamFailure>;

/// Why a wait on an urgent entry ended without a count of replicas. None
/// says the entry is lost: it stays queued (or with its adopter) and is
/// delivered later, so the write it carries may still be applied there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamFailure {
    /// The destination can never apply the entry.
    #[error("the destination refused the entry")]
    Refused,
    /// This node has left the cluster: the entry was handed to an adopter,
    /// which delivers it later; applied by nobody yet.
    #[error(
        "this node has left the cluster: the entry was handed to {to}, which delivers it \
         to {dest} later; not applied there yet"
    )]
    HandedOver { to: String, dest: String },
    /// The destination datacenter has no live node to stream to.
    #[error("no live node in {dc} to stream to")]
    NoLiveNode { dc: String },
    /// No acknowledgement came by the client's deadline.
    #[error("no acknowledgement by the deadline")]
    NoAckByDeadline,
    /// The registry dropped the wait (the delivery task ended).
    #[error("stream wait abandoned")]
    Abandoned,
    /// The outcome was already taken.
    #[error("stream wait already consumed")]
    Consumed,
}

#[derive(Default)]
struct Inner {
    /// seq → (destination datacenter, waiter).
    by_seq: HashMap<u64, (String, oneshot::Sender<StreamOutcome>)>,
}

/// The registry of waiting coordinators (one per node).
#[derive(Default, Clone)]
pub struct Waiters {
    inner: Arc<Mutex<Inner>>,
}

impl Waiters {
    /// Registers a wait for entry `seq` bound for `dc`.
    pub fn register(&self, dc: &str, seq: u64) -> StreamWait {
        let (tx, rx) = oneshot::channel();
        self.inner.lock().by_seq.insert(seq, (dc.to_string(), tx));
        StreamWait {
            dc: dc.to_string(),
            seq,
            rx: Some(rx),
            waiters: self.clone(),
        }
    }

    /// Resolves the wait of entry `seq`, if anyone still waits.
    pub fn resolve(&self, seq: u64, outcome: StreamOutcome) {
        if let Some((_, tx)) = self.inner.lock().by_seq.remove(&seq) {
            let _ = tx.send(outcome);
        }
    }

    /// Fails every wait bound for `dc` (e.g. no live node there); the entries
    /// stay queued and are delivered later.
    pub fn fail_dc(&self, dc: &str, why: &StreamFailure) {
        let failed: Vec<_> = {
            let mut inner = self.inner.lock();
            let seqs: Vec<u64> = inner
                .by_seq
                .iter()
                .filter(|(_, (d, _))| d == dc)
                .map(|(s, _)| *s)
                .collect();
            seqs.into_iter()
                .filter_map(|s| inner.by_seq.remove(&s))
                .collect()
        };
        for (_, tx) in failed {
            let _ = tx.send(Err(why.clone()));
        }
    }

    /// Whether a coordinator waits on entry `seq`.
    pub fn contains(&self, seq: u64) -> bool {
        self.inner.lock().by_seq.contains_key(&seq)
    }

    /// Coordinators currently waiting.
    pub fn len(&self) -> usize {
        self.inner.lock().by_seq.len()
    }

    /// Whether nobody waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn forget(&self, seq: u64) {
        self.inner.lock().by_seq.remove(&seq);
    }
}

/// One coordinator's wait for one urgent entry. Dropping it forgets the
/// waiter (the entry itself stays queued).
pub struct StreamWait {
    /// The destination datacenter.
    pub dc: String,
    /// The entry's sequence number.
    pub seq: u64,
    rx: Option<oneshot::Receiver<StreamOutcome>>,
    waiters: Waiters,
}

impl StreamWait {
    /// Waits for the outcome (cancel-safe only in the sense that dropping the
    /// future drops the wait).
    pub async fn outcome(mut self) -> StreamOutcome {
        match self.rx.take() {
            Some(rx) => rx.await.unwrap_or(Err(StreamFailure::Abandoned)),
            None => Err(StreamFailure::Consumed),
        }
    }
}

impl Drop for StreamWait {
    fn drop(&mut self) {
        self.waiters.forget(self.seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn resolve_reaches_the_waiter_and_failures_are_per_dc() {
        let w = Waiters::default();
        let a = w.register("dc2", 1);
        let b = w.register("dc3", 2);
        let c = w.register("dc2", 3);
        w.resolve(1, Ok(3));
        assert_eq!(a.outcome().await, Ok(3));
        let none = StreamFailure::NoLiveNode { dc: "dc2".into() };
        w.fail_dc("dc2", &none);
        assert_eq!(c.outcome().await, Err(none));
        assert_eq!(w.len(), 1, "dc3's wait is untouched");
        drop(b);
        assert!(w.is_empty(), "a dropped wait is forgotten");
        // Resolving a forgotten wait is harmless.
        w.resolve(2, Ok(1));
    }
}
