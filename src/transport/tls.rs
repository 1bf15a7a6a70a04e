//! Transport security of a node's gRPC ports: mutual TLS between nodes, TLS
//! (client certificates optional) on the client port, and the check that a
//! peer's certificate names the node it claims to be.
//!
//! - **Internode**: every node presents its certificate (`geokv certs issue
//!   --node ID`) and requires the peer's to chain to the cluster CA, in both
//!   directions. The dialling side accepts only a certificate naming the
//!   node it meant to reach ([`verifiers::NodeVerifier`]); the serving side
//!   ([`Guard`]) refuses a call whose `geokv-from` header names another node
//!   than the certificate (`PERMISSION_DENIED`), and the gossip handler
//!   checks the digest's sender against that verified id. A plaintext
//!   connection to a TLS internode port is dropped. Every refusal is logged
//!   and counted in `geokv_tls_refused_total{port,reason}`.
//! - **Client port**: TLS with the node's certificate; a client certificate
//!   is verified when presented. A plaintext gRPC client is answered
//!   `FAILED_PRECONDITION` with a message saying the port needs TLS (rather
//!   than a bare connection reset).
//! - **Rotation**: resolvers and verifiers read the current material
//!   ([`material::Store`]), which [`Tls::spawn_reload`] reloads when the
//!   files change, and on SIGHUP whether they changed or not; new
//!   connections use it at once, and every open TLS connection (accepted
//!   or dialled) verifies its peer's chain again at each reload and every
//!   [`RECHECK_EVERY`], and is closed if it no longer verifies
//!   ([`Rechecked`]): a node of a retired CA, or whose certificate
//!   expired, cannot go on gossiping on the connection it had. The
//!   not-after of the loaded certificates is exported
//!   ([`EXPIRY_METRIC`]).
//!   **No session resumption**, on any port nor when
//!   dialling: a resumed session gets the peer's chain verified at its first
//!   handshake back without verifying it again, so after a CA rotation an
//!   identity of the retired CA would return on a new connection. Every
//!   connection makes a full handshake instead (as Cassandra and ScyllaDB
//!   do); connections are long-lived HTTP/2, so that is one ECDHE and
//!   signature per reconnect, not per request. Clearing a session cache on
//!   reload would keep resumption but not re-check a certificate that
//!   expired since the session began.
//!
//! **Crypto provider: `ring`.** rustls' default, aws-lc-rs, builds a large C
//! library with cmake (minutes on this 2-core builder, plus cmake/NASM as
//! build requirements); `ring` builds with the C compiler alone. For what
//! the cluster does — long-lived HTTP/2 connections with AES-GCM /
//! ChaCha20-Poly1305 bulk encryption and an ECDSA P-256 handshake per
//! (re)connect — both use the same assembly kernels, so throughput is
//! equivalent; aws-lc-rs' advantages (FIPS, post-quantum key exchange) are
//! not needs here yet. Switching is one feature flag on rustls, tokio-rustls
//! and tonic plus [`provider`].
//!
//! Owns: TLS configuration, accepting and dialling with it, the identity
//! check. Must not: decide anything about requests beyond who sent them.

pub mod admin;
mod dial;
mod expiry;
mod failure;
mod incoming;
mod material;
mod per_address;
mod primed;
mod recheck;
mod reload;
mod roots;
mod verifiers;

pub use dial::{CONNECT_BUDGET, PLAIN_CONNECT_BUDGET};
pub use expiry::EXPIRY_METRIC;
pub use failure::{explain, peer_word, rustls_cause, LastFailure, Mark};
pub use incoming::{
    Caps, Conn, ConnInfo, Incoming, ADMIN_PLAINTEXT_REFUSAL, CAP_REFUSED_METRIC, HANDSHAKE_TIMEOUT,
    MAX_CONNECTIONS, MAX_CONNECTIONS_PER_ADDRESS, MAX_HANDSHAKES, MAX_HANDSHAKES_PER_ADDRESS,
    OPEN_METRIC,
};
pub use material::{Store, TlsError, TlsFiles};
pub use recheck::{Rechecked, RECHECK_EVERY};
pub use reload::RELOADS_METRIC;

use crate::security::certs::Identity;
use material::{ClientVerifier, KeyResolver};
use rustls::crypto::CryptoProvider;
#[cfg(test)] // (the tests dial by hand)
use rustls::pki_types::ServerName;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tonic::service::{Interceptor, InterceptorLayer};
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};
use verifiers::{Anchors, NodeVerifier};

/// Refused connections and calls, by port and reason
/// (`handshake`, `plaintext`, `identity`).
pub const REFUSED_METRIC: &str = "geokv_tls_refused_total";

