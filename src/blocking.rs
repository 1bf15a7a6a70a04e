//! Waiting on a lock or a stalled write without holding up the async
//! runtime (review of the inline engine calls, M1/M2).
//!
//! Engine calls and the locks around them run inline on tokio workers:
//! usually for microseconds. When one waits for long (a RocksDB write stall,
//! or a lock held across one), the wait goes through [`off_worker`]: on a
//! multi-threaded runtime's worker, tokio hands that worker's queue to
//! another thread first, so timers, heartbeats and reads keep running. The
//! wait keeps its caller's thread, so guards the caller holds stay held.
//! The locks here try first without waiting, so the common, uncontended
//! case costs nothing.
//!
//! Must not: decide anything, or be used where a wait must be cancellable
//! (these waits are not).

use parking_lot::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Runs `f`, which may block for long, without holding up the async runtime:
/// on a multi-threaded runtime's worker through [`tokio::task::block_in_place`]
/// (the worker's tasks move to another thread meanwhile); anywhere else
/// (a blocking-pool thread, a plain thread) as is. On a current-thread
/// runtime there is no other thread to hand the tasks to, and `f` runs as is.
pub fn off_worker<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Locks `m`, waiting (if it must) off the async worker.
pub fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.try_lock().unwrap_or_else(|| off_worker(|| m.lock()))
}

/// Takes `l` for reading, waiting (if it must) off the async worker.
pub fn read<T: ?Sized>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.try_read().unwrap_or_else(|| off_worker(|| l.read()))
}

/// Takes `l` for writing, waiting (if it must) off the async worker.
pub fn write<T: ?Sized>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.try_write().unwrap_or_else(|| off_worker(|| l.write()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{mpsc, Arc};
    use std::time::Duration;

    /// On a runtime with one worker, a task waiting for a lock held for
    /// long (as across a stalled write) must not stop the worker: a timer
    /// spawned after it still fires while the lock is held.
    #[test]
    fn a_task_waiting_for_a_held_lock_leaves_the_runtime_running() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let m = Arc::new(Mutex::new(()));
        let held = m.lock();
        let (started, waiting) = mpsc::channel();
        let waiter = rt.spawn({
            let m = m.clone();
            async move {
                started.send(()).unwrap();
                drop(lock(&m));
            }
        });
        waiting.recv_timeout(Duration::from_secs(10)).unwrap();
        let (tick, ticked) = mpsc::channel();
        rt.spawn(async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            tick.send(()).unwrap();
        });
        let ran = ticked.recv_timeout(Duration::from_secs(10));
        drop(held);
        assert_eq!(
            ran,
            Ok(()),
            "a timer fired while a task waited for the lock"
        );
        rt.block_on(waiter).unwrap();
    }

    /// The same for a reader queued behind a writer that waits for a
    /// long-held read guard (parking_lot blocks new readers then).
    #[test]
    fn readers_and_writers_wait_off_the_worker() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let l = Arc::new(RwLock::new(()));
        let held = l.read();
        let (started, waiting) = mpsc::channel();
        let writer = rt.spawn({
            let l = l.clone();
            async move {
                started.send(()).unwrap();
                drop(write(&l));
            }
        });
        waiting.recv_timeout(Duration::from_secs(10)).unwrap();
        let (tick, ticked) = mpsc::channel();
        rt.spawn({
            let l = l.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(10)).await;
                tick.send(()).unwrap();
                drop(read(&l));
            }
        });
        let ran = ticked.recv_timeout(Duration::from_secs(10));
        drop(held);
        assert_eq!(ran, Ok(()), "a timer fired while a writer waited");
        rt.block_on(writer).unwrap();
    }
}
