//! The admin port's routes and handlers (axum). [`router`] is the one route
//! table: add an endpoint there. Queries are decoded by axum's `Query`
//! (percent-decoding included: `target=dc%202` is "dc 2"); a bad query is a
//! 400, an unknown path a 404, a wrong method a 405. Every route sits
//! behind [`guard::require_admin`] (the admin credential on a node with
//! `--auth`). Must not serve client data.
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::auth_routes;
use super::guard::{self, Guard};
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Deserialize;
use std::sync::Arc;

use crate::repair::Repair;
use crate::transport::faults::Faults;

/// The Prometheus text exposition format's media type.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
const JSON: &str = "application/json";

/// What the handlers share.
#[derive(Clone)]
pub struct Admin {
    pub node_id: Arc<str>,
    pub metrics: PrometheusHandle,
    pub faults: Arc<Faults>,
    pub repair: Option<Arc<Repair>>,
    /// The node's cluster view (`/layout`, `/keyspaces`); `None` on tools.
    pub cluster: Option<crate::view::Cluster>,
    /// Decommission and cleanup (`admin::movement`); `None` on tools.
    pub control: Option<Arc<crate::movement::Control>>,
    /// The node's storage (`POST /faults/engine`); `None` on tools.
    pub engine: Option<Arc<dyn crate::engine::Engine>>,
    /// Who may use the port (and the auth state of `/auth/*`).
    pub guard: Guard,
    /// Where a job started here runs (`repair_job`).
    pub spawner: crate::tasks::Spawner,
}

/// Every endpoint of the admin port; the status page reads `history`.
pub fn router(admin: Admin, history: Arc<super::status_history::History>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/faults", get(faults))
        .route("/faults/{action}", post(fault))
        .route("/repair", post(repair))
        .route("/layout", get(layout))
        .route("/movement", get(movement))
        .route("/removenode", post(super::removenode::removenode))
        .route("/keyspaces", post(create_keyspace))
        .route(
            "/decommission",
            post(super::movement::decommission).get(super::movement::decommission_status),
        )
        .route(
            "/decommission/cancel",
            post(super::movement::cancel_decommission),
        )
        .route("/cleanup", post(super::movement::cleanup))
        .route(
            "/stream-throughput",
            get(super::movement::stream_throughput).put(super::movement::set_stream_throughput),
        )
        .route(
            "/auth/roles",
            get(auth_routes::list)
                .post(auth_routes::create)
                .delete(auth_routes::drop),
        )
        .route("/auth/grant", post(auth_routes::grant))
        .route("/auth/revoke", post(auth_routes::revoke))
        .merge(super::status_page::routes(history))
        .merge(super::repair_job::routes())
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
        .layer(axum::middleware::from_fn_with_state(
            admin.guard.clone(),
            guard::require_admin,
        ))
        .with_state(admin)
}

