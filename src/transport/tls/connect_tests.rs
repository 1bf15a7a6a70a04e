//! A peer that never answers the connect (its host drops SYNs, or it
//! accepts and then stays silent) fails an internode call as "not sent"
//! once the connect budget is spent, on the TLS and the plaintext path:
//! nothing was written, so a forwarded write may try the next replica
//! (review-final27 H1). Real loopback sockets, the clock paused. Must not:
//! start node processes.

use super::tests::{cluster_dir, store};
use super::*;
use crate::transport::faults::Faults;
use crate::transport::testing::{dropping_syns, node};
use crate::transport::{Peers, TransportError};

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
/// own timers expire first. No connection ever read their requests, so
/// the gate (`transport/gate.rs`) makes every one "not sent".
#[tokio::test]
async fn calls_queued_behind_a_failed_tls_connect_are_not_sent() {
    let cluster = cluster_dir(&["me"]);
    let (addr, _listener, _filled) = dropping_syns().await;
    for err in calls(Tls(Some(store(cluster.path(), "me"))), addr, 6).await {
        assert_not_sent(&err);
    }
}

#[tokio::test]
async fn calls_queued_behind_a_failed_plaintext_connect_are_not_sent() {
    let (addr, _listener, _filled) = dropping_syns().await;
    for err in calls(Tls::insecure(), addr, 6).await {
        assert_not_sent(&err);
    }
}

#[tokio::test]
async fn calls_queued_behind_a_silent_tls_handshake_are_not_sent() {
    let cluster = cluster_dir(&["me"]);
    let addr = silent().await;
    for err in calls(Tls(Some(store(cluster.path(), "me"))), addr, 6).await {
        assert_not_sent(&err);
    }
}

/// The same for replica writes through the peer's batching lane: a batch
/// queued behind a failed connect was never read, so each entry in it is
/// "not sent" (review-conn28 M1): its caller's timer ends before the
/// batch's call, and, the last of the batch to give up, abandons the
/// batch's gate (review-conn29 M1, `replica_batch/claim.rs`).
#[tokio::test]
async fn batched_writes_queued_behind_a_failed_tls_connect_are_not_sent() {
    let cluster = cluster_dir(&["me"]);
    let (addr, _listener, _filled) = dropping_syns().await;
    let me = node("me", SocketAddr::from(([127, 0, 0, 1], 1)));
    let tls = Tls(Some(store(cluster.path(), "me")));
    let peers = Arc::new(Peers::new(me, Arc::new(Faults::new(false)), &tls));
    let n1 = node("n1", addr);
    tokio::time::pause();
    let writes = (0..6u64).map(|i| {
        let (peers, n1) = (&peers, &n1);
        async move {
            tokio::time::sleep(Duration::from_millis(100 * i)).await;
            let req = crate::proto::v1::internode::ReplicaWriteRequest {
                key: bytes::Bytes::from(format!("k{i}")),
                ..Default::default()
            };
            let written = peers.replica_write_batched(n1, req, Duration::from_secs(2));
            written.await.expect_err("nobody answers")
        }
    });
    for err in futures::future::join_all(writes).await {
        assert_not_sent(&err);
    }
}
