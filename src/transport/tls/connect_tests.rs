//! A peer that never answers the connect (its host drops SYNs, or it
//! accepts and then stays silent) fails an internode call as "not sent"
//! once the connect budget is spent, on the TLS and the plaintext path:
//! nothing was written, so a forwarded write may try the next replica
//! (review-final27 H1). Real loopback sockets, the clock paused. Must not:
//! start node processes.

use super::tests::{cluster_dir, store};
use super::*;
use crate::transport::faults::Faults;
use crate::transport::testing::node;
use crate::transport::{Peers, TransportError};

/// A listener whose accept queue is full and never drained: a further
/// connect's SYN is dropped by the kernel, as by a firewall or a dead
/// host. Returns its address and the connections that fill it.
async fn dropping_syns() -> (
    SocketAddr,
    tokio::net::TcpListener,
    Vec<tokio::net::TcpStream>,
) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = socket.local_addr().unwrap();
    let listener = socket.listen(1).unwrap();
    let mut filled = Vec::new();
    // Real time: the queue holds a connection or two; the first connect
    // that does not complete at once shows it full.
    for _ in 0..16 {
        let connect = tokio::net::TcpStream::connect(addr);
        match tokio::time::timeout(Duration::from_millis(200), connect).await {
            Ok(Ok(s)) => filled.push(s),
            _ => break,
        }
    }
    assert!(filled.len() < 16, "the accept queue never filled");
    (addr, listener, filled)
}

/// A listener that accepts every connection and never sends a byte.
async fn silent() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    addr
}

/// Node "me"'s call to a node "n1" at `addr`, with a deadline past the
/// connect budget: the error.
async fn call(tls: Tls, addr: SocketAddr) -> TransportError {
    let me = node("me", SocketAddr::from(([127, 0, 0, 1], 1)));
    let peers = Peers::new(me, Arc::new(Faults::new(false)), &tls);
    tokio::time::pause();
    peers
        .get_layout(&node("n1", addr), Duration::from_secs(2))
        .await
        .expect_err("nobody answers")
}

fn assert_not_sent(err: &TransportError) {
    assert!(matches!(err, TransportError::NotSent { .. }), "{err:?}");
    assert!(err.nothing_applied(), "{err:?}");
}

#[tokio::test]
async fn a_peer_dropping_syns_fails_a_tls_call_as_not_sent() {
    let cluster = cluster_dir(&["me"]);
    let (addr, _listener, _filled) = dropping_syns().await;
    let err = call(Tls(Some(store(cluster.path(), "me"))), addr).await;
    assert_not_sent(&err);
}

#[tokio::test]
async fn a_peer_dropping_syns_fails_a_plaintext_call_as_not_sent() {
    let (addr, _listener, _filled) = dropping_syns().await;
    let err = call(Tls::insecure(), addr).await;
    assert_not_sent(&err);
}

/// TCP connects, but the TLS handshake (or the peer's first bytes) never
/// comes: nothing was handed to HTTP/2, so nothing was sent either.
#[tokio::test]
async fn a_peer_silent_after_accepting_fails_a_tls_call_as_not_sent() {
    let cluster = cluster_dir(&["me"]);
    let err = call(Tls(Some(store(cluster.path(), "me"))), silent().await).await;
    assert_not_sent(&err);
}

/// Node "me"'s calls to "n1" at `addr`, one every 100 ms, all at once.
async fn calls(tls: Tls, addr: SocketAddr, n: u64) -> Vec<TransportError> {
    let me = node("me", SocketAddr::from(([127, 0, 0, 1], 1)));
    let peers = Peers::new(me, Arc::new(Faults::new(false)), &tls);
    let n1 = node("n1", addr);
    tokio::time::pause();
    let calls = (0..n).map(|i| {
        let (peers, n1) = (&peers, &n1);
        async move {
            tokio::time::sleep(Duration::from_millis(100 * i)).await;
            let layout = peers.get_layout(n1, Duration::from_secs(2)).await;
            layout.expect_err("nobody answers")
        }
    });
    futures::future::join_all(calls).await
}

/// review-conn28 M1: a failed connect is told to one queued call only; the
/// calls queued behind it wait for the channel's next connect and their
/// own timers expired first, "may have been applied" although no
/// connection ever existed to write them on. Every one is "not sent".
#[tokio::test]
#[ignore = "wanted, not delivered: a call queued behind a failed connect still times out as unknown; classifying it from connection counts races tonic's Buffer worker (review-conn28b H1); the fix is a first-read-wins flag on the request body"]
async fn calls_queued_behind_a_failed_tls_connect_are_not_sent() {
    let cluster = cluster_dir(&["me"]);
    let (addr, _listener, _filled) = dropping_syns().await;
    for err in calls(Tls(Some(store(cluster.path(), "me"))), addr, 6).await {
        assert_not_sent(&err);
    }
}

#[tokio::test]
#[ignore = "wanted, not delivered: a call queued behind a failed connect still times out as unknown; classifying it from connection counts races tonic's Buffer worker (review-conn28b H1); the fix is a first-read-wins flag on the request body"]
async fn calls_queued_behind_a_failed_plaintext_connect_are_not_sent() {
    let (addr, _listener, _filled) = dropping_syns().await;
    for err in calls(Tls::insecure(), addr, 6).await {
        assert_not_sent(&err);
    }
}

#[tokio::test]
#[ignore = "wanted, not delivered: a call queued behind a failed connect still times out as unknown; classifying it from connection counts races tonic's Buffer worker (review-conn28b H1); the fix is a first-read-wins flag on the request body"]
async fn calls_queued_behind_a_silent_tls_handshake_are_not_sent() {
    let cluster = cluster_dir(&["me"]);
    let addr = silent().await;
    for err in calls(Tls(Some(store(cluster.path(), "me"))), addr, 6).await {
        assert_not_sent(&err);
    }
}
