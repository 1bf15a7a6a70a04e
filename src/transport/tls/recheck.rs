//! Open connections against a reloaded CA. A TLS connection's peer chain is
//! verified once, at its handshake; HTTP/2 connections live for hours (with
//! keep-alives every 10 s), so after a rotation that retires a CA, a node
//! still holding a certificate of it would keep gossiping and replicating
//! on the connection it already had. Every TLS connection whose peer
//! presented a certificate therefore verifies that chain again each time
//! the node's material is reloaded, and every [`RECHECK_EVERY`] besides
//! (a peer's certificate expires while no file changes here), against the
//! current roots and the current time; one that no longer verifies is
//! closed: its next read or write fails, the HTTP/2
//! server (or channel) on it ends, and the peer has to reconnect with a full
//! handshake under the current CA (sessions are never resumed).
//!
//! Owns: the re-verification and the closing. Must not: accept, dial, or
//! judge identities beyond the chain (the guard and the dialling verifier do).

use super::material::Store;
use super::verifiers::{Anchors, NodeVerifier};
use super::{refused, Port};
use futures::task::AtomicWaker;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;

/// How often an open connection verifies its peer's chain again with no
/// reload: an expired certificate is caught within this.
pub const RECHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// How the peer's chain is verified again: as the handshake did.
#[derive(Debug, Clone)]
pub(super) enum Side {
    /// An accepted connection: a client certificate (required on the
    /// internode port).
    Accepted { required: bool },
    /// A dialled peer: a server certificate naming `expect` (any node of the
    /// CA for a seed).
    Dialled { expect: Option<String> },
}

/// A stream that fails once its peer's chain no longer verifies.
pub struct Rechecked<S> {
    inner: S,
    shared: Arc<Shared>,
    /// Dropped with the stream: ends its watcher.
    _stop: Option<oneshot::Sender<()>>,
}

#[derive(Default)]
struct Shared {
    retired: AtomicBool,
    waker: AtomicWaker,
}

/// The error a retired connection's reads and writes get.
fn retired() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "closed: the peer's certificate no longer verifies (a reloaded CA, or it expired)",
    )
}

impl<S> Rechecked<S> {
    /// `inner`, never re-verified (material that does not reload).
    pub(super) fn unwatched(inner: S) -> Self {
        Rechecked {
            inner,
            shared: Arc::default(),
            _stop: None,
        }
    }

    /// `inner`, whose peer presented `chain` (leaf first), re-verified on
    /// every reload of `store` and every [`RECHECK_EVERY`] until dropped;
    /// without a chain (a client without a certificate) there is nothing
    /// to re-verify.
    pub(super) fn watch(
        inner: S,
        store: &Arc<Store>,
        chain: Option<&[CertificateDer<'_>]>,
        side: Side,
        port: Port,
        peer: String,
    ) -> Self {
        let shared = Arc::new(Shared::default());
        let chain: Vec<CertificateDer<'static>> = chain
            .unwrap_or_default()
            .iter()
            .map(|c| c.clone().into_owned())
            .collect();
        if chain.is_empty() {
            return Rechecked {
                inner,
                shared,
                _stop: None,
            };
        }
        let (stop, mut stopped) = oneshot::channel::<()>();
        let mut reloads = store.reloads();
        let (store, flag) = (store.clone(), shared.clone());
        tokio::spawn(async move {
            let start = tokio::time::Instant::now() + RECHECK_EVERY;
            let mut hourly = tokio::time::interval_at(start, RECHECK_EVERY);
            hourly.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = &mut stopped => return,
                    changed = reloads.changed() => if changed.is_err() { return },
                    _ = hourly.tick() => {}
                }
                if let Err(e) = verify(&store, &chain, &side) {
                    flag.retired.store(true, Ordering::Release);
                    flag.waker.wake();
                    refused(
                        port,
                        "retired",
                        &format!("{peer}: closing the connection, its certificate no longer verifies: {e}"),
                    );
                    return;
                }
            }
        });
        Rechecked {
            inner,
            shared,
            _stop: Some(stop),
        }
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Registers the task to wake on retirement; whether it is retired.
    fn is_retired(&self, cx: &Context<'_>) -> bool {
        self.shared.waker.register(cx.waker());
        self.shared.retired.load(Ordering::Acquire)
    }
}

/// Verifies `chain` (leaf first) as its handshake did, against `store`'s
/// current roots, now.
fn verify(
    store: &Arc<Store>,
    chain: &[CertificateDer<'static>],
    side: &Side,
) -> Result<(), rustls::Error> {
    let (leaf, intermediates) = chain.split_first().expect("a non-empty chain");
    let now = UnixTime::now();
    match side {
        Side::Accepted { required } => {
            let m = store.current();
            let verifier = if *required { &m.required } else { &m.optional };
            verifier
                .verify_client_cert(leaf, intermediates, now)
                .map(|_| ())
        }
        Side::Dialled { expect } => {
            let verifier = NodeVerifier {
                anchors: Anchors::Live(store.clone()),
                expect: expect.clone(),
            };
            // The verifier checks the node identity, not the name dialled.
            let name = ServerName::try_from("geokv").expect("a valid DNS name");
            verifier
                .verify_server_cert(leaf, intermediates, &name, &[], now)
                .map(|_| ())
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Rechecked<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.is_retired(cx) {
            return Poll::Ready(Err(retired()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rechecked<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.is_retired(cx) {
            return Poll::Ready(Err(retired()));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.is_retired(cx) {
            return Poll::Ready(Err(retired()));
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.is_retired(cx) {
            return Poll::Ready(Err(retired()));
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
