//! Accepted connections of a gRPC port: TLS handshakes run on their own
//! tasks under a deadline (a slow or silent peer cannot hold up the accept
//! loop), at most [`MAX_HANDSHAKES`] at a time (more wait in the kernel's
//! accept queue), each TLS connection re-verifies its peer's chain on every
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

/// One accepted connection.
pub enum Conn {
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
        match self {
            Conn::Plain(s) => ConnInfo {
                remote: s.peer_addr().ok(),
                tls: false,
                identity: None,
            },
            Conn::Tls(s) => {
                let (tcp, session) = s.get_ref().get_ref();
                ConnInfo::tls(tcp.peer_addr().ok(), session.peer_certificates())
            }
        }
    }
}

macro_rules! delegate {
    ($self:ident, $s:ident => $e:expr) => {
        match $self.get_mut() {
            Conn::Plain($s) => $e,
            Conn::Tls($s) => $e,
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
        match self {
            Conn::Plain(s) => s.is_write_vectored(),
            Conn::Tls(s) => s.is_write_vectored(),
        }
    }
}

/// The stream of accepted connections `serve_with_incoming*` takes.
pub type Incoming = tokio_stream::wrappers::ReceiverStream<io::Result<Conn>>;

/// Accepts on `listener`; with an acceptor every connection is handshaken
/// first (or, on the client port, passed on as plaintext for the guard to
/// refuse with a clear message); with `recheck`, the material the acceptor
/// follows, each TLS connection is closed once its peer's chain no longer
/// verifies after a reload.
pub(super) fn accept(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    port: Port,
    recheck: Option<Arc<Store>>,
) -> Incoming {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let handshakes = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
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
            // Nagle plus delayed ACKs would add ~40 ms to small replies.
            let _ = tcp.set_nodelay(true);
            let Some(acceptor) = tls.clone() else {
                if tx.send(Ok(Conn::Plain(tcp))).await.is_err() {
                    return;
                }
                continue;
            };
            let (tx, recheck) = (tx.clone(), recheck.clone());
            tokio::spawn(async move {
                let shake = handshake(tcp, acceptor, port, recheck, remote);
                let shaken = tokio::time::timeout(HANDSHAKE_TIMEOUT, shake).await;
                drop(slot);
                match shaken {
                    Ok(Ok(conn)) => {
                        let _ = tx.send(Ok(conn)).await;
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
) -> Conn {
    let Some(store) = recheck else {
        return Conn::Tls(Box::new(Rechecked::unwatched(s)));
    };
    let chain = s.get_ref().1.peer_certificates().map(<[_]>::to_vec);
    let side = Side::Accepted {
        required: port == Port::Internode,
    };
    let s = Rechecked::watch(s, &store, chain.as_deref(), side, port, remote.to_string());
    Conn::Tls(Box::new(s))
}

/// A refused connection: the metric's reason and a message for the log.
struct Refusal(&'static str, String);

async fn handshake(
    tcp: TcpStream,
    acceptor: TlsAcceptor,
    port: Port,
    recheck: Option<Arc<Store>>,
    remote: SocketAddr,
) -> Result<Conn, Refusal> {
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
            Port::Client => Ok(Conn::Plain(tcp)),
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