/// What a plaintext client on a TLS client port is told.
pub const PLAINTEXT_REFUSAL: &str = "this port requires TLS: connect with an https:// endpoint \
     and the cluster CA (--ca or GEOKV_CA)";

/// Which gRPC port a connection came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    Internode,
    Client,
    /// The admin HTTP port (HTTPS, see [`admin`]).
    Admin,
}

impl Port {
    fn name(self) -> &'static str {
        match self {
            Port::Internode => "internode",
            Port::Client => "client",
            Port::Admin => "admin",
        }
    }
}

/// The ALPN protocol a port speaks.
fn alpn(port: Port) -> Vec<u8> {
    match port {
        Port::Admin => b"http/1.1".to_vec(),
        Port::Internode | Port::Client => b"h2".to_vec(),
    }
}

/// How a node names a seed it dials by address before it knows the seed's
/// id (`geokv node --join ADDR`); with TLS any node certificate of the
/// cluster CA is accepted for it. Node ids cannot contain `@`.
const SEED_PREFIX: &str = "seed@";

/// The peer id of the seed at `addr` (see [`SEED_PREFIX`]).
pub fn seed_id(addr: SocketAddr) -> String {
    format!("{SEED_PREFIX}{addr}")
}

/// How a node secures its ports (its configuration).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum TlsSetting {
    /// Plaintext everywhere: only behind an explicit `--insecure`.
    #[default]
    Insecure,
    Files(TlsFiles),
}

/// The crypto provider every TLS session of the node uses (see the module doc).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A node's TLS state, shared by its servers and its peer channels.
#[derive(Debug, Clone, Default)]
pub struct Tls(Option<Arc<Store>>);

/// The peer node a call was verified to come from (a request extension
/// set by the [`Guard`] on a TLS internode port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedPeer(pub String);

/// Logs and counts a refused connection or call.
pub(crate) fn refused(port: Port, reason: &'static str, detail: &str) {
    metrics::counter!(REFUSED_METRIC, "port" => port.name(), "reason" => reason).increment(1);
    tracing::warn!(port = port.name(), reason, "TLS refused: {detail}");
}

impl Tls {
    /// Plaintext (`--insecure`).
    pub fn insecure() -> Self {
        Tls(None)
    }

    /// Loads the node's material per `setting`.
    pub fn load(setting: &TlsSetting, node_id: &str) -> Result<Self, TlsError> {
        match setting {
            TlsSetting::Insecure => Ok(Tls(None)),
            TlsSetting::Files(files) => Ok(Tls(Some(Arc::new(Store::load(
                files.clone(),
                node_id,
                provider(),
            )?)))),
        }
    }

    pub fn is_on(&self) -> bool {
        self.0.is_some()
    }

    fn server_config(store: &Arc<Store>, port: Port) -> Arc<rustls::ServerConfig> {
        let mut cfg = rustls::ServerConfig::builder_with_provider(store.provider().clone())
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports the default versions")
            .with_client_cert_verifier(Arc::new(ClientVerifier {
                store: store.clone(),
                required: port == Port::Internode,
            }))
            .with_cert_resolver(Arc::new(KeyResolver(store.clone())));
        cfg.alpn_protocols = vec![alpn(port)];
        // No session resumption (see "Rotation" above): no session cache,
        // no TLS 1.3 tickets (rustls' stateless ticketer is off by default).
        cfg.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        cfg.send_tls13_tickets = 0;
        Arc::new(cfg)
    }

    fn client_config(store: &Arc<Store>, expect: &str) -> Arc<rustls::ClientConfig> {
        let expect = (!expect.starts_with(SEED_PREFIX)).then(|| expect.to_string());
        Self::dial_config(
            Anchors::Live(store.clone()),
            expect,
            Some(store),
            Port::Internode,
        )
    }

