//! The coordinator's stale-view retry, end to end: a coordinator left on
//! an older layout (fault injection holds the layouts gossip offers it)
//! plans a write on it; the replicas, on the newer layout (a decommission
//! began: the key has a pending replica), refuse it once as stale; the
//! coordinator fetches the newer layout, plans again and the write is
//! acknowledged only once every target of the newer layout has it.

use crate::common::*;
use geokv::proto::v1::Consistency;
use geokv::view::ClusterView;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_refused_as_stale_is_planned_again_on_the_newer_view() {
    let c = Cluster::start(Spec {
        dcs: vec![("dc1", 4)],
        replication: vec![("dc1", 3)],
        extra_keyspaces: Vec::new(),
        gossip_interval_ms: 100,
        extra_args: Vec::new(),
    })
    .await;
    let (n1, n2) = (c.node("dc1-n1").clone(), c.node("dc1-n2").clone());
    admin(n1.admin_address, "POST", "/faults/hold-layouts")
        .await
        .expect("fault injection");
    let old = layout_at(n1.admin_address).await.expect("layout").version;
    admin(c.node("dc1-n4").admin_address, "POST", "/decommission")
        .await
        .expect("decommission begins");
    // n2 is on the leaving layout; n1 is held on the old one.
    let deadline = Instant::now() + Duration::from_secs(20);
    let newer = loop {
        let l = layout_at(n2.admin_address).await.expect("layout");
        if l.version > old && !l.movements.is_empty() {
            break l;
        }
        assert!(Instant::now() < deadline, "n2 never saw the leave");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        layout_at(n1.admin_address).await.unwrap().version,
        old,
        "n1 is held"
    );
    // A key n1 replicates (so it coordinates the write itself) with a
    // pending replica in the newer layout, which the old plan misses.
    let view = ClusterView::derive(newer, "dc1-n1").expect("view");
    let (key, pending) = (0..10_000)
        .map(|i| format!("stale-{i}"))
        .find_map(|k| {
            let token = geokv::ring::token_of(k.as_bytes());
            let owners = view.ring.replicas("default", k.as_bytes()).ok()?;
            let mine = owners.contains(view.me_idx());
            let p = view.pending.for_token("default", token);
            let p: Vec<String> = p
                .iter()
                .flat_map(|d| d.nodes.iter())
                .map(|&n| view.ring.node(n).id.clone())
                .collect();
            (mine && !p.is_empty()).then_some((k, p))
        })
        .expect("a moving key n1 replicates");
    let before = refusals(&c).await;
    let mut client = c.client("dc1-n1").await;
    put(&mut client, &key, "v", Vec::new(), Consistency::All)
        .await
        .expect("the write succeeds on the newer view");
    assert!(
        refusals(&c).await > before,
        "the replicas refused the old plan"
    );
    assert!(
        layout_at(n1.admin_address).await.unwrap().version > old,
        "n1 installed the refusing replica's layout"
    );
    // ALL on the newer view: every owner and the pending replica have it.
    let reader = c.replica_reader();
    let owners = view.ring.replicas("default", key.as_bytes()).unwrap();
    let ids = owners.all().map(|n| view.ring.node(n).id.clone());
    for id in ids.chain(pending) {
        let held = reader.holds(c.node(&id), "default", &key).await;
        assert_eq!(held, Some(vec!["v".to_string()]), "{id}");
    }
}

/// Stale-view refusals counted by the replicas other than n1.
async fn refusals(c: &Cluster) -> f64 {
    let mut sum = 0.0;
    for id in ["dc1-n2", "dc1-n3", "dc1-n4"] {
        sum += c.metric(id, "geokv_stale_view_refusals_total", "").await;
    }
    sum
}
