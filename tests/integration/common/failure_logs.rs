//! The nodes' logs of a failed test, kept: when a [`super::Cluster`] is
//! dropped while its test panics, every `<cluster dir>/<node>/node.log`
//! (joiners' too) is copied to
//! `<target dir>/integration-failures/<test name>/<node>.log` before the
//! cluster's temporary directory goes, and that folder is printed with the
//! test's output; `scripts/test` prints the last lines of each kept log
//! when the integration binary fails.
//!
//! Must not: cost a passing test anything (nothing is read or written
//! unless the test is panicking), or turn a test's failure into another
//! one (a log that cannot be kept is said, never panicked on).

use std::path::{Path, PathBuf};

/// Where the logs of failed tests go: `<target dir>/integration-failures`
/// (the target directory is the one this binary's `geokv` was built in).
pub fn failures_root() -> PathBuf {
    // `<target dir>/<profile>/geokv`.
    let exe = Path::new(env!("CARGO_BIN_EXE_geokv"));
    let target = exe
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("."));
    target.join("integration-failures")
}

/// Called as a cluster is dropped (its nodes already stopped): when the
/// current test is panicking, keeps its nodes' logs under
/// [`failures_root`] and says where, in the test's output.
pub fn keep_if_failing(cluster_dir: &Path) {
    match keep_if_panicking(cluster_dir, &failures_root()) {
        Some(Ok(kept)) => eprintln!(
            "the nodes' logs of this failed test are kept in {}",
            kept.display()
        ),
        Some(Err(e)) => eprintln!("the nodes' logs of this failed test were not kept: {e}"),
        None => {}
    }
}

/// [`keep_logs`] into `root` when this thread is panicking (a failed
/// test), named after the thread (libtest names it after the test).
fn keep_if_panicking(cluster_dir: &Path, root: &Path) -> Option<std::io::Result<PathBuf>> {
    if !std::thread::panicking() {
        return None;
    }
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("unnamed-test").replace('/', "_");
    Some(keep_logs(cluster_dir, &root.join(test)))
}

/// Copies each `<cluster_dir>/<node>/node.log` to `<into>/<node>.log`,
/// `into` emptied first (a test's earlier failure is replaced); `into`.
fn keep_logs(cluster_dir: &Path, into: &Path) -> std::io::Result<PathBuf> {
    if into.exists() {
        std::fs::remove_dir_all(into)?;
    }
    std::fs::create_dir_all(into)?;
    for entry in std::fs::read_dir(cluster_dir)? {
        let entry = entry?;
        let log = entry.path().join("node.log");
        if log.is_file() {
            let name = format!("{}.log", entry.file_name().to_string_lossy());
            std::fs::copy(&log, into.join(name))?;
        }
    }
    Ok(into.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drops like a cluster: keeps the logs if its thread is panicking.
    struct Dropped<'a> {
        cluster: &'a Path,
        root: &'a Path,
        kept: &'a std::sync::Mutex<Option<std::io::Result<PathBuf>>>,
    }

    impl Drop for Dropped<'_> {
        fn drop(&mut self) {
            *self.kept.lock().unwrap() = keep_if_panicking(self.cluster, self.root);
        }
    }

    /// Runs `body` on a thread named `test` with a [`Dropped`] alive; what
    /// the drop kept.
    fn run_as(test: &str, cluster: &Path, root: &Path, body: fn()) -> Option<PathBuf> {
        let kept = std::sync::Mutex::new(None);
        std::thread::scope(|s| {
            let t = std::thread::Builder::new().name(test.to_string());
            let (kept, cluster, root) = (&kept, cluster, root);
            let run = t.spawn_scoped(s, move || {
                let _c = Dropped {
                    cluster,
                    root,
                    kept,
                };
                body();
            });
            let _ = run.expect("spawn").join();
        });
        let kept = kept.into_inner().unwrap();
        kept.map(|r| r.expect("kept"))
    }

    /// A failed test's node logs (joiners' included) are kept under its
    /// name; a passing test keeps nothing.
    #[test]
    fn a_failed_tests_node_logs_are_kept_under_its_name() {
        let cluster = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        for (dir, text) in [("dc1-n1", "one\n"), ("joiner", "two\n")] {
            std::fs::create_dir_all(cluster.path().join(dir)).unwrap();
            std::fs::write(cluster.path().join(dir).join("node.log"), text).unwrap();
        }
        std::fs::create_dir_all(cluster.path().join("certs")).unwrap();
        let passed = run_as("suite::passes", cluster.path(), root.path(), || {});
        assert_eq!(passed, None);
        assert!(!root.path().join("suite::passes").exists());
        let failed = run_as("suite::fails", cluster.path(), root.path(), || {
            panic!("the test fails (on purpose)")
        });
        let want = root.path().join("suite::fails");
        assert_eq!(failed.as_deref(), Some(want.as_path()));
        let read = |f: &str| std::fs::read_to_string(want.join(f)).unwrap();
        assert_eq!(
            (read("dc1-n1.log"), read("joiner.log")),
            ("one\n".into(), "two\n".into())
        );
        let mut kept: Vec<_> = std::fs::read_dir(&want).unwrap().flatten().collect();
        kept.sort_by_key(|e| e.file_name());
        assert_eq!(kept.len(), 2, "only node logs: {kept:?}");
    }
}
