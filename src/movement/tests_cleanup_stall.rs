//! Cleanup against a RocksDB write stall (review of c59b952, Medium): the
//! deletes commit under the view's install lock held exclusively, which
//! every replica apply and every install waits on. A stall inside that
//! section must not keep the lock: the deletes are tried without waiting,
//! and on a stall the lock is let go, the stall waited out, the check made
//! again and the deletes retried.

use std::sync::{mpsc, Arc};
use std::time::Duration;

use super::cleanup::tests::{held, join_d, write_keys};
use super::cleanup::{apply_if_current, plan, CleanupError};
use crate::engine::{EngineOptions, RocksEngine};
use crate::layout::Layout;
use crate::view::Cluster;

/// The layout after `d` joined (`a` lost ranges to it).
fn joined() -> Layout {
    let [_, _, done] = join_d();
    done
}

/// A RocksDB engine with a 64 KiB memtable holding `n` keys of `ks`.
fn engine(dir: &std::path::Path, n: usize) -> (Arc<RocksEngine>, Vec<Vec<u8>>) {
    let opts = EngineOptions {
        block_cache_bytes: 8 << 20,
        write_buffer_bytes: 64 << 10,
        ..EngineOptions::default()
    };
    let rocks = Arc::new(RocksEngine::open(dir, opts).expect("open"));
    let keys = write_keys(&*rocks, n);
    (rocks, keys)
}

/// Runs `f` on its own thread: whether it finished within 5 s.
fn finishes(f: impl FnOnce() + Send + 'static) -> bool {
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        f();
        let _ = done.send(());
    });
    finished.recv_timeout(Duration::from_secs(5)).is_ok()
}

/// While cleanup's deletes wait out a write stall, a replica apply (which
/// takes the view lock for reading) and a view install (for writing) both
/// go ahead; the install changes the view, so once the stall clears the
/// cleanup checks again, finds the view changed and drops nothing.
#[test]
fn a_write_stall_during_cleanup_does_not_hold_the_view_lock() {
    let dir = tempfile::tempdir().unwrap();
    let (rocks, keys) = engine(dir.path(), 200);
    let done = joined();
    let cluster = Cluster::new(done.clone(), "a", None).expect("cluster");
    let view = cluster.current();
    let p = plan(&*rocks, &view.layout, "a").expect("plan");
    assert!(p.cleaned().keys > 0, "a has ranges to drop");
    rocks.stall_writes();

    let cleaner = std::thread::spawn({
        let (rocks, cluster) = (rocks.clone(), cluster.clone());
        move || apply_if_current(&*rocks, &cluster, &view, p)
    });
    std::thread::sleep(Duration::from_millis(300)); // into the stall
    let applied = finishes({
        let cluster = cluster.clone();
        move || cluster.with_current(|_| ())
    });
    let installed = applied
        && finishes({
            let cluster = cluster.clone();
            let next = done.begin_leave("d").expect("leave");
            move || {
                cluster.install(next).expect("install");
            }
        });
    let still_waiting = !cleaner.is_finished();
    rocks.continue_background_work();
    let r = cleaner.join().unwrap();

    assert!(applied, "a replica apply ran during the stall");
    assert!(installed, "a view install ran during the stall");
    assert!(still_waiting, "the cleanup waited for the stall");
    assert!(matches!(r, Err(CleanupError::ViewChanged { .. })), "{r:?}");
    assert_eq!(held(&*rocks, &keys), keys.len(), "nothing dropped");
}

/// With no view change, the cleanup commits once the stall clears.
#[test]
fn a_cleanup_that_waited_out_a_stall_commits_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let (rocks, keys) = engine(dir.path(), 200);
    let cluster = Cluster::new(joined(), "a", None).expect("cluster");
    let view = cluster.current();
    let p = plan(&*rocks, &view.layout, "a").expect("plan");
    rocks.stall_writes();
    let cleaner = std::thread::spawn({
        let (rocks, cluster) = (rocks.clone(), cluster.clone());
        move || apply_if_current(&*rocks, &cluster, &view, p)
    });
    std::thread::sleep(Duration::from_millis(300));
    let still_waiting = !cleaner.is_finished();
    rocks.continue_background_work();
    let cleaned = cleaner.join().unwrap().expect("cleanup");

    assert!(still_waiting, "the cleanup waited for the stall");
    assert!(cleaned.keys > 0);
    assert_eq!(held(&*rocks, &keys), keys.len() - cleaned.keys as usize);
}
