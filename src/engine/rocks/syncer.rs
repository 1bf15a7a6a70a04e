//! The background WAL fsync of [`Durability::Periodic`](crate::engine::Durability::Periodic),
//! like Cassandra's `commitlog_sync: periodic`.
//!
//! Owns one thread that calls `flush_wal(true)` every interval and records
//! the first failure so the engine can refuse further writes. Must not touch
//! the data it syncs.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;
use rocksdb::DB;

/// Handle on the sync thread; dropping it stops and joins the thread.
pub(super) struct PeriodicSyncer {
    /// Dropping the sender wakes the thread and makes it exit.
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl PeriodicSyncer {
    /// Starts syncing `db`'s WAL every `interval`; the first error lands in `failed`.
    pub(super) fn start(
        db: Arc<DB>,
        interval: Duration,
        failed: Arc<Mutex<Option<String>>>,
    ) -> std::io::Result<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("geokv-wal-sync".into())
            .spawn(move || loop {
                match stopped.recv_timeout(interval) {
                    Err(RecvTimeoutError::Timeout) => {
                        if let Err(e) = db.flush_wal(true) {
                            tracing::error!(error = %e, "periodic WAL fsync failed; refusing writes");
                            failed.lock().get_or_insert_with(|| e.to_string());
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
