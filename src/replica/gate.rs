//! The replica's write gate: every write to this node's replica (and every
//! local hint a receiver stores on a peer's behalf) passes it, and
//! [`Gate::close`] shuts it for good once the writes that passed have
//! ended. What the node's shutdown relies on: after `close` returns nothing
//! can be written through the replica, so the final WAL sync and the
//! clean-shutdown marker cover every write this node ever acknowledged (a
//! peer's hint or stream batch on a connection still open after the
//! servers stopped is refused, "shutting down, nothing applied", and its
//! sender keeps the entries).
//!
//! A close waits at most a bound ([`CLOSE_WITHIN`] for the node's
//! shutdown): a write stuck in the engine must not hold the shutdown until
//! the node is killed; the node then skips the clean-shutdown marker, so
//! its next start recovers in full (a new incarnation).
//!
//! Must not: know what is written, or wait on anything but writes that
//! passed (and those no longer than asked).

use parking_lot::{Condvar, Mutex};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// How long a node's shutdown waits for the replica writes still running
/// (a stalled RocksDB write must not hold it until the node is killed).
pub const CLOSE_WITHIN: Duration = Duration::from_secs(3);

/// Open until [`Gate::close`]; counts the writes inside.
#[derive(Default)]
pub struct Gate {
    closed: AtomicBool,
    inside: AtomicUsize,
    /// Held by `close` while it checks `inside`, so the last [`Pass`] to
    /// leave cannot notify between that check and the wait.
    idle: Mutex<()>,
    left: Condvar,
}

/// A write allowed through the gate: `close` waits until it is dropped.
#[must_use = "the write is covered only while the pass is held"]
pub struct Pass<'a>(&'a Gate);

/// Writes still inside when [`Gate::close`] stopped waiting for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{inside} write(s) still running after {} ms", .waited.as_millis())]
pub struct Stuck {
    pub inside: usize,
    pub waited: Duration,
}

/// The gate was closed: the write must not be done (nothing was).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

impl Gate {
    /// A pass for one write, unless the gate is closed.
    pub fn enter(&self) -> Result<Pass<'_>, Closed> {
        // SeqCst on both sides: either `close` sees this write inside, or
        // this write sees the gate closed.
        self.inside.fetch_add(1, Ordering::SeqCst);
        let pass = Pass(self);
        if self.closed.load(Ordering::SeqCst) {
            return Err(Closed);
        }
        Ok(pass)
    }

    /// Whether [`Gate::close`] has begun.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Refuses every later write and returns once every write that passed
    /// has ended, or, with writes still inside after `within`, says so
    /// ([`Stuck`]; the gate stays closed). Blocks (callers on an async
    /// worker wrap it in [`crate::blocking::off_worker`]).
    pub fn close(&self, within: Duration) -> Result<(), Stuck> {
        self.closed.store(true, Ordering::SeqCst);
        let deadline = std::time::Instant::now() + within;
        let mut idle = self.idle.lock();
        loop {
            let inside = self.inside.load(Ordering::SeqCst);
            if inside == 0 {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(Stuck {
                    inside,
                    waited: within,
                });
            }
            // The 50 ms only guards against a notification this loop
            // cannot miss anyway (the mutex orders them); it costs nothing.
            self.left
                .wait_for(&mut idle, left.min(Duration::from_millis(50)));
        }
    }
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        let gate = self.0;
        if gate.inside.fetch_sub(1, Ordering::SeqCst) == 1 && gate.closed.load(Ordering::SeqCst) {
            let _idle = gate.idle.lock();
            gate.left.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_closed_gate_lets_nothing_through() {
        let gate = Gate::default();
        drop(gate.enter().expect("open"));
        gate.close(Duration::from_secs(1)).expect("nothing inside");
        assert!(gate.is_closed());
        assert_eq!(gate.enter().err(), Some(Closed));
        assert_eq!(
            gate.inside.load(Ordering::SeqCst),
            0,
            "a refusal leaves no count"
        );
    }

    #[test]
    fn close_waits_for_the_writes_inside() {
        let gate = Arc::new(Gate::default());
        let (entered, release) = (
            std::sync::mpsc::channel::<()>(),
            std::sync::mpsc::channel::<()>(),
        );
        let (g, entered_tx, release_rx) = (gate.clone(), entered.0, release.1);
        let writer = std::thread::spawn(move || {
            let _pass = g.enter().expect("open");
            entered_tx.send(()).unwrap();
            release_rx.recv().unwrap();
            std::time::Instant::now()
        });
        entered.1.recv().unwrap();
        let g = gate.clone();
        let closer = std::thread::spawn(move || {
            g.close(Duration::from_secs(60))
                .expect("the write left in time");
            std::time::Instant::now()
        });
        std::thread::sleep(Duration::from_millis(100));
        assert!(!closer.is_finished(), "close returned with a write inside");
        assert!(gate.is_closed(), "no new write passes meanwhile");
        release.0.send(()).unwrap();
        let (left, closed) = (writer.join().unwrap(), closer.join().unwrap());
        assert!(closed >= left, "close returned only after the write left");
    }

    /// A write that never ends holds a close for its bound only; the close
    /// then says so (review Low of stop 23: a stalled engine write held the
    /// node's shutdown until it was killed).
    #[test]
    fn close_gives_up_on_a_stuck_write_after_its_bound() {
        let gate = Arc::new(Gate::default());
        let stuck = gate.enter().expect("open");
        let (done_tx, done) = std::sync::mpsc::channel();
        let g = gate.clone();
        std::thread::spawn(move || {
            let began = std::time::Instant::now();
            let out = g.close(Duration::from_millis(100));
            let _ = done_tx.send((out, began.elapsed()));
        });
        let (out, took) = (done.recv_timeout(Duration::from_secs(5)))
            .expect("close still waiting on the stuck write after 5 s");
        assert_eq!(out.map_err(|s| s.inside), Err(1), "{out:?}");
        assert!(
            took >= Duration::from_millis(100),
            "waited its bound first: {took:?}"
        );
        assert_eq!(gate.enter().err(), Some(Closed), "nothing new gets in");
        drop(stuck);
    }
}
