//! The latch of a failed sync and its mark on disk.
//!
//! Owns the first failure after which written data may not be on the disk
//! (a WAL write or fsync, a flush: the periodic syncer's, an explicit
//! [`Engine::flush`](crate::engine::Engine::flush)'s, a write's), which
//! makes the engine refuse every later write, and the marker file
//! [`MARKER`] in the database directory. The marker is written and fsynced
//! with `std::fs`, not through RocksDB (whose writes are what failed), when
//! the latch is first set: the kernel may have dropped the pages the failed
//! sync did not write (fsyncgate), so the next start, in the same boot too,
//! recovers as after a lost WAL tail (`engine::boot`), and removes the
//! marker only once that recovery is durable ([`Latch::unmark`]).
//!
//! Must not decide which failures latch (the engine does, by kind:
//! `rocks/error.rs`), nor hold its lock across a write of the marker: every
//! client call asks [`Latch::get`].

use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use crate::engine::EngineError;

/// The marker's file name, in the database directory. RocksDB leaves files
/// whose names it does not know alone.
pub(super) const MARKER: &str = "GEOKV-SYNC-FAILED";

/// The first failed sync of this run, and where its marker goes.
pub(super) struct Latch {
    failed: Mutex<Option<String>>,
    dir: PathBuf,
}

impl Latch {
    /// An unset latch for the database in `dir`.
    pub(super) fn new(dir: &Path) -> Self {
        Latch {
            failed: Mutex::new(None),
            dir: dir.to_path_buf(),
        }
    }

    /// Why writes are refused, once a sync failed.
    pub(super) fn get(&self) -> Option<String> {
        self.failed.lock().clone()
    }

    /// Latches `e` (unless an earlier failure is latched, which stays) and
    /// answers the latched failure. The first one also writes the marker.
    pub(super) fn set(&self, e: EngineError) -> EngineError {
        tracing::error!(error = %e, path = %self.dir.display(), "a WAL write or fsync failed; refusing writes");
        let (first, latched) = {
            let mut failed = self.failed.lock();
            let first = failed.is_none();
            (first, failed.get_or_insert_with(|| e.to_string()).clone())
        };
        if first {
            if let Err(e) = mark(&self.dir, &latched) {
                tracing::error!(error = %e, path = %self.dir.display(),
                    "could not write the failed-sync marker: a restart in this boot will not recover the tail it may have lost");
            }
        }
        EngineError::SyncFailed(latched)
    }

    /// Whether the marker is on disk (an earlier run's, or this one's).
    pub(super) fn marked(&self) -> Result<bool, EngineError> {
        Ok(self.dir.join(MARKER).try_exists()?)
    }

    /// Removes the marker, durably, unless this run's sync failed: its
    /// mark stays for the next start. Under the lock, so a failure latched
    /// meanwhile writes its marker after this removal, not before.
    pub(super) fn unmark(&self) -> Result<(), EngineError> {
        let failed = self.failed.lock();
        if failed.is_some() {
            return Ok(());
        }
        match std::fs::remove_file(self.dir.join(MARKER)) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            removed => removed?,
        }
        std::fs::File::open(&self.dir)?.sync_all()?;
        Ok(())
    }
}

/// Writes the marker (saying why) and fsyncs it and its directory entry.
fn mark(dir: &Path, why: &str) -> std::io::Result<()> {
    let path = dir.join(MARKER);
    std::fs::write(&path, why)?;
    std::fs::File::open(&path)?.sync_all()?;
    std::fs::File::open(dir)?.sync_all()
}
