//! The client API's side of authentication: what credential a request
//! carries (the `authorization: Bearer ROLE:SECRET` metadata, else the
//! client certificate of its TLS connection) and how a refusal is answered
//! (`UNAUTHENTICATED`, or `PERMISSION_DENIED` naming the keyspace and the
//! permission), and which address it came from (failed authentications are
//! limited per address). The decisions are `security::auth`'s.
//! Must not: decide who may do what (that is `security::auth`), or touch
//! data before the verdict.

use crate::security::auth::{AuthError, Credential, Token, AUTHORIZATION};
use crate::security::certs::Identity;
use crate::transport::tls::ConnInfo;
use tonic::codegen::http::HeaderMap;
use tonic::transport::server::TcpConnectInfo;
use tonic::{Extensions, Request, Status};

pub mod layer;

/// The credential `req` presents: a bearer token first, else a client
/// certificate naming a client (`geokv://client/NAME` names role NAME).
pub fn credential<T>(req: &Request<T>) -> Credential {
    credential_in(AsRef::<HeaderMap>::as_ref(req.metadata()), req.extensions())
}

/// [`credential`] from a call's headers and extensions (the HTTP request
/// before it is a gRPC one: see [`layer`]).
pub fn credential_in(headers: &HeaderMap, ext: &Extensions) -> Credential {
    if let Some(v) = headers.get(AUTHORIZATION) {
        return match v.to_str().ok().and_then(Token::from_bearer) {
            Some(t) => Credential::Bearer(t),
            None => Credential::Malformed,
        };
    }
    match peer_identity(ext) {
        Some(Identity::Client(name)) => Credential::Certificate(name.clone()),
        _ => Credential::None,
    }
}

/// Who the (verified) certificate of a call's connection names, parsed
/// once per connection by the TLS acceptor.
fn peer_identity(ext: &Extensions) -> Option<&Identity> {
    (ext.get::<ConnInfo>()).and_then(|i| i.identity.as_deref())
}

/// Whether `req` came over a TLS connection whose (verified) client
/// certificate is a node's of the cluster CA (`geokv://node/ID`): a node of
/// the cluster, e.g. a replacement asking its seed whether the node it
/// replaces is down. Admits `Status` only (membership, no data).
pub fn from_node<T>(req: &Request<T>) -> bool {
    from_node_in(req.extensions())
}

/// [`from_node`] from a call's extensions.
pub fn from_node_in(ext: &Extensions) -> bool {
    matches!(peer_identity(ext), Some(Identity::Node(_)))
}

/// The client's IP address (the TLS acceptor's record of the connection,
/// else tonic's), for the limit on failed authentications.
pub fn remote_ip<T>(req: &Request<T>) -> Option<std::net::IpAddr> {
    remote_ip_in(req.extensions())
}

/// [`remote_ip`] from a call's extensions.
pub fn remote_ip_in(ext: &Extensions) -> Option<std::net::IpAddr> {
    (ext.get::<ConnInfo>())
        .and_then(|i| i.remote)
        .or_else(|| ext.get::<TcpConnectInfo>().and_then(|i| i.remote_addr()))
        .map(|a| a.ip())
}

/// The gRPC status of a refusal.
pub fn status(e: AuthError) -> Status {
    if e == AuthError::Unverified {
        // Nothing is known about the credential: retryable, and the call
        // was not run (review-conn28 L1: without the mark the client SDK
        // took it for a broken connection, "may have been applied").
        let mut s = Status::unavailable(e.to_string());
        s.metadata_mut().insert(
            crate::proto::APPLIED_METADATA,
            tonic::metadata::MetadataValue::from_static("no"),
        );
        return s;
    }
    if e.is_denied() {
        Status::permission_denied(e.to_string())
    } else {
        Status::unauthenticated(e.to_string())
    }
}

#[cfg(test)]
mod tests;
