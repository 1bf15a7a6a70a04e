//! Who may use the admin port: on a node with authentication on (the default
//! with TLS), every route but `GET /health` and the movement board
//! (`GET /movement`) needs the admin credential — `authorization: Bearer
//! ROLE:SECRET` of a role holding `admin` on `*`; `GET /metrics` and the
//! status page (`/`, `/status`, `/status.json`: it shows what `/metrics`
//! does) too, unless the node runs with `--open-metrics`. No credential or a
//! bad one: 401 with `WWW-Authenticate: Bearer`; a role without that
//! permission: 403; an address with too many failed authentications: 429
//! with `Retry-After`.
//!
//! Must not: decide permissions itself (that is `security::auth`).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::security::auth::{Auth, AuthError, Credential, Perm, Token, ANY_KEYSPACE};

/// The admin port's access settings.
#[derive(Clone, Debug, Default)]
pub struct Guard {
    /// `None` or not enabled: everything is open (tools, `--insecure` tests).
    pub auth: Option<Arc<Auth>>,
    /// `/metrics` and the status page are open without the credential.
    pub open_metrics: bool,
}

impl Guard {
    /// No access control.
    pub fn open() -> Guard {
        Guard::default()
    }

    /// Open without a credential: `GET /health` (a load balancer's probe),
    /// `GET /movement`, the progress board the nodes of a removal poll on
    /// each other (it holds no data, and a removal must finish on a cluster
    /// with auth on), and with `open_metrics` `GET /metrics` and the status
    /// page.
    fn is_open(&self, method: &Method, path: &str) -> bool {
        method == Method::GET
            && (matches!(path, "/health" | "/movement")
                || (self.open_metrics
                    && matches!(path, "/metrics" | "/" | "/status" | "/status.json")))
    }
}

/// The credential of an HTTP request's `authorization` header.
pub fn credential(headers: &axum::http::HeaderMap) -> Credential {
    match headers.get(header::AUTHORIZATION) {
        None => Credential::None,
        Some(v) => match v.to_str().ok().and_then(Token::from_bearer) {
            Some(t) => Credential::Bearer(t),
            None => Credential::Malformed,
        },
    }
}

/// The client's IP address (recorded by `into_make_service_with_connect_info`:
/// `https::Remote` over HTTPS, `SocketAddr` over plain HTTP).
fn remote_ip(req: &Request) -> Option<std::net::IpAddr> {
    use axum::extract::ConnectInfo;
    let ext = req.extensions();
    (ext.get::<ConnectInfo<super::https::Remote>>()
        .and_then(|c| c.0 .0))
    .or_else(|| ext.get::<ConnectInfo<std::net::SocketAddr>>().map(|c| c.0))
    .map(|a| a.ip())
}

/// The middleware in front of every route.
pub async fn require_admin(State(g): State<Guard>, req: Request, next: Next) -> Response {
    let Some(auth) = g.auth.as_ref().filter(|a| a.enabled()) else {
        return next.run(req).await;
    };
    if g.is_open(req.method(), req.uri().path()) {
        return next.run(req).await;
    }
    let cred = credential(req.headers());
    let from = remote_ip(&req);
    match (auth.check_from(&cred, Some((ANY_KEYSPACE, Perm::Admin)), from)).await {
        Ok(_) => next.run(req).await,
        Err(e) if e.is_denied() => (StatusCode::FORBIDDEN, format!("{e}\n")).into_response(),
        Err(e @ AuthError::Unverified) => {
            (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response()
        }
        Err(
            e @ AuthError::Throttled {
                retry_after_secs, ..
            },
        ) => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, retry_after_secs.to_string())],
            format!("{e}\n"),
        )
            .into_response(),
        Err(e) => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            format!("{e}\n"),
        )
            .into_response(),
    }
}