/// `GET /health`, a readiness probe: "ok ID", or 503 naming why this node
/// is not ready (`Cluster::serving`: its engine refuses writes after a
/// failed fsync, it has left, a peer started from another topology file);
/// the process stays up either way.
async fn health(State(a): State<Admin>) -> Response {
    if let Some(Err(why)) = a.cluster.as_ref().map(|c| c.serving()) {
        return (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")).into_response();
    }
    format!("ok {}\n", a.node_id).into_response()
}

/// `GET /metrics`; a peer's clock offset only while it is a member
/// (review-clock34 L3: the series of a removed peer is left out).
async fn metrics(State(a): State<Admin>) -> Response {
    let mut text = a.metrics.render();
    if let Some(cluster) = &a.cluster {
        let view = cluster.current();
        let members: Vec<String> = view.members().iter().map(|n| n.id.to_string()).collect();
        text = crate::security::auth::peer_clocks::members_only(&text, &members);
    }
    ([(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)], text).into_response()
}

async fn faults(State(a): State<Admin>) -> Response {
    ([(header::CONTENT_TYPE, JSON)], a.faults.to_json()).into_response()
}

/// Parameters of `POST /faults/{action}`.
#[derive(Debug, Deserialize)]
struct FaultQuery {
    /// A node id or datacenter name (`*` heals all).
    target: Option<String>,
    /// Datacenter and one-way delay of `delay`.
    dc: Option<String>,
    ms: Option<u64>,
    /// What `engine` fails: `sync`, `write`, or `none` (heals both).
    fail: Option<String>,
}

/// `POST /faults/engine?fail=...`: puts the failure in force in the node's
/// engine, which answers it where the real one would come from (the
/// latch, its marker and `/health` react as on a real failed fsync).
fn fail_engine(a: &Admin, fail: &str) -> bool {
    use crate::engine::InjectedFailure;
    let failure = match fail {
        "sync" => InjectedFailure::Syncs,
        "write" => InjectedFailure::Writes,
        "none" => InjectedFailure::Healed,
        _ => return false,
    };
    (a.engine.as_ref()).is_some_and(|e| e.inject_failure(failure))
}

async fn fault(
    State(a): State<Admin>,
    Path(action): Path<String>,
    Query(q): Query<FaultQuery>,
) -> Response {
    if !a.faults.enabled() {
        return (
            StatusCode::FORBIDDEN,
            "fault injection is disabled on this node (start it with --fault-injection)\n",
        )
            .into_response();
    }
    let ok = match (action.as_str(), q) {
        (
            "cut",
            FaultQuery {
                target: Some(t), ..
            },
        ) => a.faults.cut(&t),
        (
            "heal",
            FaultQuery {
                target: Some(t), ..
            },
        ) => a.faults.heal(&t),
        (
            "delay",
            FaultQuery {
                dc: Some(dc),
                ms: Some(ms),
                ..
            },
        ) => a.faults.set_delay(&dc, ms),
        (
            "engine",
            FaultQuery {
                fail: Some(fail), ..
            },
        ) => fail_engine(&a, &fail),
        ("crash-after-write", _) => a.faults.arm_crash_after_write(),
        ("stall-next-write", _) => a.faults.arm_stall_next_write(),
        ("hold-layouts", _) => a.faults.hold_layouts(true),
        ("take-layouts", _) => a.faults.hold_layouts(false),
        ("refuse-adoption", _) => a.faults.refuse_adoption(true),
        ("accept-adoption", _) => a.faults.refuse_adoption(false),
        ("cut" | "heal" | "delay" | "engine", _) => false,
        _ => return (StatusCode::NOT_FOUND, "unknown fault\n").into_response(),
    };
    if ok {
        faults(State(a)).await
    } else {
        (StatusCode::BAD_REQUEST, "missing or bad parameters\n").into_response()
    }
}

/// Parameters of `POST /repair`.
#[derive(Debug, Deserialize)]
struct RepairQuery {
    keyspace: Option<String>,
    /// Only among this datacenter's replicas (this node must be in it).
    dc: Option<String>,
}

/// `POST /repair`: runs a sweep (waiting for one in progress) and answers
/// with its summary.
async fn repair(State(a): State<Admin>, Query(q): Query<RepairQuery>) -> Response {
    let Some(repair) = &a.repair else {
        return (
            StatusCode::NOT_FOUND,
            "repair is not running on this node\n",
        )
            .into_response();
    };
    match repair
        .sweep_in(q.keyspace.as_deref(), q.dc.as_deref())
        .await
    {
        Ok(s) => (
            [(header::CONTENT_TYPE, JSON)],
            serde_json::to_string(&s).unwrap_or_default() + "\n",
        )
            .into_response(),
        Err(
            e @ (crate::repair::RepairError::Ring(_) | crate::repair::RepairError::OtherDc { .. }),
        ) => (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

/// `GET /layout`: the cluster layout in force, as JSON (see `view::http`).
async fn layout(State(a): State<Admin>) -> Response {
    let Some(cluster) = &a.cluster else {
        return (StatusCode::NOT_FOUND, "no cluster on this port\n").into_response();
    };
    let body = crate::view::http::layout_json(cluster);
    ([(header::CONTENT_TYPE, JSON)], body).into_response()
}

/// `GET /movement`: the movements in progress in the layout (per
/// datacenter), the one this node streams for, with its progress, and
/// the steps it holds back, by movement, with why (`held`).
async fn movement(State(a): State<Admin>) -> Response {
    type ByDc = std::collections::BTreeMap<String, String>;
    let (version, movements, phases) = match &a.cluster {
        Some(c) => {
            let view = c.current();
            let l = &view.layout;
            let m: ByDc = (l.movements.iter())
                .map(|(dc, m)| (dc.clone(), m.to_string()))
                .collect();
            let p: ByDc = (l.movements.keys())
                .map(|dc| (dc.clone(), crate::movement::progress::phase(l, dc).into()))
                .collect();
            (Some(view.version()), m, p)
        }
        None => (None, ByDc::new(), ByDc::new()),
    };
    let board = crate::movement::progress::board(&a.node_id);
    let body = serde_json::json!({
        "node": &*a.node_id,
        "layout_version": version,
        "movements": movements,
        "phases": phases,
        "streaming": board.report(),
        "held": board.held(),
    });
    ([(header::CONTENT_TYPE, JSON)], body.to_string() + "\n").into_response()
}

/// Parameters of `POST /keyspaces`.
#[derive(Debug, Deserialize)]
struct KeyspaceQuery {
    name: Option<String>,
    /// Replication per datacenter: `dc1:3,dc2:2`.
    rf: Option<String>,
}

/// `POST /keyspaces?name=K&rf=dc1:3,dc2:2`: a new keyspace as layout
/// version + 1 (CREATE KEYSPACE).
async fn create_keyspace(State(a): State<Admin>, Query(q): Query<KeyspaceQuery>) -> Response {
    let Some(cluster) = &a.cluster else {
        return (StatusCode::NOT_FOUND, "no cluster on this port\n").into_response();
    };
    let (name, rf) = (q.name.unwrap_or_default(), q.rf.unwrap_or_default());
    match crate::view::http::create_keyspace(cluster, &name, &rf).await {
        Ok(v) => (
            [(header::CONTENT_TYPE, JSON)],
            format!("{{\"version\":{v}}}\n"),
        )
            .into_response(),
        Err(e) => (
            StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST),
            [(crate::proto::APPLIED_METADATA, e.applied())],
            format!("{e}\n"),
        )
            .into_response(),
    }
}

#[cfg(test)]
#[path = "routes_tests.rs"]
mod tests;
