//! One HTTP/1.1 exchange with a node's admin port, in plaintext or over
//! HTTPS (a connector from `transport::tls::admin`): the CLI's admin
//! commands, a removal's finisher polling gainers, tools and tests.
//!
//! Owns: the exchange. Must not: decide what to ask or retry.

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_rustls::TlsConnector;

/// A node's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Answer {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Why an exchange failed before an answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("connecting to the admin port {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("TLS with the admin port {addr}: {source} (does the node run with TLS, and is --ca its cluster CA?)")]
    Tls {
        addr: String,
        source: std::io::Error,
    },
    #[error("the admin port {addr}: {source}")]
    Io {
        addr: String,
        source: std::io::Error,
    },
    #[error("the admin port {addr} sent no HTTP answer")]
    Malformed { addr: String },
}

/// Sends `method path` (with `token` as `authorization: Bearer`, and
/// `body`) to `addr` (host:port), over TLS when `tls` is given.
pub async fn call(
    addr: &str,
    tls: Option<&TlsConnector>,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> Result<Answer, CallError> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|source| CallError::Connect {
            addr: addr.to_string(),
            source,
        })?;
    let _ = tcp.set_nodelay(true);
    let auth = token
        .map(|t| format!("authorization: Bearer {}\r\n", t.trim()))
        .unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\n{auth}content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let raw = match tls {
        None => exchange(tcp, &request).await,
        Some(connector) => {
            let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
            let host = host.trim_start_matches('[').trim_end_matches(']');
            // The node's identity is checked, not this name (see tls::admin).
            let name = ServerName::try_from(host.to_string())
                .unwrap_or_else(|_| ServerName::try_from("geokv-node").expect("valid DNS name"));
            let stream = connector
                .connect(name, tcp)
                .await
                .map_err(|source| CallError::Tls {
                    addr: addr.to_string(),
                    source,
                })?;
            exchange(stream, &request).await
        }
    }
    .map_err(|source| CallError::Io {
        addr: addr.to_string(),
        source,
    })?;
    parse(&raw).ok_or_else(|| CallError::Malformed {
        addr: addr.to_string(),
    })
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    request: &str,
) -> std::io::Result<Vec<u8>> {
    s.write_all(request.as_bytes()).await?;
    s.flush().await?;
    let mut buf = Vec::new();
    match s.read_to_end(&mut buf).await {
        Ok(_) => Ok(buf),
        // A TLS peer closing without close_notify after a complete answer.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !buf.is_empty() => Ok(buf),
        Err(e) => Err(e),
    }
}

fn parse(raw: &[u8]) -> Option<Answer> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some(Answer {
        status,
        body: body.to_string(),
    })
}
