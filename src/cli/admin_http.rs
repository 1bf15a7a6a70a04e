//! The CLI's client of a node's admin port: one HTTP/1.0 exchange, with the
//! admin token (`--token` / `GEOKV_TOKEN`) as `authorization: Bearer` when
//! given, and an optional body.
//!
//! Owns the exchange only; what to ask is the subcommands'.
use anyhow::{bail, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The admin token a subcommand uses when given none: `GEOKV_TOKEN`.
pub fn env_token() -> Option<String> {
    std::env::var("GEOKV_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty())
}

/// One request to `endpoint`; the body of a 2xx answer, else an error with
/// the status and the node's message.
pub async fn request(
    endpoint: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> anyhow::Result<String> {
    let mut s = tokio::net::TcpStream::connect(endpoint)
        .await
        .with_context(|| format!("connecting to the admin port {endpoint}"))?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {}\r\n", t.trim()))
        .unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.0\r\nHost: {endpoint}\r\n{auth}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await?;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code: u16 = (head.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    if code == 401 && token.is_none() {
        bail!(
            "{endpoint} answered 401: {} (give the admin token: --token or GEOKV_TOKEN)",
            body.trim()
        );
    }
    if !(200..300).contains(&code) {
        bail!("{endpoint} answered {code}: {}", body.trim());
    }
    Ok(body.to_string())
}
