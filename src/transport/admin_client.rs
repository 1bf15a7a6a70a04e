//! One HTTP/1.1 exchange with a node's admin port, in plaintext or over
//! HTTPS (a connector from `transport::tls::admin`): the CLI's admin
//! commands, a removal's finisher polling gainers, tools and tests. The
//! HTTP itself is hyper's client connection (over hyper-util's `TokioIo`);
//! this module only dials (TCP, then TLS) and maps failures to [`CallError`].
//!
//! Owns: the exchange. Must not: decide what to ask or retry.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use std::collections::BTreeMap;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsConnector;

/// A node's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// Header names lower-cased; a repeated header keeps its last value.
    pub headers: BTreeMap<String, String>,
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
    Http { addr: String, source: hyper::Error },
    #[error("the admin port {addr}: a request hyper refuses to send: {source}")]
    Request {
        addr: String,
        source: hyper::http::Error,
    },
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
    let mut request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, addr)
        .header(hyper::header::CONNECTION, "close");
    if let Some(t) = token {
        request = request.header(hyper::header::AUTHORIZATION, format!("Bearer {}", t.trim()));
    }
    let request = request
        .body(Full::new(Bytes::from(body.to_string())))
        .map_err(|source| CallError::Request {
            addr: addr.to_string(),
            source,
        })?;
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|source| CallError::Connect {
            addr: addr.to_string(),
            source,
        })?;
    let _ = tcp.set_nodelay(true);
    let answer = match tls {
        None => exchange(tcp, request).await,
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
            exchange(stream, request).await
        }
    };
    answer.map_err(|source| CallError::Http {
        addr: addr.to_string(),
        source,
    })
}

/// One request on a fresh connection through hyper's HTTP/1.1 client.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    stream: S,
    request: hyper::Request<Full<Bytes>>,
) -> Result<Answer, hyper::Error> {
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    // Drives the connection; it ends with the exchange (`connection: close`).
    let driver = tokio::spawn(connection);
    let answer = async {
        let response = sender.send_request(request).await?;
        let status = response.status().as_u16();
        let headers = (response.headers().iter())
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = response.into_body().collect().await?.to_bytes();
        Ok(Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }
    .await;
    driver.abort();
    answer
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A one-shot HTTP server on loopback: reads one request head, sends
    /// `answer` and closes. Returns its address and the head it read.
    async fn one_shot(answer: &'static str) -> (String, tokio::task::JoinHandle<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let served = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            while !head.ends_with(b"\r\n\r\n") {
                let mut b = [0u8; 1];
                s.read_exact(&mut b).await.unwrap();
                head.push(b[0]);
            }
            s.write_all(answer.as_bytes()).await.unwrap();
            s.shutdown().await.unwrap();
            String::from_utf8(head).unwrap()
        });
        (addr, served)
    }

    /// A chunked answer is decoded: the hand-written client took the chunk
    /// sizes for body text ("5\r\nhello\r\n…").
    #[tokio::test]
    async fn a_chunked_answer_is_decoded_and_the_token_is_sent() {
        let (addr, served) = one_shot(
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nContent-Type: text/plain\r\n\r\n\
             5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        )
        .await;
        let answer = call(
            &addr,
            None,
            "POST",
            "/repair?dc=dc2",
            Some(" ops:s3cret\n"),
            "",
        )
        .await
        .unwrap();
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body, "hello world");
        assert!(answer.is_success());
        let content_type = answer.headers.get("content-type").map(String::as_str);
        assert_eq!(content_type, Some("text/plain"));
        let head = served.await.unwrap().to_ascii_lowercase();
        assert!(
            head.starts_with("post /repair?dc=dc2 http/1.1\r\n"),
            "{head}"
        );
        assert!(
            head.contains("authorization: bearer ops:s3cret\r\n"),
            "{head}"
        );
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_connect_error_and_garbage_an_http_one() {
        let (addr, served) = one_shot("SSH-2.0-OpenSSH\r\n\r\n").await;
        let err = call(&addr, None, "GET", "/health", None, "")
            .await
            .unwrap_err();
        assert!(matches!(err, CallError::Http { .. }), "{err:?}");
        served.await.unwrap();
        // The listener is gone now: nothing accepts on that port.
        let err = call(&addr, None, "GET", "/health", None, "")
            .await
            .unwrap_err();
        assert!(matches!(err, CallError::Connect { .. }), "{err:?}");
    }
}
