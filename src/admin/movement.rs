//! The admin handlers of range movements: `POST /decommission` (begin or
//! resume this node's decommission; 409 naming the movement in progress,
//! or the reason the layout refuses), `GET /decommission` (its status as
//! JSON) and `POST /cleanup` (drop the ranges this node no longer
//! replicates, once every live member is on the view; 409 while a
//! movement is in progress or a live member is behind). Must not decide
//! anything: `movement::control` does.
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use super::routes::Admin;
use crate::movement::{CleanupError, LeaveError};

const JSON: &str = "application/json";

fn no_control() -> Response {
    (StatusCode::NOT_FOUND, "no range movements on this port\n").into_response()
}

fn json(body: String) -> Response {
    ([(header::CONTENT_TYPE, JSON)], body + "\n").into_response()
}

/// `POST /decommission`.
pub async fn decommission(State(a): State<Admin>) -> Response {
    let Some(control) = &a.control else {
        return no_control();
    };
    match control.decommission().await {
        Ok(s) => json(serde_json::to_string(&s).unwrap_or_default()),
        Err(e @ (LeaveError::Layout(_) | LeaveError::WrongState { .. })) => {
            (StatusCode::CONFLICT, format!("{e}\n")).into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

/// `GET /decommission`.
pub async fn decommission_status(State(a): State<Admin>) -> Response {
    let Some(control) = &a.control else {
        return no_control();
    };
    json(serde_json::to_string(&control.status()).unwrap_or_default())
}

/// `POST /cleanup`: `{"ranges":N,"keys":N,"bytes":N}`.
pub async fn cleanup(State(a): State<Admin>) -> Response {
    let Some(control) = &a.control else {
        return no_control();
    };
    match control.cleanup_announced().await {
        Ok(c) => json(format!(
            "{{\"ranges\":{},\"keys\":{},\"bytes\":{}}}",
            c.ranges.len(),
            c.keys,
            c.bytes
        )),
        Err(e @ (CleanupError::MovementInProgress(_) | CleanupError::NotAnnounced(_))) => {
            (StatusCode::CONFLICT, format!("{e}\n")).into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}
