//! What a failed TLS handshake means, in words an operator can act on: the
//! rustls error is found in an error's source chain ([`rustls_cause`]: a
//! dial's `io::Error` under tonic's connect error) and described by who
//! refused whom and why ([`explain`]). Under TLS 1.3 the dialling side
//! finishes its handshake before the server has checked its certificate: a
//! refusal then arrives as an alert on the first read, the HTTP/2
//! connection ends, and the call queued on it fails with hyper's bare
//! "operation was canceled". So each dialled connection notes how it ended
//! ([`Noted`] into the channel's [`LastFailure`], per connection), and the
//! caller reads back the failure of the connection its call went on.
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

/// Connections of one channel remembered; a call whose connections were
/// forgotten (a channel reconnecting that often) is told nothing.
const KEPT: usize = 16;

/// The TLS failures of one dialled channel's connections, each kept with
/// the connection it ended (see the module doc). A call is told a failure
/// only if its own connection met it: tonic's lazy channel reconnects at
/// once after a refused connection, so a failure noted "last" may belong
/// to an older connection than the call's, and telling a call sent on a
/// newer one "not sent" would wrongly say "applied: no".
#[derive(Debug, Clone, Default)]
pub struct LastFailure(Arc<Mutex<Log>>);

#[derive(Debug, Default)]
struct Log {
    /// The id of the next connection.
    next: u64,
    /// Events so far (a clock ordering closes against calls' starts).
    clock: u64,
    conns: std::collections::VecDeque<Conn>,
}

/// What one connection did, as far as a call cares.
#[derive(Debug)]
struct Conn {
    id: u64,
    /// The peer sent bytes (so the handshake passed its checks).
    answered: bool,
    /// The TLS error that ended it before the peer sent anything.
    refused: Option<rustls::Error>,
    /// When it ended (on [`Log::clock`]), if it has.
    closed: Option<u64>,
}

/// Where a call begins among its channel's connections ([`LastFailure::mark`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    /// The newest connection when the call began (the one it goes on if
    /// that one is open), or the next one.
    first: u64,
    at: u64,
}

impl Log {
    fn conn(&mut self, id: u64) -> Option<&mut Conn> {
        self.conns.iter_mut().find(|c| c.id == id)
    }

    fn close(&mut self, id: u64, refused: Option<rustls::Error>) {
        self.clock += 1;
        let clock = self.clock;
        if let Some(c) = self.conn(id).filter(|c| c.closed.is_none()) {
            c.closed = Some(clock);
            if !c.answered {
                c.refused = refused;
            }
        }
    }
}

impl LastFailure {
    /// A new connection (TCP connected, its TLS handshake next): its id.
    pub(super) fn open(&self) -> u64 {
        let mut log = self.0.lock();
        let id = log.next;
        log.next += 1;
        log.conns.push_back(Conn {
            id,
            answered: false,
            refused: None,
            closed: None,
        });
        while log.conns.len() > KEPT {
            log.conns.pop_front();
        }
        id
    }

    /// Connection `id` ended with `err`: kept if it is a TLS error met
    /// before the peer sent anything.
    pub(super) fn ended(&self, id: u64, err: Option<&io::Error>) {
        let refused = err.and_then(|e| rustls_cause(e)).cloned();
        self.0.lock().close(id, refused);
    }

    pub(super) fn answered(&self, id: u64) {
        if let Some(c) = self.0.lock().conn(id) {
            c.answered = true;
        }
    }

    /// A call begins now (read it back with [`Self::explain_since`]).
    pub fn mark(&self) -> Mark {
        let log = self.0.lock();
        Mark {
            first: log.next.saturating_sub(1),
            at: log.clock,
        }
    }

    /// The TLS failure that ended the call begun at `mark`, in words (see
    /// [`explain`]): told only when every connection the call may have
    /// gone on — the newest at its start unless that had already ended,
    /// and every later one that has ended — was refused at the handshake
    /// before the peer sent anything. One that answered, ended otherwise,
    /// or was forgotten means the call may have reached the peer: nothing.
    pub fn explain_since(&self, mark: Mark, peer: &str) -> Option<String> {
        let log = self.0.lock();
        let oldest = log.conns.front().map_or(log.next, |c| c.id);
        if mark.first < oldest && mark.first < log.next {
            return None;
        }
        let mut refused = None;
        for c in log.conns.iter().filter(|c| c.id >= mark.first) {
            match c.closed {
                // Ended before the call began: it did not carry it.
                Some(at) if at <= mark.at => {}
                // Open and silent: the call did not end on it.
                None if !c.answered => {}
                _ if c.answered => return None,
                _ => match &c.refused {
                    Some(e) => refused = Some(e),
                    None => return None,
                },
            }
        }
        refused.map(|e| explain(e, peer))
    }
}

/// A dialled stream noting into its [`LastFailure`] how its connection
/// ended: a TLS error met before the peer's first bytes (an alert refusing
/// this node's certificate), or otherwise; and whether the peer answered.
pub struct Noted<S> {
    inner: S,
    log: LastFailure,
    id: u64,
    answered: bool,
    closed: bool,
}

impl<S> Noted<S> {
    pub(super) fn new(inner: S, log: LastFailure, id: u64) -> Self {
        Noted {
            inner,
            log,
            id,
            answered: false,
            closed: false,
        }
    }

    fn see<T>(&mut self, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if let Poll::Ready(Err(e)) = &r {
            self.close(Some(e));
        }
        r
    }

    fn close(&mut self, err: Option<&io::Error>) {
        if !self.closed {
            self.closed = true;
            self.log.ended(self.id, err);
        }
    }
}

impl<S> Drop for Noted<S> {
    fn drop(&mut self) {
        self.close(None);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Noted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let room = buf.remaining() > 0;
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) {
            if buf.filled().len() > before {
                if !self.answered {
                    self.answered = true;
                    self.log.answered(self.id);
                }
            } else if room {
                // The peer closed the connection.
                self.close(None);
            }
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
