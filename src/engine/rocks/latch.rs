//! The latch of a failed sync and its mark on disk.
//!
//! Owns the first failure after which written data may not be on the disk
//! (a WAL write or fsync, a flush: the periodic syncer's, an explicit
//! [`Engine::flush`](crate::engine::Engine::flush)'s, a write's), which
//! makes the engine refuse every later write, and the marker file
//! [`MARKER`] in the database directory. The marker is written and fsynced
//! with `std::fs`, not through RocksDB (whose writes are what failed), when
//! the latch is set (again at each later setting, periodic sync or refused
//! flush until one write of it succeeded: [`Latch::retry_mark`]): the
//! kernel may have dropped the pages the failed sync did not write
//! (fsyncgate), so the next start, in the same boot too, recovers as after
//! a lost WAL tail (`engine::boot`), and removes the marker only once that
//! recovery is durable ([`Latch::unmark`]). A marker that still cannot be
//! written is logged at most once a minute, with how many failures were
//! left unlogged ([`MARK_LOG_EVERY`]); one written after failing is logged.
//!
//! Must not decide which failures latch (the engine does, by kind:
//! `rocks/error.rs`), nor hold its lock across a write of the marker: every
//! client call asks [`Latch::get`] (only [`Latch::unmark`], before the node
//! serves, holds it across the removal).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::engine::EngineError;

/// The marker's file name, in the database directory. RocksDB leaves files
/// whose names it does not know alone.
pub(super) const MARKER: &str = "GEOKV-SYNC-FAILED";

/// At most one error line per this long for a marker that cannot be
/// written (review-tidy35b L3): the syncer retries at every tick, which
/// may be every millisecond.
const MARK_LOG_EVERY: Duration = Duration::from_secs(60);

/// The first failed sync of this run, and where its marker goes.
pub(super) struct Latch {
    state: Mutex<State>,
    dir: PathBuf,
}

#[derive(Default)]
struct State {
    /// The latched failure.
    failed: Option<String>,
    /// This run's marker is on disk (review-tidy34b L2: until it is, every
    /// [`Latch::set`] and [`Latch::retry_mark`] tries again).
    marked: bool,
    /// The log lines of failed marker writes.
    mark_log: LogLimit,
}

/// One log line per [`MARK_LOG_EVERY`] at most.
#[derive(Default)]
struct LogLimit {
    /// When the last line was logged.
    last: Option<Instant>,
    /// Failures since then left unlogged.
    suppressed: u64,
}

