//! The admin handlers of range movements: `POST /decommission` (begin or
//! resume this node's decommission, `?allow_old_gainers=true` to pass
//! gainers of an older build; 409 naming the movement in progress,
//! or the reason the layout refuses; 410 once the node was removed; an
//! unknown query field is 400, never a decommission),
//! `POST /decommission/cancel` (cancel it, 409 once it has left; its own
//! route so a node of an older build answers 404 instead of beginning a
//! decommission, review-final32 L4), `GET /decommission` (its status as
//! JSON) and `POST /cleanup` (drop the ranges this node no longer
//! replicates, once every live member is on the view; 409 while a
//! movement is in progress or a live member is behind), and
//! `GET`/`PUT /stream-throughput` (the node's stream cap in MiB/s, changed
//! in place: `{"mib_per_sec": 24}`). Must not decide anything:
//! `movement::control` does.
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
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

/// The query of `POST /decommission`. An unknown field is refused (400):
/// a request meant as something else must not begin a decommission.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecommissionQuery {
    /// Pass gainers of an older build (`StreamError::GainerTooOld`).
    #[serde(default)]
    pub allow_old_gainers: bool,
}

/// `POST /decommission[?allow_old_gainers=true]`: begin or resume this
/// node's decommission. A query it does not know is 400 naming the
/// cancel's route (an older CLI's `?cancel=true`, review-l4-33 L2).
pub async fn decommission(
    State(a): State<Admin>,
    q: Result<Query<DecommissionQuery>, QueryRejection>,
) -> Response {
    let q = match q {
        Ok(Query(q)) => q,
        Err(e) => return (StatusCode::BAD_REQUEST, unknown_query(&e)).into_response(),
    };
    let Some(control) = &a.control else {
        return no_control();
    };
    answer(control.decommission(q.allow_old_gainers).await)
}

/// The answer to a `POST /decommission` query it does not know.
fn unknown_query(e: &QueryRejection) -> String {
    format!("{e}; a cancel is POST /decommission/cancel (this geokv CLI is older than the node: use the node's)\n")
}

/// `POST /decommission/cancel`: the decommission cancelled (the node
/// stays; 409 once it has left, or when it is not decommissioning).
pub async fn cancel_decommission(State(a): State<Admin>) -> Response {
    let Some(control) = &a.control else {
        return no_control();
    };
    answer(control.cancel().await)
}

fn answer(r: Result<crate::movement::control::Status, LeaveError>) -> Response {
    match r {
        Ok(s) => json(serde_json::to_string(&s).unwrap_or_default()),
        Err(e) => (refusal(&e), format!("{e}\n")).into_response(),
    }
}

