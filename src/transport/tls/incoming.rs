//! Accepted connections of a gRPC port: TLS handshakes run on their own
//! tasks under a deadline (a slow or silent peer cannot hold up the accept
//! loop), at most [`MAX_HANDSHAKES`] at a time (more wait in the kernel's
//! accept queue) and at most [`Caps::handshakes_per_address`] from one
//! remote address, at most a port's cap of connections are open at once
//! and at most [`Caps::connections_per_address`] from one address (one past
//! a cap is closed at once and counted by reason: [`OPEN_METRIC`],
//! [`CAP_REFUSED_METRIC`]; one host cannot take every place), each TLS connection re-verifies its peer's chain on every
//! reload ([`Rechecked`]), a connection that does not start with a TLS record is dropped on
//! the internode port and kept — to be answered with a clear error by the
//! guard — on the client port, and each connection carries [`ConnInfo`]
//! (remote address, TLS or not, who the peer's verified certificate names,
//! parsed once per connection) into the request extensions.
//!
//! Owns: accepting and handshaking. Must not: judge identities (the guard does).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tonic::transport::server::Connected;

use super::material::Store;
use super::per_address::{refuse, PerAddress, Place};
use super::recheck::{Rechecked, Side};
use super::{refused, Port};
use crate::security::certs::{identity_of, Identity};
use rustls::pki_types::CertificateDer;

/// Longest a TLS handshake may take before the connection is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Most TLS handshakes in progress on one port: each costs a task, a socket
/// and asymmetric crypto; a flood of connections waits in the accept queue
/// instead of taking the node's memory and cores.
pub const MAX_HANDSHAKES: usize = 256;

/// Most connections open at once on a port unless its owner says
/// otherwise (`node::limits::PortLimits::max_connections`).
pub const MAX_CONNECTIONS: usize = 4096;

/// Most connections open at once from one remote address unless the
/// port's owner says otherwise: a quarter of [`MAX_CONNECTIONS`], so one
/// host cannot hold every place.
pub const MAX_CONNECTIONS_PER_ADDRESS: usize = MAX_CONNECTIONS / 4;

/// Most TLS handshakes in progress from one remote address: an eighth of
/// [`MAX_HANDSHAKES`], so one host's silent connections cannot stall other
/// hosts' new connections for the handshake deadline.
pub const MAX_HANDSHAKES_PER_ADDRESS: usize = MAX_HANDSHAKES / 8;

/// A port's caps on connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Open at once (established or handshaking).
    pub connections: usize,
    /// Open at once from one remote address.
    pub connections_per_address: usize,
    /// TLS handshakes in progress from one remote address.
    pub handshakes_per_address: usize,
}

impl Default for Caps {
    fn default() -> Self {
        Caps {
            connections: MAX_CONNECTIONS,
            connections_per_address: MAX_CONNECTIONS_PER_ADDRESS,
            handshakes_per_address: MAX_HANDSHAKES_PER_ADDRESS,
        }
    }
}

/// Connections open, by port (a gauge).
pub const OPEN_METRIC: &str = "geokv_connections_open";

/// Connections closed as soon as accepted, by port and `reason`: the port
/// had its cap open (`connections`), the address had its own
/// (`connections_per_address`), or its handshakes in progress
/// (`handshakes_per_address`).
pub const CAP_REFUSED_METRIC: &str = "geokv_connections_refused_total";

/// One accepted connection, holding its place under the port's cap until
/// it is dropped.
pub struct Conn {
    io: Io,
    _place: Place,
}

enum Io {
    Plain(TcpStream),
    Tls(Box<Rechecked<TlsStream<TcpStream>>>),
}

/// What the guard knows about a request's connection. Built once per
/// connection (tonic copies it into every request's extensions), so the
/// certificate is parsed once per connection, not once per call. Its fields
/// and constructor are crate-private: the identity is trusted as verified,
/// so only the acceptor (from the chain rustls verified) and tests make one.
#[derive(Clone, Debug)]
pub struct ConnInfo {
    pub(crate) remote: Option<SocketAddr>,
    pub(crate) tls: bool,
    /// Who the peer's certificate (verified against the CA during the
    /// handshake) names; `None` without a certificate, or for one naming
    /// no geokv node or client (or not parsing).
    pub(crate) identity: Option<Arc<Identity>>,
}

impl ConnInfo {
    /// A TLS connection whose peer presented `certs` (leaf first), which
    /// the handshake verified.
    pub(crate) fn tls(
        remote: Option<SocketAddr>,
        certs: Option<&[CertificateDer<'_>]>,
    ) -> ConnInfo {
        let identity = certs
            .and_then(|c| c.first())
            .and_then(|leaf| identity_of(leaf).ok().flatten())
            .map(Arc::new);
        ConnInfo {
            remote,
            tls: true,
            identity,
        }
    }
}

impl Connected for Conn {
    type ConnectInfo = ConnInfo;

    fn connect_info(&self) -> ConnInfo {
        match &self.io {
            Io::Plain(s) => ConnInfo {
                remote: s.peer_addr().ok(),
                tls: false,
                identity: None,
            },
            Io::Tls(s) => {
                let (tcp, session) = s.get_ref().get_ref();
                ConnInfo::tls(tcp.peer_addr().ok(), session.peer_certificates())
            }
        }
    }
}

macro_rules! delegate {
    ($self:ident, $s:ident => $e:expr) => {
        match &mut $self.get_mut().io {
            Io::Plain($s) => $e,
            Io::Tls($s) => $e,
        }
    };
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        delegate!(self, s => Pin::new(s).poll_read(cx, buf))
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, s => Pin::new(s).poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => Pin::new(s).poll_shutdown(cx))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, s => Pin::new(s).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match &self.io {
            Io::Plain(s) => s.is_write_vectored(),
            Io::Tls(s) => s.is_write_vectored(),
        }
    }
}

