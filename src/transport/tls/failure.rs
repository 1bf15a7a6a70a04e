//! What a failed TLS handshake means, in words an operator can act on: the
//! rustls error is found in an error's source chain ([`rustls_cause`]: a
//! dial's `io::Error` under tonic's connect error) and described by who
//! refused whom and why ([`explain`]). Under TLS 1.3 the dialling side
//! finishes its handshake before the server has checked its certificate: a
//! refusal then arrives as an alert on the first read, the HTTP/2
//! connection ends, and the call queued on it fails with hyper's bare
//! "operation was canceled". So each dialled connection notes the TLS
//! failure it met before the peer sent anything ([`Noted`] into the
//! channel's [`LastFailure`]), and the caller reads it back for that call.
//!
//! Owns: finding, describing and noting TLS failures. Must not: retry, or
//! decide what a failed call means for a request (`transport::error` does).

use parking_lot::Mutex;
use rustls::{AlertDescription as Alert, CertificateError as Cert};
use std::error::Error;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The rustls error in `err`'s source chain, if any. An `io::Error`
/// wrapping one (as tokio-rustls reports it) is looked into: its
/// `source()` skips the wrapped error itself.
pub fn rustls_cause<'a>(err: &'a (dyn Error + 'static)) -> Option<&'a rustls::Error> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(r) = e.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(inner) = e.downcast_ref::<io::Error>().and_then(|io| io.get_ref()) {
            if let Some(r) = rustls_cause(inner) {
                return Some(r);
            }
        }
        next = e.source();
    }
    None
}

/// How an error message names the node `peer_id`: "the seed" for a
/// [`super::seed_id`], else "the peer".
pub fn peer_word(peer_id: &str) -> &'static str {
    if peer_id.starts_with(super::SEED_PREFIX) {
        "the seed"
    } else {
        "the peer"
    }
}

/// `err` in words: who refused whose certificate and why. `peer` names the
/// other side ("the seed", "the peer").
pub fn explain(err: &rustls::Error, peer: &str) -> String {
    use rustls::Error as E;
    match err {
        E::InvalidCertificate(c) => format!("{peer}'s certificate {}", local_verdict(c)),
        E::NoCertificatesPresented => format!("{peer} presented no certificate"),
        E::AlertReceived(a) => remote_verdict(a, peer),
        E::General(m) if m.contains("certificate") => m.replace("the peer", peer),
        other => format!("TLS with {peer} failed: {other}"),
    }
}

/// Why this node refused the peer's certificate.
fn local_verdict(c: &Cert) -> String {
    match c {
        Cert::UnknownIssuer => "is not signed by this node's CA (unknown issuer)".into(),
        Cert::Expired | Cert::ExpiredContext { .. } => "has expired".into(),
        Cert::NotValidYet | Cert::NotValidYetContext { .. } => "is not valid yet".into(),
        Cert::Revoked => "is revoked".into(),
        Cert::BadSignature => "is not signed by this node's CA (an issuer of the same \
             name but another key: bad signature)"
            .into(),
        Cert::BadEncoding => "is malformed".into(),
        Cert::NotValidForName | Cert::NotValidForNameContext { .. } => {
            "does not name the node dialled".into()
        }
        other => format!("was refused ({other:?})"),
    }
}

/// What the peer's alert says about this node's certificate.
fn remote_verdict(a: &Alert, peer: &str) -> String {
    let why = match a {
        Alert::UnknownCA => format!("it is not signed by {peer}'s CA (alert: unknown CA)"),
        // What rustls answers a certificate whose issuer has the CA's name
        // but another key (another cluster's CA of the same name).
        Alert::DecryptError => format!(
            "its signature does not verify: signed by another CA of the same name as {peer}'s? \
             (alert: decrypt error)"
        ),
        Alert::CertificateExpired => "it has expired (alert: certificate expired)".into(),
        Alert::CertificateRevoked => "it is revoked (alert: certificate revoked)".into(),
        Alert::CertificateRequired => {
            return format!("{peer} requires a certificate and this node presented none")
        }
        Alert::BadCertificate | Alert::CertificateUnknown | Alert::UnsupportedCertificate => {
            return format!("{peer} refused this node's certificate (alert: {a:?})")
        }
        other => return format!("{peer} ended the TLS handshake (alert: {other:?})"),
    };
    format!("{peer} refused this node's certificate: {why}")
}

/// The TLS failure last met by one dialled channel before its peer sent
/// anything (see the module doc); cleared by each handshake.
#[derive(Debug, Clone, Default)]
pub struct LastFailure(Arc<Mutex<Option<rustls::Error>>>);

impl LastFailure {
    /// Keeps `err`'s rustls cause, if it has one.
    pub(super) fn note(&self, err: &io::Error) {
        if let Some(r) = rustls_cause(err) {
            *self.0.lock() = Some(r.clone());
        }
    }

    pub(super) fn clear(&self) {
        *self.0.lock() = None;
    }

    /// The failure in words (see [`explain`]), if one was noted.
    pub fn explain(&self, peer: &str) -> Option<String> {
        self.0.lock().as_ref().map(|e| explain(e, peer))
    }
}

/// A dialled stream noting into its [`LastFailure`] a TLS error met before
/// the peer's first bytes (an alert refusing this node's certificate);
/// after those, errors are the connection's, not the handshake's.
pub struct Noted<S> {
    inner: S,
    failure: Option<LastFailure>,
}

impl<S> Noted<S> {
    pub(super) fn new(inner: S, failure: LastFailure) -> Self {
        Noted {
            inner,
            failure: Some(failure),
        }
    }

    fn see<T>(&mut self, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if let (Poll::Ready(Err(e)), Some(f)) = (&r, &self.failure) {
            f.note(e);
        }
        r
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Noted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.failure = None;
        }
        self.see(r)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Noted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.see(r)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        self.see(r)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.see(r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
