//! A dialled stream whose peer's first bytes are read before hyper gets it
//! (`dial.rs`): under TLS 1.3 the peer's refusal of this node's certificate
//! arrives then, and fails the connect before any call is written.
//!
//! Owns: the first read and giving its bytes back. Must not: interpret
//! them, or write anything.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A dialled stream whose peer's first bytes were read before it is used
/// (see `Tls::endpoint_noted`); they are read again first.
pub struct Primed<S> {
    inner: S,
    head: Vec<u8>,
    at: usize,
}

impl<S: AsyncRead + Unpin> Primed<S> {
    /// Waits for the peer's first bytes on `inner`: its refusal of this
    /// node's certificate is an error here, before anything is sent.
    pub(super) async fn first_bytes(mut inner: S) -> io::Result<Primed<S>> {
        use tokio::io::AsyncReadExt;
        let mut head = vec![0u8; 1024];
        let n = inner.read(&mut head).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the peer closed the connection before answering",
            ));
        }
        head.truncate(n);
        Ok(Primed { inner, head, at: 0 })
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Primed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.at < self.head.len() {
            let n = buf.remaining().min(self.head.len() - self.at);
            let at = self.at;
            buf.put_slice(&self.head[at..at + n]);
            self.at += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Primed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
