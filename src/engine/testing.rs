//! A test engine: the memory engine with hooks around its writes, raw
//! scans and flushes (count them, slow them, fail them), so a test that needs to watch
//! or bend the engine writes the hook, not another delegating `Engine`.
//! Test-only.
//!
//! Must not: be used outside `#[cfg(test)]` code.

use super::memory::MemoryEngine;
use super::{incarnation, Cf, Engine, EngineError, Limits, RawEntry, WriteBatch};
use crate::version::SiblingSet;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

/// What a test does around the engine's calls (each defaults to nothing).
pub(crate) trait Hooks: Send + Sync + 'static {
    /// Before a write; an error is the write's, and nothing is written.
    fn before_write(&self, _batch: &WriteBatch) -> Result<(), EngineError> {
        Ok(())
    }
    /// After a write committed.
    fn after_write(&self) {}
    /// After a raw scan of `cf` returned `rows` rows.
    fn after_scan(&self, _cf: Cf, _rows: usize) {}
    /// Before [`Engine::flush`]; an error is the flush's.
    fn before_flush(&self) -> Result<(), EngineError> {
        Ok(())
    }
    /// After [`Engine::flush`] made every write durable.
    fn after_flush(&self) {}
    /// What [`Engine::sync_failure_marked`] answers (no mark by default).
    fn sync_failure_marked(&self) -> bool {
        false
    }
    /// [`Engine::clear_sync_failure_mark`].
    fn clear_sync_failure_mark(&self) {}
    /// What [`Engine::write_waits_for_sync`] answers (the memory engine's
    /// `false` unless a test plays `Durability::Sync`).
    fn write_waits_for_sync(&self) -> bool {
        false
    }
}

/// [`MemoryEngine`] with `hooks`; derefs to the hooks, so a test reads its
/// counters as `engine.counter`.
pub(crate) struct Hooked<H> {
    pub inner: MemoryEngine,
    pub hooks: H,
}

impl<H: Hooks> Hooked<H> {
    /// A fresh memory engine with default limits.
    pub fn new(hooks: H) -> Self {
        Self::with_limits(Limits::default(), hooks)
    }

    pub fn with_limits(limits: Limits, hooks: H) -> Self {
        Hooked {
            inner: MemoryEngine::new(limits),
            hooks,
        }
    }
}

impl<H> std::ops::Deref for Hooked<H> {
    type Target = H;
    fn deref(&self) -> &H {
        &self.hooks
    }
}

impl<H: Hooks> Engine for Hooked<H> {
    fn write(&self, batch: WriteBatch) -> Result<(), EngineError> {
        self.hooks.before_write(&batch)?;
        self.inner.write(batch)?;
        self.hooks.after_write();
        Ok(())
    }
    fn get_versions(&self, ks: &str, key: &[u8]) -> Result<Option<SiblingSet>, EngineError> {
        self.inner.get_versions(ks, key)
    }
    fn get_raw(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        self.inner.get_raw(cf, key)
    }
    fn scan_raw(&self, cf: Cf, f: &[u8], t: &[u8], n: usize) -> Result<Vec<RawEntry>, EngineError> {
        let rows = self.inner.scan_raw(cf, f, t, n)?;
        self.hooks.after_scan(cf, rows.len());
        Ok(rows)
    }
    fn scan_token_range(
        &self,
        ks: &str,
        start: u64,
        end: u64,
        after: Option<&[u8]>,
        n: usize,
    ) -> Result<Vec<(Vec<u8>, SiblingSet)>, EngineError> {
        self.inner.scan_token_range(ks, start, end, after, n)
    }
    fn limits(&self) -> &Limits {
        self.inner.limits()
    }
    fn write_waits_for_sync(&self) -> bool {
        self.hooks.write_waits_for_sync()
    }
    fn flush(&self) -> Result<(), EngineError> {
        self.hooks.before_flush()?;
        self.inner.flush()?;
        self.hooks.after_flush();
        Ok(())
    }
    fn incarnation(&self) -> &incarnation::Current {
        self.inner.incarnation()
    }
    fn sync_failure_marked(&self) -> Result<bool, EngineError> {
        Ok(self.hooks.sync_failure_marked())
    }
    fn clear_sync_failure_mark(&self) -> Result<(), EngineError> {
        self.hooks.clear_sync_failure_mark();
        Ok(())
    }
}

/// Hooks remembering which threads wrote; a write (recorded first) waits
/// while a test holds `hold`, and one can be made to fail
/// ([`Threads::fail_after`]).
pub(crate) struct Threads {
    pub writers: Mutex<Vec<std::thread::ThreadId>>,
    pub hold: Mutex<()>,
    /// What [`Engine::write_waits_for_sync`] answers.
    pub syncs: bool,
    /// Writes left before one fails; negative: none fails.
    countdown: AtomicI64,
}

impl Threads {
    /// Writes that do not wait for an fsync.
    pub(crate) fn new() -> Self {
        Threads {
            writers: Default::default(),
            hold: Default::default(),
            syncs: false,
            countdown: AtomicI64::new(-1),
        }
    }

    /// Writes that wait for an fsync (`Durability::Sync`).
    pub(crate) fn syncing() -> Self {
        Threads {
            syncs: true,
            ..Self::new()
        }
    }

    /// The next `n` writes succeed, the one after fails (nothing written),
    /// and later ones succeed again.
    pub(crate) fn fail_after(&self, n: i64) {
        self.countdown.store(n, Ordering::SeqCst);
    }
}

impl Hooks for Threads {
    fn before_write(&self, _batch: &WriteBatch) -> Result<(), EngineError> {
        self.writers.lock().push(std::thread::current().id());
        drop(self.hold.lock());
        let left = self.countdown.fetch_sub(1, Ordering::SeqCst);
        if left == 0 {
            return Err(EngineError::Backend("injected failure".into()));
        }
        if left < 0 {
            self.countdown.store(-1, Ordering::SeqCst);
        }
        Ok(())
    }
    fn write_waits_for_sync(&self) -> bool {
        self.syncs
    }
}
