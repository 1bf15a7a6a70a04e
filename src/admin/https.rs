//! The admin port's listener when the node runs TLS: connections come
//! handshaken from [`Tls::incoming`] (`Port::Admin`), so handshakes run off
//! the accept loop under a deadline and a plaintext request is answered
//! with a clear `400` there.
//!
//! Owns: adapting that stream to axum's [`Listener`]. Must not: route.

use crate::transport::tls::{Conn, Incoming, Port, Tls};
use axum::serve::Listener;
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tokio_stream::StreamExt;

/// Handshaken admin connections.
pub struct HttpsListener {
    incoming: Incoming,
    local: SocketAddr,
}

impl HttpsListener {
    pub fn new(listener: TcpListener, tls: &Tls) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        Ok(HttpsListener {
            incoming: tls.incoming(listener, Port::Admin),
            local,
        })
    }
}

/// The client address of an HTTPS admin connection, as axum's
/// `ConnectInfo` (the guard limits failed authentications per address).
#[derive(Debug, Clone, Copy)]
pub struct Remote(pub Option<SocketAddr>);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, HttpsListener>>
    for Remote
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, HttpsListener>) -> Self {
        Remote(*stream.remote_addr())
    }
}

impl Listener for HttpsListener {
    type Io = Conn;
    type Addr = Option<SocketAddr>;

    async fn accept(&mut self) -> (Conn, Option<SocketAddr>) {
        loop {
            match self.incoming.next().await {
                Some(Ok(conn)) => {
                    let remote = tonic::transport::server::Connected::connect_info(&conn).remote;
                    return (conn, remote);
                }
                Some(Err(_)) => continue,
                // The accept task ended (shutdown): nothing more comes.
                None => std::future::pending().await,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Option<SocketAddr>> {
        Ok(Some(self.local))
    }
}
