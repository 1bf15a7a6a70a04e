//! The live status page on the admin port: `GET /status` serves one
//! self-contained HTML file (`status.html`, embedded; plain JS, no build
//! step) that polls `GET /status.json` and draws what this node sees:
//! datacenters and racks with each node up or down (its failure
//! detector's verdict), state and ownership per keyspace; hint and stream
//! backlogs; replication lag per datacenter pair over the last ten
//! minutes; repair and movement progress; request rates and latency per
//! operation and consistency level.
//!
//! Owns the two routes, the JSON and the sampler filling [`History`]
//! (run inside the admin server's task, `admin::serve_on`, so it ends
//! with it). `/status.json` carries `Access-Control-Allow-Origin: *` so
//! one node's page can read the other datacenters' lag from their nodes.
//! Must not: change anything on the node.
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::{json, Value};

use super::exposition;
use super::routes::Admin;
use super::status_history::{self as history, History, Sample};
use crate::layout::Layout;

const PAGE: &str = include_str!("status.html");

/// The page's routes over `history` (filled by [`sample_loop`]), merged
/// into the admin router.
pub fn routes(history: Arc<History>) -> Router<Admin> {
    Router::new()
        .route("/", get(page))
        .route("/status", get(page))
        .route(
            "/status.json",
            get(move |State(a): State<Admin>| {
                let h = history.clone();
                async move { status_json(&a, &h) }
            }),
        )
}

async fn page() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE).into_response()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Samples into `history` every [`history::INTERVAL`], until dropped (it
/// runs beside the admin server, in its task).
pub async fn sample_loop(
    history: Arc<History>,
    metrics: PrometheusHandle,
    cluster: Option<crate::view::Cluster>,
) {
    let mut tick = tokio::time::interval(history::INTERVAL);
    loop {
        tick.tick().await;
        history.push(take(&metrics, cluster.as_ref()));
    }
}

fn take(metrics: &PrometheusHandle, cluster: Option<&crate::view::Cluster>) -> Sample {
    let layout = cluster.map(|c| c.current().layout.clone());
    let dc_of = |node: &str| {
        let l = layout.as_ref()?;
        l.node(node).map(|(dc, _, _)| dc.to_string())
    };
    history::sample(now_ms(), &exposition::parse(&metrics.render()), &dc_of)
}

fn status_json(a: &Admin, h: &History) -> Response {
    let mut samples = h.samples();
    // A fresh figure for "now", so rates cover the latest interval.
    let latest = take(&a.metrics, a.cluster.as_ref());
    let rates = samples
        .last()
        .map(|before| history::rates(before, &latest))
        .unwrap_or_default();
    samples.push(latest.clone());
    let layout = a.cluster.as_ref().map(|c| c.current().layout.clone());
    let board = crate::movement::progress::board(&a.node_id);
    let is_up = board.liveness();
    let me = &*a.node_id;
    let up = |id: &str| id == me || is_up.as_ref().is_some_and(|f| f(id));
    let body = json!({
        "node": me,
        "dc": layout.as_ref().and_then(|l| l.node(me)).map(|(dc, _, _)| dc.to_string()),
        "generated_ms": latest.at_ms,
        "version": env!("CARGO_PKG_VERSION"),
        "load_bytes": latest.load_bytes,
        "hint_backlog": latest.backlog.iter().map(|b| b.entries).sum::<f64>(),
        "detector_running": is_up.is_some(),
        "cluster": layout.as_ref().map(|l| l.cluster_name.clone()),
        "layout_version": layout.as_ref().map(|l| l.version),
        "nodes": layout.as_ref().map_or(Value::Null, |l| nodes(l, &up)),
        "keyspaces": layout.as_ref().map(|l| l.keyspaces.keys().cloned().collect::<Vec<_>>()),
        "backlog": latest.backlog,
        "lag": {
            "interval_secs": history::INTERVAL.as_secs(),
            "series": history::lag_series(&samples),
        },
        "repair": latest.repair,
        "movements": layout.as_ref().map(|l| l.movements.iter()
            .map(|(dc, m)| (dc.clone(), m.to_string()))
            .collect::<std::collections::BTreeMap<_, _>>()),
        "streaming": board.report(),
        "requests": rates,
    });
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body.to_string() + "\n",
    )
        .into_response()
}

/// Every node of the layout with its place, state, up/down and effective
/// ownership per keyspace.
fn nodes(layout: &Layout, up: &dyn Fn(&str) -> bool) -> Value {
    let mut owned: std::collections::BTreeMap<String, serde_json::Map<String, Value>> =
        Default::default();
    for ks in layout.keyspaces.keys() {
        for o in crate::view::http::ownership(layout, ks) {
            owned
                .entry(o.id)
                .or_default()
                .insert(ks.clone(), json!(o.ownership_pct));
        }
    }
    layout
        .nodes()
        .map(|(dc, rack, n)| {
            json!({
                "id": n.id,
                "dc": dc,
                "rack": rack,
                "state": n.state,
                "tokens": n.tokens.len(),
                "admin_address": n.admin_address.to_string(),
                "up": up(&n.id),
                "ownership": owned.remove(&n.id).unwrap_or_default(),
            })
        })
        .collect()
}
