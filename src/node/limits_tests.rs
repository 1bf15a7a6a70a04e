//! The HTTP/2 stream bound of both gRPC ports over a real socket: a client
//! that ignores the server's `SETTINGS_MAX_CONCURRENT_STREAMS` and opens
//! one stream past it on one connection gets exactly that stream refused
//! (`RST_STREAM(REFUSED_STREAM)`: nothing reached a handler, it may be
//! retried), its open streams stay open, and the server goes on answering.
//! The streams are held open by never ending their request bodies, so
//! nothing depends on timing. Must not: start node processes.

use super::*;
use std::io;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;
const END_HEADERS: u8 = 0x4;
const ACK: u8 = 0x1;
const REFUSED_STREAM: u32 = 0x7;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = len.to_be_bytes()[1..].to_vec();
    f.extend([kind, flags]);
    f.extend(stream.to_be_bytes());
    f.extend(payload);
    f
}

/// HPACK "literal header field without indexing, new name", no Huffman
/// (names and values here are under 127 bytes).
fn literal(block: &mut Vec<u8>, name: &str, value: &str) {
    block.push(0);
    block.push(name.len() as u8);
    block.extend(name.as_bytes());
    block.push(value.len() as u8);
    block.extend(value.as_bytes());
}

/// The HEADERS of a gRPC health check on `stream`, without END_STREAM: the
/// request body never comes, so the stream stays open.
fn open_call(stream: u32) -> Vec<u8> {
    let mut block = Vec::new();
    for (n, v) in [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", "/grpc.health.v1.Health/Check"),
        (":authority", "node"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ] {
        literal(&mut block, n, v);
    }
    frame(HEADERS, END_HEADERS, stream, &block)
}

/// Reads frames until a RST_STREAM or GOAWAY: (type, stream, error code).
async fn next_reset(conn: &mut TcpStream) -> io::Result<(u8, u32, u32)> {
    loop {
        let mut head = [0u8; 9];
        conn.read_exact(&mut head).await?;
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        let mut payload = vec![0u8; len];
        conn.read_exact(&mut payload).await?;
        let code_at = |i: usize| u32::from_be_bytes(payload[i..i + 4].try_into().unwrap());
        match head[3] {
            RST_STREAM => return Ok((RST_STREAM, stream, code_at(0))),
            GOAWAY => return Ok((GOAWAY, stream, code_at(4))),
            SETTINGS if head[4] & ACK == 0 => {
                conn.write_all(&frame(SETTINGS, ACK, 0, &[])).await?;
            }
            _ => {}
        }
    }
}

/// Serves a gRPC health service on loopback with `limits`' bounds.
async fn serve(limits: PortLimits) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (health, service) = tonic_health::server::health_reporter();
    health
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let mut server = limits.apply(tonic::transport::Server::builder());
    tokio::spawn(async move {
        let _keep = health;
        server
            .add_service(service)
            .serve_with_incoming(incoming)
            .await
    });
    addr
}

/// One client over the bound: the stream past it is refused, the others
/// stay open (no reset for them), and a new connection is served.
async fn one_past_the_bound_is_refused(limits: PortLimits) {
    let addr = serve(limits).await;
    let mut conn = TcpStream::connect(addr).await.unwrap();
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend(frame(SETTINGS, 0, 0, &[]));
    let bound = limits.max_concurrent_streams;
    for i in 0..=bound {
        out.extend(open_call(2 * i + 1));
    }
    conn.write_all(&out).await.unwrap();
    let last = 2 * bound + 1;
    let reset = next_reset(&mut conn).await.unwrap();
    assert_eq!(
        reset,
        (RST_STREAM, last, REFUSED_STREAM),
        "only stream {last} (the {}th) refused, with REFUSED_STREAM",
        bound + 1
    );

    // The node stays healthy: another connection is answered at once.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let answer = tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .expect("served beside the saturated connection");
    assert_eq!(answer.into_inner().status, 1, "SERVING");
    drop(conn);
}

#[tokio::test]
async fn a_client_past_the_client_ports_stream_bound_is_refused_and_the_node_serves_on() {
    one_past_the_bound_is_refused(ServerLimits::default().client).await;
}

#[tokio::test]
async fn a_peer_past_the_peer_ports_stream_bound_is_refused_and_the_node_serves_on() {
    one_past_the_bound_is_refused(ServerLimits::default().peer).await;
}
