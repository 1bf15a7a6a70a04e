//! Dialling a peer's internode port: the TCP connect and, with TLS, the
//! handshake and the peer's first bytes, all within one connect budget
//! kept **inside** the connector tonic wraps. A connect that runs out of
//! budget is then a `tonic::ConnectError` like a refused one, which the
//! transport classifies "not sent" (`transport/error.rs`): hyper never had
//! the connection, so no call was written on it, and a forwarded write may
//! try the next replica (review-final27 H1). Endpoint's own
//! `connect_timeout` sits outside that connector and its error names no
//! connect failure, so it is not used.
//!
//! Must not: hand hyper a connection before the budget's work is done, nor
//! write any byte of a call.

use super::failure::{self, LastFailure};
use super::primed::Primed;
use super::recheck::{self, Rechecked};
use super::{Port, Store, REFUSED_METRIC, SEED_PREFIX};
use rustls::pki_types::ServerName;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// TLS: TCP connect, the handshake and the peer's first bytes share this
/// budget, three round trips: 1.5 s keeps datacenters 300 ms apart
/// connecting (review-sec27 M3) and stays under the 2 s default request
/// timeout, so a forwarded write whose replica does not answer the connect
/// leaves half a second for the next replica. A lost SYN (first retransmit
/// after 1 s) on a link of 300 ms round trips does not fit (review-final27
/// L5): that connect fails "not sent", and the channel's next call dials
/// again; a longer budget would leave a forwarded write no time for the
/// next replica.
pub const CONNECT_BUDGET: Duration = Duration::from_millis(1500);

/// Plaintext (`--insecure`, local experiments): one round trip.
pub const PLAIN_CONNECT_BUDGET: Duration = Duration::from_millis(500);

/// `connect` within `budget`; running out of it is `TimedOut`.
pub(super) async fn within<T>(
    budget: Duration,
    connect: impl Future<Output = io::Result<T>>,
) -> io::Result<T> {
    match tokio::time::timeout(budget, connect).await {
        Ok(done) => done,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no connection within {} ms", budget.as_millis()),
        )),
    }
}

/// A plaintext connection to `addr`.
pub(super) async fn plain(
    addr: SocketAddr,
) -> io::Result<hyper_util::rt::TokioIo<tokio::net::TcpStream>> {
    within(PLAIN_CONNECT_BUDGET, async move {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        Ok(hyper_util::rt::TokioIo::new(tcp))
    })
    .await
}

/// What one TLS dial of node `peer` at `addr` needs.
#[derive(Clone)]
pub(super) struct Dialler {
    pub connector: tokio_rustls::TlsConnector,
    pub peer: String,
    pub addr: SocketAddr,
    pub store: Arc<Store>,
    pub noted: LastFailure,
}

type Dialled =
    failure::Noted<Primed<Rechecked<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>>>;

impl Dialler {
    /// A TLS connection to the peer, within [`CONNECT_BUDGET`].
    /// A connect that runs out of it is counted (`reason="timeout"`) and
    /// its connection noted ended (review-conn28 L4).
    pub(super) async fn tls(self) -> io::Result<hyper_util::rt::TokioIo<Dialled>> {
        let peer = self.peer.clone();
        within(CONNECT_BUDGET, self.connect())
            .await
            .inspect_err(|e| {
                if e.kind() == io::ErrorKind::TimedOut {
                    metrics::counter!(REFUSED_METRIC, "port" => "dial", "reason" => "timeout")
                        .increment(1);
                    tracing::debug!(peer = %peer, error = %e, "TLS connect ran out of time");
                }
            })
    }

    async fn connect(self) -> io::Result<hyper_util::rt::TokioIo<Dialled>> {
        let Dialler {
            connector,
            peer,
            addr,
            store,
            noted,
        } = self;
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        // Each connection's outcome is kept apart (failure.rs).
        let id = noted.open();
        // Dropped with the connect (out of budget): noted ended.
        let opened = Opened(&noted, id);
        let refused = |e: &io::Error| {
            noted.ended(id, Some(e));
            metrics::counter!(REFUSED_METRIC, "port" => "dial", "reason" => "handshake")
                .increment(1);
            tracing::debug!(peer = %peer, error = %e, "TLS handshake failed");
        };
        let tls = connector
            .connect(ServerName::IpAddress(addr.ip().into()), tcp)
            .await
            .inspect_err(refused)?;
        // Closed once the peer's chain fails a reload (recheck.rs).
        let chain = tls.get_ref().1.peer_certificates().map(<[_]>::to_vec);
        let expect = (!peer.starts_with(SEED_PREFIX)).then(|| peer.clone());
        let side = recheck::Side::Dialled { expect };
        let tls = Rechecked::watch(
            tls,
            &store,
            chain.as_deref(),
            side,
            Port::Internode,
            peer.clone(),
        );
        // Under TLS 1.3 the peer checks this node's certificate after this
        // side's handshake is done: its first bytes (HTTP/2 SETTINGS) or its
        // refusal come before any call is written, so a refusal fails the
        // connect (nothing sent) instead of a call hyper would call "canceled".
        let tls = Primed::first_bytes(tls).await.inspect_err(refused)?;
        std::mem::forget(opened);
        let tls = failure::Noted::new(tls, noted, id);
        Ok(hyper_util::rt::TokioIo::new(tls))
    }
}

/// A connection whose connect is under way: dropped before it is handed
/// over, it is noted ended (a second note of one ended is ignored).
struct Opened<'a>(&'a LastFailure, u64);

impl Drop for Opened<'_> {
    fn drop(&mut self) {
        self.0.ended(self.1, None);
    }
}
