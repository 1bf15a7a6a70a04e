//! [`Gated`]: this node's engine with every write passing the replica's
//! gate ([`super::gate`]), for what writes this node's storage outside
//! [`super::Replica`]: movement (a stream's pages and their cursors,
//! cleanup's deletes, a leave's bookkeeping). So the node's close covers
//! them as it covers replica writes: a write that passed is waited for
//! (within the bound) before the final sync and the clean-shutdown
//! marker, and a later one is refused, nothing written
//! ([`EngineError::Closed`]): a blocking write an aborted task left queued
//! cannot commit after the marker.
//!
//! Must not: change what is written or read (every call goes to the inner
//! engine as it is, a write only once it holds a pass).

use super::gate::Gate;
use crate::engine::{
    incarnation, Cf, Engine, EngineError, EngineStats, Limits, RawEntry, WriteBatch,
};
use crate::version::SiblingSet;
use std::sync::Arc;

/// An engine whose writes pass a replica's gate.
pub struct Gated {
    inner: Arc<dyn Engine>,
    gate: Arc<Gate>,
}

impl Gated {
    /// `inner`, written to only through `gate`.
    pub(super) fn new(inner: Arc<dyn Engine>, gate: Arc<Gate>) -> Self {
        Gated { inner, gate }
    }
}

fn closed() -> EngineError {
    EngineError::Closed("this node is shutting down; nothing was written".into())
}

impl Engine for Gated {
    fn write(&self, batch: WriteBatch) -> Result<(), EngineError> {
        let _pass = self.gate.enter().map_err(|_| closed())?;
        self.inner.write(batch)
    }
    fn write_unless_stalled(&self, batch: &WriteBatch) -> Result<bool, EngineError> {
        let _pass = self.gate.enter().map_err(|_| closed())?;
        self.inner.write_unless_stalled(batch)
    }
    fn wait_while_stalled(&self) -> Result<(), EngineError> {
        self.inner.wait_while_stalled()
    }
    fn get_versions(&self, ks: &str, key: &[u8]) -> Result<Option<SiblingSet>, EngineError> {
        self.inner.get_versions(ks, key)
    }
    fn get_raw(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        self.inner.get_raw(cf, key)
    }
    fn scan_raw(&self, cf: Cf, f: &[u8], t: &[u8], n: usize) -> Result<Vec<RawEntry>, EngineError> {
        self.inner.scan_raw(cf, f, t, n)
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
    fn flush(&self) -> Result<(), EngineError> {
        self.inner.flush()
    }
    fn incarnation(&self) -> &incarnation::Current {
        self.inner.incarnation()
    }
    fn write_waits_for_sync(&self) -> bool {
        self.inner.write_waits_for_sync()
    }
    fn writes_refused(&self) -> Option<String> {
        self.inner.writes_refused()
    }
    fn sync_failure_marked(&self) -> Result<bool, EngineError> {
        self.inner.sync_failure_marked()
    }
    fn clear_sync_failure_mark(&self) -> Result<(), EngineError> {
        self.inner.clear_sync_failure_mark()
    }
    fn stats(&self) -> Option<EngineStats> {
        self.inner.stats()
    }
}

#[cfg(test)]
#[path = "gated_tests.rs"]
mod tests;
