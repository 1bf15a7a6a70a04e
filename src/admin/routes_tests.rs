//! `GET /metrics` as the route serves it: a peer's clock-offset gauge
//! only while the peer is a member (review-clock34 L3, through the route:
//! review-clock35 L1 c).

use http_body_util::BodyExt;

use super::*;
use crate::security::auth::peer_clocks::OFFSET_METRIC;

async fn body(r: Response) -> String {
    let bytes = r.into_body().collect().await.expect("body").to_bytes();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Fails if the route stops filtering (by reading: `members_only` is then
/// never called, and the removed peer's series shows).
#[tokio::test]
async fn metrics_show_the_clock_offset_of_members_only() {
    let rec = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    metrics::with_local_recorder(&rec, || {
        for peer in ["dc1-n2", "gone-n9"] {
            metrics::gauge!(OFFSET_METRIC, "peer" => peer).set(1.5);
        }
    });
    let seed = crate::layout::Layout::seed(&crate::topology::Topology::dev());
    let cluster = crate::view::Cluster::new(seed, "dc1-n1", None).expect("view");
    let admin = Admin {
        node_id: "dc1-n1".into(),
        metrics: rec.handle(),
        faults: Arc::new(Faults::new(false)),
        repair: None,
        cluster: Some(cluster),
        control: None,
        guard: Guard::open(),
        spawner: crate::tasks::Spawner::detached(),
        engine: None,
    };
    let shown = body(metrics(State(admin.clone())).await).await;
    let member = format!("{OFFSET_METRIC}{{peer=\"dc1-n2\"}} 1.5");
    assert!(shown.contains(&member), "{shown}");
    assert!(!shown.contains("gone-n9"), "{shown}");
    // A tool (no cluster view) shows every series.
    let tool = Admin {
        cluster: None,
        ..admin
    };
    assert!(body(metrics(State(tool)).await).await.contains("gone-n9"));
}
