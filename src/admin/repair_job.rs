//! Repair as a background job on the admin port, for `geokv repair`'s
//! progress bar: `POST /repair/start[?keyspace=K][&dc=DC]` starts a sweep and
//! answers 202 at once (409 while one started here still runs);
//! `GET /repair/status` answers [`JobStatus`]: the state, ranges swept of
//! planned, and the summary once done. The blocking `POST /repair` stays.
//!
//! Owns the job record only; the sweep is `repair::Repair`'s, run in the
//! node's task set. Must not: run a sweep outside that set, or two at once
//! from here.
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::routes::Admin;
use crate::repair::Summary;

/// What `GET /repair/status` answers.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct JobStatus {
    /// `idle` (none started here), `running`, `done` or `failed`.
    pub state: String,
    pub keyspace: Option<String>,
    /// Ranges swept of those planned (the node's pass, also a periodic one).
    pub ranges_done: u64,
    pub ranges_total: u64,
    pub elapsed_secs: f64,
    pub summary: Option<Summary>,
    pub error: Option<String>,
}

#[derive(Default)]
struct Job {
    status: JobStatus,
    started: Option<Instant>,
}

#[derive(Debug, Deserialize)]
struct StartQuery {
    keyspace: Option<String>,
    /// Only among this datacenter's replicas (`geokv repair --dc`).
    dc: Option<String>,
}

/// The job routes, merged into the admin router.
pub fn routes() -> Router<Admin> {
    let job = Arc::new(Mutex::new(Job {
        status: JobStatus {
            state: "idle".into(),
            ..JobStatus::default()
        },
        started: None,
    }));
    let j = job.clone();
    Router::new()
        .route(
            "/repair/start",
            post(move |s: State<Admin>, q: Query<StartQuery>| start(s, q, j)),
        )
        .route(
            "/repair/status",
            get(move |s: State<Admin>| async move { status(&s, &job) }),
        )
}

fn json(code: StatusCode, s: &JobStatus) -> Response {
    let body = serde_json::to_string(s).unwrap_or_default() + "\n";
    (code, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn start(
    State(a): State<Admin>,
    Query(q): Query<StartQuery>,
    job: Arc<Mutex<Job>>,
) -> Response {
    let Some(repair) = a.repair.clone() else {
        return (
            StatusCode::NOT_FOUND,
            "repair is not running on this node\n",
        )
            .into_response();
    };
    {
        let mut j = job.lock();
        if j.status.state == "running" {
            return (StatusCode::CONFLICT, "a repair started here is running\n").into_response();
        }
        j.status = JobStatus {
            state: "running".into(),
            keyspace: q.keyspace.clone(),
            ..JobStatus::default()
        };
        j.started = Some(Instant::now());
    }
    let j = job.clone();
    // In the node's task set: the node's stop ends a sweep still running.
    a.spawner.spawn("admin repair", async move {
        let out = repair
            .sweep_in(q.keyspace.as_deref(), q.dc.as_deref())
            .await;
        let mut j = j.lock();
        (j.status.ranges_done, j.status.ranges_total) = repair.progress();
        j.status.elapsed_secs = j.started.map_or(0.0, |t| t.elapsed().as_secs_f64());
        match out {
            Ok(s) => {
                j.status.state = "done".into();
                j.status.summary = Some(s);
            }
            Err(e) => {
                j.status.state = "failed".into();
                j.status.error = Some(e.to_string());
            }
        }
    });
    let s = status(&a, &job);
    (StatusCode::ACCEPTED, s).into_response()
}

fn status(a: &Admin, job: &Mutex<Job>) -> Response {
    let mut j = job.lock();
    if let (Some(repair), "running") = (&a.repair, j.status.state.as_str()) {
        (j.status.ranges_done, j.status.ranges_total) = repair.progress();
        j.status.elapsed_secs = j.started.map_or(0.0, |t| t.elapsed().as_secs_f64());
    }
    json(StatusCode::OK, &j.status)
}

#[cfg(test)]
mod tests;
