//! Failures injected into the RocksDB engine: by unit tests, and on a node
//! run with `--fault-injection` through its admin port (`POST
//! /faults/engine`, [`Engine::inject_failure`](crate::engine::Engine::inject_failure)).
//! An injected failure is returned where RocksDB's own would be (a flush's
//! or the periodic syncer's WAL fsync, a write's WAL write), as the I/O
//! error a failed fsync is, so it takes the path a real one takes: the
//! latch, the failed-sync marker, `Cluster::serving` and the gossip's
//! not-ready bit all react as in production.
//!
//! Must not decide which failures latch (`error.rs` does, by kind), nor be
//! reachable on a node started without `--fault-injection` (the admin
//! route refuses first).

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};

use rocksdb::ErrorKind;

use super::error;
use crate::engine::{EngineError, InjectedFailure};

/// The failures in force: each, once set, fails every later call it
/// names until [`InjectedFailure::Healed`] (a latch already set stays).
#[derive(Debug, Default)]
pub(super) struct Injected {
    /// WAL fsyncs: a flush's and the periodic syncer's.
    syncs: AtomicBool,
    /// Writes' WAL writes (or, under `sync`, their group-commit fsyncs).
    writes: AtomicBool,
}

impl Injected {
    /// Puts `failure` in force.
    pub(super) fn set(&self, failure: InjectedFailure) {
        match failure {
            InjectedFailure::Syncs => self.syncs.store(true, SeqCst),
            InjectedFailure::Writes => self.writes.store(true, SeqCst),
            InjectedFailure::Healed => {
                self.syncs.store(false, SeqCst);
                self.writes.store(false, SeqCst);
            }
        }
    }

    /// The failure a WAL fsync answers now, if one is injected.
    pub(super) fn sync_failure(&self) -> Option<EngineError> {
        (self.syncs.load(SeqCst)).then(|| std::io::Error::other("injected fsync failure").into())
    }

    /// The failure a write answers now, if one is injected: RocksDB's
    /// `IOError`, as a failed WAL write or group-commit fsync answers.
    pub(super) fn write_failure(&self) -> Option<EngineError> {
        (self.writes.load(SeqCst))
            .then(|| error::classify(ErrorKind::IOError, "injected WAL write failure".into()))
    }
}