    /// A client configuration checking the server with `anchors` (and
    /// `expect`, see [`NodeVerifier`]), presenting `store`'s certificate if
    /// given, speaking `port`'s protocol.
    fn dial_config(
        anchors: Anchors,
        expect: Option<String>,
        store: Option<&Arc<Store>>,
        port: Port,
    ) -> Arc<rustls::ClientConfig> {
        // "dangerous" is rustls' name for any custom verifier; this one is
        // stricter than the stock one (CA chain *and* the node's identity).
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports the default versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NodeVerifier { anchors, expect }));
        let mut cfg = match store {
            Some(store) => builder.with_client_cert_resolver(Arc::new(KeyResolver(store.clone()))),
            None => builder.with_no_client_auth(),
        };
        cfg.alpn_protocols = vec![alpn(port)];
        // Nor as a client: a resumed session skips the verifier, so a server
        // verified under a CA since retired would be trusted again.
        cfg.resumption = rustls::client::Resumption::disabled();
        Arc::new(cfg)
    }

    /// The accepted connections of `listener` for `serve_with_incoming*`,
    /// under the default [`Caps`].
    pub fn incoming(&self, listener: tokio::net::TcpListener, port: Port) -> Incoming {
        self.incoming_limited(listener, port, Caps::default())
    }

    /// [`Self::incoming`] under `caps`.
    pub fn incoming_limited(
        &self,
        listener: tokio::net::TcpListener,
        port: Port,
        caps: Caps,
    ) -> Incoming {
        let acceptor = self
            .0
            .as_ref()
            .map(|s| tokio_rustls::TlsAcceptor::from(Self::server_config(s, port)));
        incoming::accept(listener, acceptor, port, self.0.clone(), caps)
    }

    /// A lazily connected channel to node `peer_id` at `addr`; with TLS the
    /// peer must present a certificate naming `peer_id` (any node of the
    /// cluster CA for a [`seed_id`]: a seed is known by address only).
    pub fn endpoint(&self, peer_id: &str, addr: SocketAddr) -> Channel {
        self.endpoint_noted(peer_id, addr).0
    }

    /// [`Self::endpoint`], and where its connections note the TLS failure
    /// that ended one before the peer answered (see [`LastFailure`]).
    pub fn endpoint_noted(&self, peer_id: &str, addr: SocketAddr) -> (Channel, LastFailure) {
        let failure = LastFailure::default();
        // No `connect_timeout` here: the budget is kept inside the connector
        // (dial.rs), so a connect that runs out of it is "not sent".
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .expect("socket address forms a valid URI")
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(10));
        let Some(store) = &self.0 else {
            let connect = tower::service_fn(move |_: tonic::codegen::http::Uri| dial::plain(addr));
            return (endpoint.connect_with_connector_lazy(connect), failure);
        };
        let dialler = dial::Dialler {
            connector: tokio_rustls::TlsConnector::from(Self::client_config(store, peer_id)),
            peer: peer_id.to_string(),
            addr,
            store: store.clone(),
            noted: failure.clone(),
        };
        let connect = tower::service_fn(move |_: tonic::codegen::http::Uri| dialler.clone().tls());
        (endpoint.connect_with_connector_lazy(connect), failure)
    }

    /// The layer that checks every call on `port` (see [`Guard`]).
    pub fn guard(&self, port: Port) -> InterceptorLayer<Guard> {
        InterceptorLayer::new(Guard {
            port,
            on: self.is_on(),
        })
    }

    /// Reloads the material every `every` when the files changed, and at
    /// once on SIGHUP whether they changed or not, until `shutdown` (see
    /// `reload.rs`).
    pub fn spawn_reload(&self, every: Duration, shutdown: tokio::sync::watch::Receiver<bool>) {
        let Some(store) = self.0.clone() else { return };
        tokio::spawn(reload::run(store, every, reload::hangups(), shutdown));
    }
}

/// Checks each call against its connection: on a TLS internode port the
/// certificate must name the node the `geokv-from` header claims; on a TLS
/// client port the connection must be TLS. Without TLS it lets everything through.
#[derive(Debug, Clone)]
pub struct Guard {
    port: Port,
    on: bool,
}

impl Interceptor for Guard {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        if !self.on {
            return Ok(req);
        }
        let info = req.extensions().get::<ConnInfo>().cloned();
        let remote = info.as_ref().and_then(|i| i.remote);
        if !info.as_ref().is_some_and(|i| i.tls) {
            refused(
                self.port,
                "plaintext",
                &format!("{remote:?}: plaintext call"),
            );
            return Err(Status::failed_precondition(PLAINTEXT_REFUSAL));
        }
        if self.port == Port::Client {
            return Ok(req);
        }
        let from = req
            .metadata()
            .get(super::FROM_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        // Parsed once per connection (`ConnInfo::tls`), never per call.
        let identity = info.and_then(|i| i.identity);
        match identity.as_deref() {
            Some(Identity::Node(id)) if *id == from => {
                req.extensions_mut().insert(VerifiedPeer(from));
                Ok(req)
            }
            other => {
                let named = match other {
                    Some(who) => who.to_string(),
                    None => "no geokv node".to_string(),
                };
                let msg = format!("the peer's certificate names {named}, but the call claims to come from node '{from}'");
                refused(self.port, "identity", &format!("{remote:?}: {msg}"));
                Err(Status::permission_denied(msg))
            }
        }
    }
}

#[cfg(test)]
mod cap_tests;
#[cfg(test)]
mod connect_tests;
#[cfg(test)]
mod failure_tests;
#[cfg(test)]
mod handshake_tests;
#[cfg(test)]
mod recheck_tests;
#[cfg(test)]
mod reload_tests;
#[cfg(test)]
mod resumption_tests;
#[cfg(test)]
mod tests;
