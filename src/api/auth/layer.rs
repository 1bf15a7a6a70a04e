//! The authentication layer of the client service (`geokv.v1.Kv`): on a
//! node with `--auth` it authenticates every call from its headers and its
//! connection alone, before the body is read or decoded, so a client
//! without a valid credential cannot make the node buffer or parse a
//! request (`UNAUTHENTICATED`, or the throttle's refusal). An
//! authenticated call goes on with its role as a [`Principal`] request
//! extension, which the handlers authorize per keyspace (the keyspace is in
//! the body). `Status` from a node of the cluster (a node certificate) is
//! let through without a credential, as before.
//!
//! Must not: read the body, decide permissions on keyspaces (the handlers
//! with `security::auth`), or wrap services other than `geokv.v1.Kv`
//! (health and reflection stay open).

use crate::security::auth::Auth;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tonic::codegen::http;
use tonic::server::NamedService;

/// The role a call was authenticated as (set by [`Authenticated`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal(pub String);

/// The one call a node certificate may make without a credential.
const STATUS_PATH: &str = "/geokv.v1.Kv/Status";

/// Wraps a service in [`Authenticated`].
#[derive(Debug, Clone)]
pub struct AuthLayer {
    auth: Arc<Auth>,
}

impl AuthLayer {
    pub fn new(auth: Arc<Auth>) -> AuthLayer {
        AuthLayer { auth }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = Authenticated<S>;

    fn layer(&self, inner: S) -> Authenticated<S> {
        Authenticated {
            inner,
            auth: self.auth.clone(),
        }
    }
}

/// A service whose calls are authenticated before it sees them.
#[derive(Debug, Clone)]
pub struct Authenticated<S> {
    inner: S,
    auth: Arc<Auth>,
}

impl<S: NamedService> NamedService for Authenticated<S> {
    const NAME: &'static str = S::NAME;
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S, B> tower::Service<http::Request<B>> for Authenticated<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        // The clone is not driven to readiness: call the one that was.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        if !self.auth.enabled() {
            return Box::pin(inner.call(req));
        }
        let auth = self.auth.clone();
        Box::pin(async move {
            let ext = req.extensions();
            if req.uri().path() == STATUS_PATH && super::from_node_in(ext) {
                return inner.call(req).await;
            }
            let cred = super::credential_in(req.headers(), ext);
            let from = super::remote_ip_in(ext);
            match auth.check_from(&cred, None, from).await {
                Ok(role) => {
                    req.extensions_mut().insert(Principal(role));
                    inner.call(req).await
                }
                // The body is dropped unread: the stream is reset after
                // this trailers-only answer.
                Err(e) => Ok(super::status(e).into_http()),
            }
        })
    }
}