/// The status of a decommission `POST /decommission` could not begin:
/// 409 for what the layout refuses (another movement, too few nodes, the
/// node's state), 410 Gone for a node removed meanwhile (its decommission
/// became a removal: it hands its queues over and stops), 404 for a node
/// the layout does not know, 500 otherwise.
fn refusal(e: &LeaveError) -> StatusCode {
    match e {
        LeaveError::Layout(_)
        | LeaveError::WrongState { .. }
        | LeaveError::NotUpgraded(_)
        | LeaveError::NotLeaving(_)
        | LeaveError::BegunAgain(_) => StatusCode::CONFLICT,
        LeaveError::Removed(_) => StatusCode::GONE,
        LeaveError::Unknown(_) => StatusCode::NOT_FOUND,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
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

/// The body of `GET`/`PUT /stream-throughput`.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct StreamThroughput {
    /// MiB per second every movement of the node streams together; 0: no cap.
    pub mib_per_sec: f64,
}

/// `GET /stream-throughput`.
pub async fn stream_throughput(State(a): State<Admin>) -> Response {
    let Some(control) = &a.control else {
        return no_control();
    };
    let mib_per_sec = control.throughput.mib_per_sec();
    json(serde_json::to_string(&StreamThroughput { mib_per_sec }).unwrap_or_default())
}

/// `PUT /stream-throughput`: takes effect within a second on every stream,
/// the ones waiting too; 400 for a cap between 0 and the floor
/// ([`crate::movement::throughput::MIN_MIB_PER_SEC`]).
pub async fn set_stream_throughput(State(a): State<Admin>, body: axum::body::Bytes) -> Response {
    let Some(control) = &a.control else {
        return no_control();
    };
    match serde_json::from_slice::<StreamThroughput>(&body) {
        Ok(t) => match control.throughput.set_mib_per_sec(t.mib_per_sec) {
            Ok(()) => {
                tracing::info!(mib_per_sec = t.mib_per_sec, "stream throughput cap changed");
                json(serde_json::to_string(&t).unwrap_or_default())
            }
            Err(e) => (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
        },
        Err(e) => (
            StatusCode::BAD_REQUEST,
            format!("expected {{\"mib_per_sec\": N}}: {e}\n"),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::LayoutError;

    /// A decommission asked of a node removed meanwhile answers 410 Gone
    /// with the reason (the CLI prints it), not 500; an unknown node 404;
    /// what the layout refuses stays 409 (audit11 D4).
    #[test]
    fn a_removed_node_answers_gone_and_an_unknown_one_not_found() {
        let removed = LeaveError::Removed("d".into());
        assert_eq!(refusal(&removed), StatusCode::GONE);
        assert!(removed.to_string().contains("removenode d"), "{removed}");
        assert_eq!(
            refusal(&LeaveError::Unknown("z".into())),
            StatusCode::NOT_FOUND
        );
        let busy = LeaveError::Layout(LayoutError::UnknownNode("d".into()));
        assert_eq!(refusal(&busy), StatusCode::CONFLICT);
    }

    /// A cancel is `POST /decommission/cancel` (audit11 D1): the old form
    /// `POST /decommission?cancel=true`, which a node of an older build
    /// reads as a plain decommission, is refused here as an unknown field
    /// (review-final32 L4); a cancel after the leave finished or held by an
    /// older build answers 409.
    #[test]
    fn a_cancel_has_its_own_route_and_is_refused_once_left() {
        let query = |uri: &str| {
            let uri: axum::http::Uri = uri.parse().unwrap();
            Query::<DecommissionQuery>::try_from_uri(&uri).map(|q| q.0)
        };
        assert!(
            query("/decommission?cancel=true").is_err(),
            "not a decommission"
        );
        assert!(query("/decommission?bogus=1").is_err());
        assert!(!query("/decommission").expect("no query").allow_old_gainers);
        let left = LeaveError::Layout(LayoutError::AlreadyLeft("d".into()));
        assert_eq!(refusal(&left), StatusCode::CONFLICT);
        let old = crate::movement::upgrade::NotUpgraded {
            members: vec!["e (an older build)".into()],
        };
        assert_eq!(refusal(&LeaveError::NotUpgraded(old)), StatusCode::CONFLICT);
        // review-cancel31 L3: a node that is not decommissioning.
        let not = LeaveError::NotLeaving("d".into());
        assert_eq!(refusal(&not), StatusCode::CONFLICT);
        assert!(not.to_string().contains("not decommissioning"), "{not}");
    }

    /// `POST /decommission` holds gainers of an older build unless asked
    /// `?allow_old_gainers=true` (review-final30 M1).
    #[test]
    fn the_override_of_old_gainers_is_off_unless_asked() {
        let asked = |uri: &str| {
            let q = Query::<DecommissionQuery>::try_from_uri(&uri.parse().unwrap());
            q.expect("parses").0.allow_old_gainers
        };
        assert!(!asked("/decommission"));
        assert!(asked("/decommission?allow_old_gainers=true"));
        assert!(!asked("/decommission?allow_old_gainers=false"));
    }
}
