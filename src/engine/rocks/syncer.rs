//! The background WAL fsync of [`Durability::Periodic`](crate::engine::Durability::Periodic),
//! like Cassandra's `commitlog_sync: periodic`.
//!
//! Owns one thread that calls `flush_wal(true)` every interval (or answers
//! the failure [`Injected`] fakes), latches a failure (one [`flush_failed`]
//! counts) so the engine refuses further writes, and retries a failed-sync
//! marker that could not be written ([`Latch::retry_mark`]). Must not touch
//! the data it syncs.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rocksdb::DB;

use super::error::{flush_failed, rocks};
use super::inject::Injected;
use super::latch::Latch;

/// Handle on the sync thread; dropping it stops and joins the thread.
pub(super) struct PeriodicSyncer {
    /// Dropping the sender wakes the thread and makes it exit.
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl PeriodicSyncer {
    /// Starts syncing `db`'s WAL every `interval`; a failed sync is latched
    /// in `latch` (another failure is only logged: the next sync retries).
    /// A sync failure `injected` holds is answered instead of the fsync.
    pub(super) fn start(
        db: Arc<DB>,
        interval: Duration,
        latch: Arc<Latch>,
        injected: Arc<Injected>,
    ) -> std::io::Result<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("geokv-wal-sync".into())
            .spawn(move || loop {
                match stopped.recv_timeout(interval) {
                    Err(RecvTimeoutError::Timeout) => {
                        let synced = match injected.sync_failure() {
                            Some(failed) => Err(failed),
                            None => db.flush_wal(true).map_err(rocks),
                        };
                        match synced {
                            // `set` writes a marker not yet written itself.
                            Err(e) if flush_failed(&e) => {
                                latch.set(e);
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "periodic WAL fsync did not run");
                                latch.retry_mark();
                            }
                            // A marker that could not be written (review-tidy34b L2).
                            Ok(()) => latch.retry_mark(),
                        }
                    }
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                }
            })?;
        Ok(PeriodicSyncer {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for PeriodicSyncer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
