//! Writes RocksDB stalls do not stop the async runtime (review M2), and a
//! read that sets quarantined operands aside waits for no fsync (review L1).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use super::quarantine::{inject_garbage, kept_aside, overwrite_with};
use super::{fresh, open};
use crate::engine::{Durability, Engine, RocksEngine, WriteBatch};

/// A 1 KiB merge of `key`.
fn kib(key: &str) -> WriteBatch {
    let mut b = WriteBatch::new();
    b.merge_versions("ks", key.as_bytes(), &fresh(1, &[7u8; 1024]));
    b
}

/// `rocks` with flushes paused and written until RocksDB stalls writes
/// (too many immutable memtables).
fn stall(rocks: &RocksEngine) {
    rocks.pause_background_work();
    for i in 0..100_000 {
        if !rocks
            .write_without_waiting(kib(&format!("fill-{i}")))
            .unwrap()
        {
            return;
        }
    }
    panic!("writes never stalled with flushes paused");
}

/// On a runtime with one worker, a write RocksDB stalls must not stop the
/// worker: a timer and a read spawned after it still run, and the write
/// lands once flushes resume.
#[test]
fn a_stalled_write_leaves_the_runtime_running() {
    let dir = tempfile::tempdir().unwrap();
    let rocks = Arc::new(open(dir.path(), |o| o.write_buffer_bytes = 64 << 10));
    rocks.write(kib("readable")).unwrap();
    stall(&rocks);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (started, writing) = mpsc::channel();
    let landed = Arc::new(AtomicBool::new(false));
    let writer = rt.spawn({
        let (rocks, landed) = (rocks.clone(), landed.clone());
        async move {
            started.send(()).unwrap();
            let written = rocks.write(kib("stalled"));
            landed.store(true, Ordering::SeqCst);
            written
        }
    });
    writing.recv_timeout(Duration::from_secs(10)).unwrap();
    std::thread::sleep(Duration::from_millis(200)); // into the stall
    let (tick, ticked) = mpsc::channel();
    rt.spawn({
        let rocks = rocks.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            let read = rocks.get_versions("ks", b"readable").unwrap();
            tick.send(read.is_some()).unwrap();
        }
    });
    let ran = ticked.recv_timeout(Duration::from_secs(10));
    let stalled_meanwhile = !landed.load(Ordering::SeqCst);
    rocks.continue_background_work();

    assert_eq!(ran, Ok(true), "a timer and a read ran during the stall");
    assert!(stalled_meanwhile, "the write waited for the flush");
    rt.block_on(writer)
        .unwrap()
        .expect("the stalled write lands");
    assert!(rocks.get_versions("ks", b"stalled").unwrap().is_some());
}

/// A read under `Sync` that moves an undecodable operand aside writes the
/// move without an fsync of its own: reads run on async workers.
#[test]
fn setting_operands_aside_waits_for_no_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let rocks = open(dir.path(), |o| {
        o.durability = Durability::Sync;
        o.statistics = true;
    });
    overwrite_with(&rocks, b"bad", &fresh(1, b"first"));
    inject_garbage(&rocks, b"bad");
    rocks.compact_data().unwrap();
    let syncs = rocks.wal_syncs().unwrap();

    let read = rocks.get_versions("ks", b"bad").unwrap();

    assert!(read.is_some(), "the decodable write reads");
    assert_eq!(
        kept_aside(&rocks, b"bad").len(),
        1,
        "the operand was set aside"
    );
    assert_eq!(
        rocks.wal_syncs().unwrap(),
        syncs,
        "no fsync on the read path"
    );
    rocks.write(kib("after")).unwrap();
    assert!(
        rocks.wal_syncs().unwrap() > syncs,
        "Sync writes still fsync"
    );
}