/// The stream of accepted connections `serve_with_incoming*` takes.
pub type Incoming = tokio_stream::wrappers::ReceiverStream<io::Result<Conn>>;

/// Accepts on `listener`; with an acceptor every connection is handshaken
/// first (or, on the client port, passed on as plaintext for the guard to
/// refuse with a clear message); with `recheck`, the material the acceptor
/// follows, each TLS connection is closed once its peer's chain no longer
/// verifies after a reload. At most `caps` are open at once.
pub(super) fn accept(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    port: Port,
    recheck: Option<Arc<Store>>,
    caps: Caps,
) -> Incoming {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let handshakes = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
    let open = Arc::new(tokio::sync::Semaphore::new(caps.connections));
    let per_address = PerAddress::new(caps.connections_per_address);
    let shaking = PerAddress::new(caps.handshakes_per_address);
    tokio::spawn(async move {
        loop {
            // Wait for a handshake slot before accepting the next socket.
            let slot = tokio::select! {
                _ = tx.closed() => return,
                slot = handshakes.clone().acquire_owned() => slot.expect("never closed"),
            };
            let (tcp, remote) = tokio::select! {
                _ = tx.closed() => return,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: back off, go on.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            // Closed before a byte is read: a flood of connections costs
            // the node a socket for an instant, not a task.
            let place = match Place::take(&open, &per_address, remote, port) {
                Ok(place) => place,
                Err(reason) => {
                    refuse(port, reason, remote);
                    continue;
                }
            };
            // Nagle plus delayed ACKs would add ~40 ms to small replies.
            let _ = tcp.set_nodelay(true);
            let Some(acceptor) = tls.clone() else {
                let conn = Conn {
                    io: Io::Plain(tcp),
                    _place: place,
                };
                if tx.send(Ok(conn)).await.is_err() {
                    return;
                }
                continue;
            };
            let Some(shaking) = shaking.take(remote.ip()) else {
                refuse(port, "handshakes_per_address", remote);
                continue;
            };
            let (tx, recheck) = (tx.clone(), recheck.clone());
            tokio::spawn(async move {
                let shake = handshake(tcp, acceptor, port, recheck, remote);
                let shaken = tokio::time::timeout(HANDSHAKE_TIMEOUT, shake).await;
                drop((slot, shaking));
                match shaken {
                    Ok(Ok(io)) => {
                        let _ = tx.send(Ok(Conn { io, _place: place })).await;
                    }
                    Ok(Err(reason)) => refused(port, reason.0, &format!("{remote}: {}", reason.1)),
                    Err(_) => refused(port, "handshake", &format!("{remote}: handshake timed out")),
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// An accepted TLS connection, re-verified against `recheck` on every reload.
fn watched(
    s: TlsStream<TcpStream>,
    recheck: Option<Arc<Store>>,
    port: Port,
    remote: SocketAddr,
) -> Io {
    let Some(store) = recheck else {
        return Io::Tls(Box::new(Rechecked::unwatched(s)));
    };
    let chain = s.get_ref().1.peer_certificates().map(<[_]>::to_vec);
    let side = Side::Accepted {
        required: port == Port::Internode,
    };
    let s = Rechecked::watch(s, &store, chain.as_deref(), side, port, remote.to_string());
    Io::Tls(Box::new(s))
}

/// A refused connection: the metric's reason and a message for the log.
struct Refusal(&'static str, String);

async fn handshake(
    tcp: TcpStream,
    acceptor: TlsAcceptor,
    port: Port,
    recheck: Option<Arc<Store>>,
    remote: SocketAddr,
) -> Result<Io, Refusal> {
    // A TLS connection starts with a handshake record (content type 22).
    let mut first = [0u8; 1];
    let n = tcp
        .peek(&mut first)
        .await
        .map_err(|e| Refusal("handshake", e.to_string()))?;
    if n == 0 {
        return Err(Refusal("handshake", "closed before the handshake".into()));
    }
    if first[0] != 0x16 {
        return match port {
            Port::Client => Ok(Io::Plain(tcp)),
            Port::Internode => Err(Refusal(
                "plaintext",
                "plaintext connection to a TLS port".into(),
            )),
            Port::Admin => {
                answer_plain_http(tcp).await;
                Err(Refusal(
                    "plaintext",
                    "plaintext HTTP to the HTTPS admin port".into(),
                ))
            }
        };
    }
    acceptor
        .accept(tcp)
        .await
        .map(|s| watched(s, recheck, port, remote))
        .map_err(|e| Refusal("handshake", e.to_string()))
}

/// What a plaintext HTTP client of a TLS admin port is told.
pub const ADMIN_PLAINTEXT_REFUSAL: &str = "this admin port requires HTTPS: use https:// \
     and the cluster CA (geokv: --ca or GEOKV_CA; curl: --cacert)";

/// Answers a plaintext HTTP request on the admin port with `400` and why,
/// rather than a bare reset.
async fn answer_plain_http(mut tcp: TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut request = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_millis(200), tcp.read(&mut request)).await;
    let body = format!("{ADMIN_PLAINTEXT_REFUSAL}\n");
    let answer = format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tcp.write_all(answer.as_bytes()).await;
    let _ = tcp.shutdown().await;
}
