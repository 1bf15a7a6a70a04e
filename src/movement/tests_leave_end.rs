//! The end of a leave that became a removal (audit11 D4): the leaver hands
//! what it queued over (waiting for the removal to make it Removed, when
//! its records count and its queues seal), then ends with the removal.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::{after_removal, Queues};
use crate::layout::Layout;
use crate::movement::leave::{still_leaving, LeaveError};
use crate::view::Cluster;

/// Queues holding `left` entries, sealed as `Hints` seals them: when
/// nothing is left and the node is out of the cluster.
struct Fake {
    left: AtomicU64,
    sealed: AtomicBool,
    cluster: Cluster,
}

impl Queues for Fake {
    async fn seal_if_handed_over(&self) -> u64 {
        let left = self.left.load(Ordering::SeqCst);
        if left == 0 && self.cluster.current().has_left() {
            self.sealed.store(true, Ordering::SeqCst);
        }
        left
    }
    fn left_per_queue(&self) -> Vec<(String, u64)> {
        vec![("node:a".into(), self.left.load(Ordering::SeqCst))]
    }
}

/// dc1 = a, b, c, d (rf 3), dc2 = x: `d` leaving, then its leave turned
/// into a removal (in progress), then the removal finished (Removed).
fn layouts() -> [Layout; 3] {
    let topo = crate::topology::testing::four_and_one();
    let parsed = crate::topology::Topology::parse("t.yaml", &topo).expect("parses");
    let leaving = Layout::seed(&parsed).begin_leave("d").expect("leave");
    let removing = crate::movement::remove::begin(&leaving, "d", &|_| false).expect("removal");
    let removed = removing.finish_remove("d").expect("finish");
    [leaving, removing, removed]
}

#[tokio::test(start_paused = true)]
async fn a_leaver_turned_into_a_removal_hands_its_queues_over_then_ends_removed() {
    let [leaving, removing, removed] = layouts();
    let cluster = Cluster::new(leaving, "d", None).expect("cluster");
    cluster.install(removing).expect("install");
    let err = still_leaving(&cluster.current().layout, "d").unwrap_err();
    let queues = Arc::new(Fake {
        left: AtomicU64::new(2),
        sealed: AtomicBool::new(false),
        cluster: cluster.clone(),
    });
    let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let end = tokio::spawn({
        let (queues, cluster, seen) = (queues.clone(), cluster.clone(), seen.clone());
        async move {
            let report = |p: &str, d: String| seen.lock().push((p.to_string(), d));
            after_removal(&*queues, &cluster, err, &report).await
        }
    });
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(!end.is_finished(), "two entries still queued");
    let last = seen.lock().last().cloned().expect("a status");
    assert_eq!(last.0, "draining");
    queues.left.store(0, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(!end.is_finished(), "the removal is still in progress");
    let last = seen.lock().last().cloned().expect("a status");
    assert!(last.1.contains("removal of d"), "{last:?}");
    cluster.install(removed).expect("install");
    let err = tokio::time::timeout(Duration::from_secs(5), end)
        .await
        .expect("ends once Removed")
        .expect("no panic");
    assert!(matches!(err, LeaveError::Removed(_)), "{err}");
    assert!(
        queues.sealed.load(Ordering::SeqCst),
        "handed over and sealed"
    );
    let last = seen.lock().last().cloned().expect("a status");
    assert_eq!(last.0, "failed");
    assert!(last.1.contains("removenode d"), "{last:?}");
}
