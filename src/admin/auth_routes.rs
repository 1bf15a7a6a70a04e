//! The admin port's role management (`geokv auth ...`): list roles, create
//! one (the secret in the request body, hashed here with argon2id; an empty
//! body makes a certificate-only role), drop one, grant and revoke a
//! permission. Every change is stamped later than everything this node
//! has seen (`security::auth::cells`), saved synced, and pushed to every
//! member at once; the answer waits for the push's verdicts (up to
//! `node::auth_sync::ACK_DEADLINE`). 200 means a quorum of the members (this
//! node counted) holds the change; 503 means it was made here but is in
//! force on fewer (the body says k of n and names the peers that refused,
//! e.g. `clock_ahead`): it is not rolled back and keeps spreading by
//! anti-entropy (audit12-32 M1); 503 `clock not yet measured`: nothing was
//! made, fewer than a quorum of the members are known within 60 s since
//! this node started (heard with an offset within it, or with no clock;
//! retry in seconds; review-clock35 M1, review-clock35b H1). 409 `superseded` is the
//! one 409 that was applied: it was made here, but a peer (or this node)
//! holds a later change of the same role or grant that undoes it, so it is
//! overridden as the later change spreads (the body says where it is in
//! force until then, and names the later change's stamp and writer and who
//! holds it; review-clock34b M2, review-clock35 M2). Any other 409 means
//! nothing was made; `clock_skew`:
//! this node's clock is more than 60 s ahead of or behind most of its
//! peers' (the body names the offsets measured, ahead or behind per peer);
//! `clock ahead`: its own newest stamp is ahead of its clock. A 200's `version` is the
//! stamp's wall time in ms, `in_force_on` of `members`. The routes sit
//! behind [`super::guard`].
//!
//! ```text
//! GET    /auth/roles                                  roles and grants (no secrets), JSON
//! POST   /auth/roles?name=app          body: SECRET   create a role
//! DELETE /auth/roles?name=app                         drop a role
//! POST   /auth/grant?role=app&keyspace=default&perm=write
//! POST   /auth/revoke?role=app&keyspace=default&perm=write
//! ```
//!
//! Must not: decide who may call (that is `guard`), or keep a secret unhashed.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::routes::Admin;
use crate::engine::CallSite;
use crate::security::auth::spread::{Spread, Verdict, CHANGES_ANSWERED};
use crate::security::auth::{
    now_ms, secret, Auth, AuthState, AuthStateError, ChangeError, Draft, Perm,
};

const JSON: &str = "application/json";

fn no_auth() -> Response {
    (StatusCode::NOT_FOUND, "no auth state on this port\n").into_response()
}

