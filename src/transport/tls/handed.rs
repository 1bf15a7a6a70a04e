//! Whether a call could have been written at all: every connection a
//! channel's connector hands to hyper (TLS or plaintext) is counted into
//! its [`LastFailure`] while it lives. Nothing classifies a call by these
//! counts today: a call whose own timer expired with no connection open
//! stays "unknown", because tonic's Buffer worker may hand it to a
//! connection made just as the timer fires (review-conn28b H1). Kept for
//! the sound fix (a first-read-wins flag on the request body) and its
//! tests; review-conn28 M1 is open (issue 12).
//!
//! Owns: the counts and the verdict. Must not: guess when unsure — a
//! connection open at the mark, or one handed over since, may have carried
//! the call, and the verdict is then "unknown".

use super::failure::{LastFailure, Mark};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

impl LastFailure {
    /// Whether no connection that the call begun at `mark` may have been
    /// written on existed: none was open at the mark (one that closed
    /// before it cannot carry the call, which did not exist yet) and none
    /// was handed to hyper since. Both counts move under one lock, so a
    /// connection handed before the mark was either open at it or closed.
    pub fn never_connected_since(&self, mark: Mark) -> bool {
        let log = self.0.lock();
        mark.live == 0 && log.handed == mark.handed
    }
}

/// A connection handed to hyper, counted in its channel's [`LastFailure`]
/// from before hyper gets it until it is dropped.
pub struct Counted<S> {
    inner: S,
    log: LastFailure,
}

impl<S> Counted<S> {
    pub(super) fn new(inner: S, log: LastFailure) -> Self {
        {
            let mut l = log.0.lock();
            l.handed += 1;
            l.live += 1;
        }
        Counted { inner, log }
    }
}

impl<S> Drop for Counted<S> {
    fn drop(&mut self) {
        self.log.0.lock().live -= 1;
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(log: &LastFailure) -> Counted<tokio::io::DuplexStream> {
        Counted::new(tokio::io::duplex(64).0, log.clone())
    }

    #[test]
    fn a_call_is_unsent_only_if_no_connection_could_have_carried_it() {
        let log = LastFailure::default();
        let gone = conn(&log);
        drop(gone);
        // A connection that closed before the call began did not carry it.
        let mark = log.mark();
        assert!(log.never_connected_since(mark));
        // One handed over since may have.
        let later = conn(&log);
        assert!(!log.never_connected_since(mark));
        drop(later);
        assert!(!log.never_connected_since(mark), "closed since, after it");
        // One open when the call began may have, even if closed since.
        let open = conn(&log);
        let mark = log.mark();
        drop(open);
        assert!(!log.never_connected_since(mark));
    }
}
