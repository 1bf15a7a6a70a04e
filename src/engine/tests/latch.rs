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