/// The answer to a change refused here (nothing was made, but for a
/// failed save).
fn refused(e: AuthStateError) -> Response {
    let status = match &e {
        AuthStateError::Change(ChangeError::Exists(_)) => StatusCode::CONFLICT,
        AuthStateError::Change(ChangeError::NoRole(_)) => StatusCode::NOT_FOUND,
        AuthStateError::Change(_) => StatusCode::BAD_REQUEST,
        // Nothing stamped; it passes once a quorum is heard (seconds).
        AuthStateError::NotYetHeard(_) => StatusCode::SERVICE_UNAVAILABLE,
        AuthStateError::ClockAhead { .. }
        | AuthStateError::FarFromPeers(_)
        | AuthStateError::ClockExhausted => StatusCode::CONFLICT,
        AuthStateError::Store(_) => {
            // The engine may have written it: it then loads and
            // spreads after a restart (review-auth29 L3).
            answered(FAILED);
            let text = format!("{e}; it may have been saved, and then applied\n");
            return (StatusCode::INTERNAL_SERVER_ERROR, text).into_response();
        }
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (status, format!("{e}\n")).into_response()
}

/// The answer to a change made here: 409 `superseded` when a peer, or
/// this node, holds a later change undoing it
/// ([`Spread::superseded_answer`]), else 200 once a quorum holds it, else
/// 503 saying how far it spread ([`Spread::short_of_quorum`]); each
/// counted by outcome ([`CHANGES_ANSWERED`]).
fn spread_answer(state: &AuthState, spread: &Spread) -> Response {
    if let Some(text) = spread.superseded_answer(state.clock(), now_ms()) {
        answered("superseded");
        return (StatusCode::CONFLICT, text + "\n").into_response();
    }
    let version = state.version();
    if !spread.acknowledged() {
        answered("short_of_quorum");
        let text = spread.short_of_quorum(version, state.clock().ms) + "\n";
        return (StatusCode::SERVICE_UNAVAILABLE, text).into_response();
    }
    answered("acknowledged");
    let (k, n) = (spread.holding, spread.members);
    (
        [(header::CONTENT_TYPE, JSON)],
        format!("{{\"version\":{version},\"in_force_on\":{k},\"members\":{n}}}\n"),
    )
        .into_response()
}

/// Counts an answer to a change by `outcome` ([`CHANGES_ANSWERED`]).
fn answered(outcome: &'static str) {
    metrics::counter!(CHANGES_ANSWERED, "outcome" => outcome).increment(1);
}

/// The outcome of a 500 "may have been made": the save failed, or the
/// blocking task making the change was lost (review-clock36 L2).
const FAILED: &str = "failed";

/// The answer when the task making a change was lost (`e`, a join error):
/// it may have been made (counted [`FAILED`]).
fn lost(e: impl std::fmt::Display) -> Response {
    answered(FAILED);
    let text = format!("{e}; the change may have been made\n");
    (StatusCode::INTERNAL_SERVER_ERROR, text).into_response()
}

/// Makes the change `f` (engine work on the blocking pool, through the
/// engine's [`CallSite`]: its save is synced), then waits for the push's
/// verdicts and answers ([`spread_answer`]).
async fn change<F>(auth: Arc<Auth>, f: F) -> Response
where
    F: FnOnce(&Draft) -> Result<AuthState, ChangeError> + Send + 'static,
{
    let maker = auth.clone();
    let made = CallSite::BlockingPool
        .run(move || maker.change_and_spread(f))
        .await;
    let (state, spreading) = match made {
        Ok(Ok(made)) => made,
        Ok(Err(e)) => return refused(e),
        Err(e) => return lost(e),
    };
    let spread = spreading.await;
    // This node too may hold a later change undoing it by now (another
    // node's push, its maker silent): judged like a peer (review-clock35 L4).
    let spread = spread.with_self(Verdict::of_answer(&state, &auth.state()));
    spread_answer(&state, &spread)
}

fn auth_of(a: &Admin) -> Option<&Arc<Auth>> {
    a.guard.auth.as_ref()
}

/// `GET /auth/roles`.
pub async fn list(State(a): State<Admin>) -> Response {
    let Some(auth) = auth_of(&a) else {
        return no_auth();
    };
    let body = serde_json::to_string_pretty(&auth.state().public()).unwrap_or_default() + "\n";
    ([(header::CONTENT_TYPE, JSON)], body).into_response()
}

#[derive(Debug, Deserialize)]
pub struct RoleQuery {
    name: Option<String>,
}

/// `POST /auth/roles?name=NAME`, the secret as the body.
pub async fn create(State(a): State<Admin>, Query(q): Query<RoleQuery>, body: String) -> Response {
    let Some(auth) = auth_of(&a).cloned() else {
        return no_auth();
    };
    let name = q.name.unwrap_or_default();
    let secret = body.trim().to_string();
    let phc = if secret.is_empty() {
        None
    } else {
        match tokio::task::spawn_blocking(move || secret::hash(&secret)).await {
            Ok(Ok(phc)) => Some(phc),
            Ok(Err(e)) => return refused(e.into()),
            Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
        }
    };
    change(auth, move |s| s.with_role(&name, phc, &[])).await
}

/// `DELETE /auth/roles?name=NAME`.
pub async fn drop(State(a): State<Admin>, Query(q): Query<RoleQuery>) -> Response {
    let Some(auth) = auth_of(&a).cloned() else {
        return no_auth();
    };
    let name = q.name.unwrap_or_default();
    change(auth, move |s| s.without_role(&name)).await
}

#[derive(Debug, Deserialize)]
pub struct GrantQuery {
    role: Option<String>,
    keyspace: Option<String>,
    perm: Option<String>,
}

/// A grant or revoke as asked: `perm` on `keyspace` to or from `role`.
struct Grant {
    role: String,
    keyspace: String,
    perm: Perm,
}

fn parse(q: GrantQuery) -> Result<Grant, ChangeError> {
    Ok(Grant {
        perm: q.perm.unwrap_or_default().parse()?,
        role: q.role.unwrap_or_default(),
        keyspace: q.keyspace.unwrap_or_default(),
    })
}

/// `POST /auth/grant?role=R&keyspace=K&perm=P`.
pub async fn grant(State(a): State<Admin>, Query(q): Query<GrantQuery>) -> Response {
    let Some(auth) = auth_of(&a).cloned() else {
        return no_auth();
    };
    match parse(q) {
        Ok(g) => change(auth, move |s| s.with_grant(&g.role, &g.keyspace, g.perm)).await,
        Err(e) => refused(e.into()),
    }
}

/// `POST /auth/revoke?role=R&keyspace=K&perm=P`.
pub async fn revoke(State(a): State<Admin>, Query(q): Query<GrantQuery>) -> Response {
    let Some(auth) = auth_of(&a).cloned() else {
        return no_auth();
    };
    match parse(q) {
        Ok(g) => change(auth, move |s| s.with_revoke(&g.role, &g.keyspace, g.perm)).await,
        Err(e) => refused(e.into()),
    }
}

#[cfg(test)]
#[path = "auth_routes_tests.rs"]
mod tests;
