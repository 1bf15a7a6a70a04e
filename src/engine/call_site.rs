//! Where engine work runs: inline on the calling async worker, or on tokio's
//! blocking pool.
//!
//! A point read (memtable, block cache) and a write that does not wait for
//! an fsync (memtable + WAL append to the OS) take microseconds; handing them
//! to the blocking pool cost more than the work (a thread hand-off and a
//! wake-up each way, and a pool that grew to ~50 threads per node under
//! load: issue 14). Writes under `Durability::Sync` wait ~ms for an fsync and
//! stay on the blocking pool, where concurrent writers share one fsync (group
//! commit) without stalling the async workers. A write RocksDB would stall
//! (flushes or compactions behind) is taken off the worker by the engine
//! itself (`engine/rocks/stall.rs`).
//!
//! It lives in `engine`, below every module that runs engine work: the
//! replica, the hint store, the layout acceptor (`view`, which `replica`
//! imports), movement streams, repair, admin stats.
//!
//! Must not decide what work is done, only where.
use crate::engine::Engine;

/// Where engine work runs (a replica or hint-store call, a layout
/// acceptor's answer, a stream page, a repair scan, the admin stats).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallSite {
    /// On the calling task's thread, in its span.
    Inline,
    /// On tokio's blocking pool, in the caller's span.
    BlockingPool,
}

impl CallSite {
    /// Where work that may write to `engine` runs.
    pub fn for_writes(engine: &dyn Engine) -> Self {
        if engine.write_waits_for_sync() {
            CallSite::BlockingPool
        } else {
            CallSite::Inline
        }
    }

    /// Runs `f` here. Inline it runs in the current span already; on the
    /// pool it is entered into the caller's span (so what it writes carries
    /// the request's trace context).
    pub async fn run<T, F>(self, f: F) -> Result<T, tokio::task::JoinError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        match self {
            CallSite::Inline => Ok(f()),
            CallSite::BlockingPool => {
                tokio::task::spawn_blocking(crate::telemetry::in_current_span(f)).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::memory::MemoryEngine;
    use crate::engine::{Durability, EngineOptions, Limits, RocksEngine};

    #[test]
    fn only_writes_that_wait_for_an_fsync_leave_the_async_workers() {
        let mem = MemoryEngine::new(Limits::default());
        assert_eq!(CallSite::for_writes(&mem), CallSite::Inline);
        for (durability, site) in [
            (Durability::Sync, CallSite::BlockingPool),
            (Durability::Periodic { interval_ms: 1000 }, CallSite::Inline),
            (Durability::None, CallSite::Inline),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let opts = EngineOptions {
                durability,
                ..EngineOptions::default()
            };
            let engine = RocksEngine::open(dir.path(), opts).unwrap();
            assert_eq!(CallSite::for_writes(&engine), site, "{durability:?}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn inline_runs_on_the_callers_thread_and_the_pool_does_not() {
        let caller = std::thread::current().id();
        let inline = CallSite::Inline.run(|| std::thread::current().id());
        assert_eq!(inline.await.unwrap(), caller);
        let pooled = CallSite::BlockingPool.run(|| std::thread::current().id());
        assert_ne!(pooled.await.unwrap(), caller);
    }
}
