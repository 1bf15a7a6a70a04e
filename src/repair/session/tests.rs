//! A repair session's merges carry the pinned view: this node's replica
//! refuses a page decided on a view it has moved past for keys it no
//! longer replicates (issue 11).

use super::*;
use crate::engine::{Engine, Limits, MemoryEngine};
use crate::error::GeokvError;
use crate::layout::Layout;
use crate::topology::Topology;
use crate::transport::faults::Faults;
use crate::version::{ActorId, CausalContext, SiblingSet};

/// A session of dc1-n1 on the dev seed, whose engine is `engine`.
fn session(engine: Arc<dyn Engine>, cluster: Cluster) -> SessionIo {
    let me = cluster.current().me().expect("a member").clone();
    SessionIo::new(
        cluster,
        Arc::new(Replica::new(engine, "dc1-n1", 64)),
        Arc::new(Peers::new(
            me,
            Arc::new(Faults::new(false)),
            &crate::transport::tls::Tls::insecure(),
        )),
        SessionLimits::default(),
    )
}

fn dc1_owners(view: &ClusterView, key: &[u8]) -> Vec<String> {
    let owners = view.ring.replicas("default", key).expect("keyspace");
    let dc1 = owners.in_dc("dc1").iter();
    dc1.map(|&n| view.ring.node(n).id.clone()).collect()
}

/// A pass pinned the seed view; dc1-new then joined (dc1-n1 loses some
/// keys to it). The pass's merges into this node apply where it still
/// replicates the key, and are refused, nothing applied, where it does
/// not (its cleanup drops those ranges: the copy would be left behind).
#[tokio::test]
async fn a_merge_decided_on_the_pinned_view_is_refused_here_where_the_key_moved_away() {
    let seed = Layout::seed(&Topology::dev());
    let joining = crate::layout::testing::dev_join(&seed, "dc1-new", "127.0.0.14");
    let joined = joining.finish_join("dc1-new").expect("finish");
    let engine: Arc<dyn Engine> = Arc::new(MemoryEngine::new(Limits::default()));
    let cluster = Cluster::new(seed, "dc1-n1", None).expect("view");
    let io = session(engine.clone(), cluster.clone());
    let _pinned = io.pin();
    let before = cluster.current();
    cluster.install(joined).expect("install");
    let after = cluster.current();
    let mut set = SiblingSet::new();
    set.update(ActorId(1), &CausalContext::new(), Some("v".into()), 1, 8)
        .expect("update");
    let me = "dc1-n1".to_string();
    let (mut moved, mut kept) = (0, 0);
    for k in 0..300u32 {
        let key = k.to_be_bytes().to_vec();
        if !dc1_owners(&before, &key).contains(&me) {
            continue;
        }
        let rows = vec![(key.clone(), set.clone())];
        let applied = io.apply(Side::Local, "default", rows).await;
        let merged = engine
            .get_versions("default", &key)
            .expect("read")
            .is_some();
        if dc1_owners(&after, &key).contains(&me) {
            kept += 1;
            assert!(applied.is_ok() && merged, "a key it keeps: {applied:?}");
        } else {
            moved += 1;
            assert!(!merged, "merged where the key moved away");
            let err = applied.expect_err("refused");
            assert!(
                matches!(err, RepairError::Apply(GeokvError::StaleView { .. })),
                "{err}"
            );
            assert!(
                err.is_retriable(),
                "the next pass repairs it in the newer view"
            );
        }
    }
    assert!(moved > 0 && kept > 0, "{moved} moved, {kept} kept");
}
