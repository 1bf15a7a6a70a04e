//! One host cannot take every place of a port (note27 "Left (issue 12)"):
//! an address holding its cap of connections, or its cap of handshakes in
//! progress, does not stop another address from connecting. Real sockets
//! on loopback, where 127.0.0.x are distinct addresses. Real time: the
//! bounds below only end a failing test (a stalled connection would wait
//! for the 10 s handshake deadline). Must not: start node processes.

use super::tests::{cluster_dir, store};
use super::*;
use std::net::{IpAddr, Ipv4Addr};
use tokio::net::TcpStream;
use tokio_stream::StreamExt;
use tonic::transport::server::Connected;

const HOG: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const OTHER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);

/// A connection to `addr` from `local`.
async fn connect_from(local: Ipv4Addr, addr: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((local, 0))).unwrap();
    socket.connect(addr).await.unwrap()
}

/// Connections `incoming` hands on until one from `who` (bounded): how
/// many came from each address before it.
async fn until_one_from(incoming: &mut Incoming, who: Ipv4Addr) -> Vec<IpAddr> {
    let mut before = Vec::new();
    let wait = async {
        while let Some(conn) = incoming.next().await {
            let conn = conn.expect("accepted");
            let remote = conn.connect_info().remote.expect("a remote").ip();
            if remote == IpAddr::V4(who) {
                return;
            }
            before.push(remote);
        }
    };
    let bound = Duration::from_secs(5);
    let came = tokio::time::timeout(bound, wait).await;
    assert!(came.is_ok(), "no connection from {who} within {bound:?}");
    before
}

#[tokio::test]
async fn an_address_at_its_connection_cap_does_not_stop_another() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let caps = Caps {
        connections: 8,
        connections_per_address: 4,
        ..Caps::default()
    };
    let mut incoming = Tls::insecure().incoming_limited(listener, Port::Client, caps);
    let mut hog = Vec::new();
    for _ in 0..8 {
        hog.push(connect_from(HOG, addr).await);
    }
    let _other = connect_from(OTHER, addr).await;
    let before = until_one_from(&mut incoming, OTHER).await;
    assert_eq!(
        before.len(),
        4,
        "the hog's connections handed on: {before:?}"
    );
}

#[tokio::test]
async fn an_address_holding_silent_handshakes_does_not_stall_another() {
    let cluster = cluster_dir(&["n1", "b"]);
    let server = Tls(Some(store(cluster.path(), "n1")));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut incoming = server.incoming(listener, Port::Internode);
    // Silent: TCP only, never a TLS byte; as many as the port's handshakes.
    let mut hog = Vec::new();
    for _ in 0..MAX_HANDSHAKES {
        hog.push(connect_from(HOG, addr).await);
    }
    let client = Tls::client_config(&store(cluster.path(), "b"), "n1");
    let dial = async {
        let tcp = connect_from(OTHER, addr).await;
        let name = ServerName::IpAddress(addr.ip().into());
        let tls = tokio_rustls::TlsConnector::from(client)
            .connect(name, tcp)
            .await;
        tls.expect("the handshake of another address")
    };
    let (_tls, before) = tokio::join!(dial, until_one_from(&mut incoming, OTHER));
    assert!(before.is_empty(), "{before:?}");
}
