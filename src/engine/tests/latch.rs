//! A failed fsync is latched: once one failed, the engine refuses every
//! write and never answers a flush `Ok` again (review-layout33 M1,
//! review-me33 M1).

use super::{fresh, open, put};
use crate::engine::{Durability, Engine, EngineError, WriteBatch};

/// review-layout33 M1: a failed explicit flush is latched like the
/// periodic syncer's failure: every later write is refused, whatever the
/// durability, so nothing written after an unflushed batch can become
/// durable on top of it. Fails before: the write after the failed flush
/// was accepted.
#[test]
fn a_failed_flush_refuses_every_later_write() {
    for durability in [
        Durability::Sync,
        Durability::Periodic {
            interval_ms: 60_000,
        },
        Durability::None,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let rocks = open(dir.path(), |o| o.durability = durability);
        put(&rocks, "ks", b"before", b"v");
        assert!(!rocks.stats().expect("stats").writes_refused);
        rocks.fail_flushes();
        let failed = rocks.flush();
        assert!(
            matches!(failed, Err(EngineError::SyncFailed(_))),
            "{failed:?}"
        );
        let mut b = WriteBatch::new();
        b.put_versions("ks", b"after", &fresh(1, b"v"));
        match rocks.write(b) {
            Err(EngineError::SyncFailed(e)) => assert!(e.contains("injected"), "{e}"),
            other => panic!("{durability:?}: want SyncFailed, got {other:?}"),
        }
        assert!(
            rocks.sync_failure_marked().unwrap(),
            "marked for the next start"
        );
        let read = rocks.get_versions("ks", b"after").expect("reads");
        assert!(read.is_none(), "{durability:?}: nothing written after it");
        assert!(
            rocks.stats().expect("stats").writes_refused,
            "the gauge's figure"
        );
        rocks.heal_flushes();
        let again = rocks.flush();
        assert!(
            matches!(again, Err(EngineError::SyncFailed(_))),
            "{again:?}: never Ok again"
        );
    }
}

/// review-tidy34 M2: a write whose WAL write or group-commit fsync fails
/// (RocksDB's `IOError`, injected) is latched as a failed flush is:
/// `writes_refused` is `Some`, every later write and flush is refused, and
/// the directory is marked for the next start, which a restart keeps
/// until a start removes it (M3). Under `Sync` through `write`, under
/// `Periodic` through `write_unless_stalled`. Fails before (by reading):
/// the write failed `Io`, nothing was latched and later writes went on.
#[test]
fn a_write_whose_wal_sync_fails_refuses_every_later_write() {
    let periodic = Durability::Periodic {
        interval_ms: 60_000,
    };
    for durability in [Durability::Sync, periodic] {
        let dir = tempfile::tempdir().unwrap();
        let rocks = open(dir.path(), |o| o.durability = durability);
        put(&rocks, "ks", b"before", b"v");
        assert!(rocks.writes_refused().is_none());
        assert!(!rocks.sync_failure_marked().unwrap());
        rocks.fail_writes();
        let mut b = WriteBatch::new();
        b.put_versions("ks", b"failed", &fresh(1, b"v"));
        let failed = match durability {
            Durability::Sync => rocks.write(b),
            _ => rocks.write_unless_stalled(&b).map(|_| ()),
        };
        match failed {
            Err(EngineError::SyncFailed(e)) => assert!(e.contains("injected WAL write"), "{e}"),
            other => panic!("{durability:?}: want SyncFailed, got {other:?}"),
        }
        let refused = rocks.writes_refused().expect("latched");
        assert!(refused.contains("injected WAL write"), "{refused}");
        assert!(rocks.stats().expect("stats").writes_refused, "the gauge");
        let flushed = rocks.flush();
        assert!(
            matches!(flushed, Err(EngineError::SyncFailed(_))),
            "{flushed:?}: no flush answers Ok after it"
        );
        assert!(rocks.sync_failure_marked().unwrap(), "marked");
        rocks.clear_sync_failure_mark().unwrap();
        assert!(rocks.sync_failure_marked().unwrap(), "kept while latched");
        drop(rocks);
        let reopened = open(dir.path(), |o| o.durability = durability);
        assert!(
            reopened.writes_refused().is_none(),
            "a restart writes again"
        );
        put(&reopened, "ks", b"after", b"v");
        assert!(reopened.sync_failure_marked().unwrap(), "the mark survives");
        reopened.clear_sync_failure_mark().unwrap();
        assert!(!reopened.sync_failure_marked().unwrap(), "removed");
    }
}