impl LogLimit {
    /// Whether a failure at `now` is logged: `Some` of how many were left
    /// unlogged since the last line, or `None` (counted) within the bound.
    fn admit(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(last) if now.saturating_duration_since(last) < MARK_LOG_EVERY => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

impl Latch {
    /// An unset latch for the database in `dir`.
    pub(super) fn new(dir: &Path) -> Self {
        Latch {
            state: Mutex::new(State::default()),
            dir: dir.to_path_buf(),
        }
    }

    /// Why writes are refused, once a sync failed.
    pub(super) fn get(&self) -> Option<String> {
        self.state.lock().failed.clone()
    }

    /// Latches `e` (unless an earlier failure is latched, which stays) and
    /// answers the latched failure. Writes the marker, off the async worker
    /// (a dying disk may hold it), unless an earlier call wrote it: one
    /// that failed (a read-only remount, a full disk) is tried again by
    /// every later call and by [`Latch::retry_mark`].
    pub(super) fn set(&self, e: EngineError) -> EngineError {
        tracing::error!(error = %e, path = %self.dir.display(), "a write or sync to disk failed; refusing writes");
        let (marked, latched) = {
            let mut state = self.state.lock();
            let latched = state.failed.get_or_insert_with(|| e.to_string()).clone();
            (state.marked, latched)
        };
        if !marked {
            self.write_mark(&latched);
        }
        EngineError::SyncFailed(latched)
    }

    /// Writes the marker again if a failure is latched and no write of it
    /// succeeded yet: the syncer calls it at each tick, a refused flush at
    /// each call, so a marker that failed is retried whatever the
    /// durability and whether or not later syncs fail.
    pub(super) fn retry_mark(&self) {
        let (marked, latched) = {
            let state = self.state.lock();
            (state.marked, state.failed.clone())
        };
        if let (false, Some(why)) = (marked, latched) {
            self.write_mark(&why);
        }
    }

    /// Writes the marker off the async worker (a dying disk may hold it);
    /// a failure is logged at most once per [`MARK_LOG_EVERY`].
    fn write_mark(&self, why: &str) {
        let path = self.dir.join(MARKER);
        match crate::blocking::off_worker(|| mark(&self.dir, why)) {
            Ok(()) => {
                let mut state = self.state.lock();
                state.marked = true;
                if state.mark_log.last.is_some() {
                    tracing::info!(path = %path.display(), "wrote the failed-sync marker after failing to; it need not be created by hand");
                }
            }
            Err(e) => {
                let admitted = self.state.lock().mark_log.admit(Instant::now());
                if let Some(suppressed) = admitted {
                    tracing::error!(error = %e, path = %path.display(), suppressed,
                        "could not write the failed-sync marker: create it by hand before the next start (README), or a restart in this boot will not recover the tail it may have lost");
                }
            }
        }
    }

    /// Whether the marker is on disk (an earlier run's, or this one's).
    pub(super) fn marked(&self) -> Result<bool, EngineError> {
        Ok(self.dir.join(MARKER).try_exists()?)
    }

    /// Removes the marker, durably, unless this run's sync failed: its
    /// mark stays for the next start. Under the lock, so a failure latched
    /// meanwhile writes its marker after this removal, not before.
    /// It runs before the node serves (`engine::boot::note_start`), so
    /// holding the lock across the removal's fsync holds up no client call.
    pub(super) fn unmark(&self) -> Result<(), EngineError> {
        let state = self.state.lock();
        if state.failed.is_some() {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// review-tidy34b L2: a marker that could not be written (here its
    /// directory is missing, as a read-only remount or a full disk would
    /// refuse it) is written by a later setting of the latch, which keeps
    /// the first failure. Fails before: only the first setting marked.
    #[test]
    fn a_marker_that_could_not_be_written_is_written_by_a_later_set() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("db");
        let latch = Latch::new(&dir);
        let first = latch.set(EngineError::Backend("first".into()));
        assert!(
            matches!(&first, EngineError::SyncFailed(e) if e.contains("first")),
            "{first:?}"
        );
        assert!(!latch.marked().unwrap(), "no directory: not written");
        std::fs::create_dir(&dir).unwrap();
        let again = latch.set(EngineError::Backend("second".into()));
        assert!(
            matches!(&again, EngineError::SyncFailed(e) if e.contains("first")),
            "{again:?}"
        );
        assert!(latch.marked().unwrap(), "written by the later set");
        let why = std::fs::read_to_string(dir.join(MARKER)).unwrap();
        assert!(why.contains("first"), "{why}");
        latch.unmark().unwrap();
        assert!(latch.marked().unwrap(), "kept while latched");
    }

    /// review-tidy34b L2: with no later failure (a refused write or flush
    /// does not reach `set`), `retry_mark` writes a marker that could not
    /// be written; it does nothing while nothing is latched.
    #[test]
    fn a_marker_that_could_not_be_written_is_retried_without_a_new_failure() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("db");
        let latch = Latch::new(&dir);
        std::fs::create_dir(&dir).unwrap();
        latch.retry_mark();
        assert!(!latch.marked().unwrap(), "nothing latched: no marker");
        std::fs::remove_dir(&dir).unwrap();
        latch.set(EngineError::Backend("first".into()));
        std::fs::create_dir(&dir).unwrap();
        assert!(!latch.marked().unwrap(), "not written yet");
        latch.retry_mark();
        assert!(latch.marked().unwrap(), "written by the retry");
    }

    /// review-tidy35b L3: a marker that keeps failing is logged once, then
    /// counted until a minute has passed, when the next line says how many
    /// were left out. Fails before (by reading): every try logged.
    #[test]
    fn a_marker_that_keeps_failing_is_logged_at_most_once_a_minute() {
        let root = tempfile::tempdir().unwrap();
        let latch = Latch::new(&root.path().join("missing"));
        latch.set(EngineError::Backend("first".into()));
        for _ in 0..3 {
            latch.retry_mark();
        }
        let log = |l: &Latch| {
            let s = l.state.lock();
            (s.mark_log.last.is_some(), s.mark_log.suppressed)
        };
        assert_eq!(log(&latch), (true, 3), "one line, three left out");
        let mut limit = LogLimit::default();
        let t0 = Instant::now();
        assert_eq!(limit.admit(t0), Some(0));
        assert_eq!(limit.admit(t0 + Duration::from_millis(1)), None);
        assert_eq!(limit.admit(t0 + Duration::from_secs(59)), None);
        assert_eq!(limit.admit(t0 + MARK_LOG_EVERY), Some(2), "the count");
        assert_eq!(
            limit.admit(t0 + MARK_LOG_EVERY + Duration::from_secs(1)),
            None
        );
    }
}
