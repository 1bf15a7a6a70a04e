//! The accept side's bounds on TLS handshakes, over real sockets under a
//! paused clock (it advances by itself while every task waits): a peer that
//! connects and never handshakes is cut at [`HANDSHAKE_TIMEOUT`], and at
//! most [`MAX_HANDSHAKES`] handshakes run at once, so a flood of silent
//! connections makes the next one wait in the accept queue rather than
//! take a task and a socket each.
//!
//! Owns: these tests. Must not: share state between tests.

use super::tests::{cluster_dir, store};
use super::*;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_stream::StreamExt;

/// The internode port of a node n1 (and n2's store, to dial it) and its
/// accepted connections.
async fn port() -> (SocketAddr, Incoming, Arc<Store>) {
    let dir = cluster_dir(&["n1", "n2"]);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Every connection comes from 127.0.0.1: the per-address handshake cap
    // is raised to the port's so these tests see the port's own bound (the
    // per-address one has its own tests in `cap_tests`).
    let caps = Caps {
        handshakes_per_address: MAX_HANDSHAKES,
        ..Caps::default()
    };
    let incoming =
        Tls(Some(store(dir.path(), "n1"))).incoming_limited(listener, Port::Internode, caps);
    (addr, incoming, store(dir.path(), "n2"))
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_never_handshakes_is_cut_at_the_deadline() {
    let (addr, _incoming, _) = port().await;
    let began = Instant::now();
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut byte = [0u8; 1];
    let got = silent.read(&mut byte).await;
    assert!(matches!(got, Ok(0) | Err(_)), "closed: {got:?}");
    assert!(
        began.elapsed() >= HANDSHAKE_TIMEOUT,
        "{:?}",
        began.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn past_the_handshake_bound_a_connection_waits_for_a_slot() {
    let (addr, mut incoming, n2) = port().await;
    let mut silent = Vec::new();
    for _ in 0..MAX_HANDSHAKES {
        silent.push(TcpStream::connect(addr).await.unwrap());
    }
    let began = Instant::now();
    let connector = tokio_rustls::TlsConnector::from(Tls::client_config(&n2, "n1"));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let dial = connector.connect(ServerName::IpAddress(addr.ip().into()), tcp);
    let (dialled, accepted) = tokio::join!(dial, incoming.next());
    dialled.expect("the handshake completes once a slot is free");
    assert!(matches!(accepted, Some(Ok(_))));
    // Its handshake began only when the silent ones were cut.
    assert!(
        began.elapsed() >= HANDSHAKE_TIMEOUT,
        "{:?}",
        began.elapsed()
    );
}
