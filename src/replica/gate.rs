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
//! Must not: know what is written, or wait on anything but writes that
//! passed.

use parking_lot::{Condvar, Mutex};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

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
    /// has ended. Blocks (callers on an async worker wrap it in
    /// [`crate::blocking::off_worker`]).
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let mut idle = self.idle.lock();
        while self.inside.load(Ordering::SeqCst) > 0 {
            // The timeout only guards against a notification this loop
            // cannot miss anyway (the mutex orders them); it costs nothing.
            self.left.wait_for(&mut idle, Duration::from_millis(50));
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
        gate.close();
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
            g.close();
            std::time::Instant::now()
        });
        std::thread::sleep(Duration::from_millis(100));
        assert!(!closer.is_finished(), "close returned with a write inside");
        assert!(gate.is_closed(), "no new write passes meanwhile");
        release.0.send(()).unwrap();
        let (left, closed) = (writer.join().unwrap(), closer.join().unwrap());
        assert!(closed >= left, "close returned only after the write left");
    }
}
