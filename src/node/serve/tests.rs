//! The internode server's handler timeout: a stuck unary handler is cut,
//! a hint stream that outlives the timeout is not.

use super::peer_server_with;
use crate::proto::v1::internode::internode_client::InternodeClient;
use crate::proto::v1::internode::internode_server::InternodeServer;
use crate::proto::v1::internode::*;
use crate::transport::testing::{Acks, Serves, Stub};
use std::time::Duration;
use tonic::Status;

/// How long the stub's handlers take: past the test server's timeout.
const SLOW: Duration = Duration::from_millis(1500);
const TIMEOUT: Duration = Duration::from_millis(300);

/// Answers `ReplicaWrite` after [`SLOW`]; `Stream` acknowledges each
/// batch after [`SLOW`]; nothing else.
struct Slow;

#[tonic::async_trait]
impl Serves for Slow {
    async fn replica_write(&self, _: ReplicaWriteRequest) -> Result<ReplicaWriteResponse, Status> {
        tokio::time::sleep(SLOW).await;
        Ok(ReplicaWriteResponse {})
    }
    async fn stream(&self, mut inbound: tonic::Streaming<StreamBatch>) -> Result<Acks, Status> {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            while let Ok(Some(batch)) = inbound.message().await {
                tokio::time::sleep(SLOW).await;
                let ack = StreamAck {
                    batch_id: batch.batch_id,
                    entries: Vec::new(),
                };
                if tx.send(Ok(ack)).await.is_err() {
                    break;
                }
            }
        });
        Ok(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx)))
    }
}

/// A replica handler that takes longer than the server's timeout is cut
/// (the caller sent no `grpc-timeout`, as replica calls do not); a hint
/// stream whose acknowledgements come later than the timeout still gets
/// every one of them.
#[tokio::test]
async fn a_stuck_handler_is_cut_and_a_long_stream_is_not() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    tokio::spawn(
        peer_server_with(TIMEOUT)
            .add_service(InternodeServer::new(Stub(Slow)))
            .serve_with_incoming(incoming),
    );
    let mut client = InternodeClient::connect(format!("http://{addr}"))
        .await
        .unwrap();

    let started = std::time::Instant::now();
    let cut = client.replica_write(ReplicaWriteRequest::default()).await;
    let status = cut.expect_err("cut by the server's timeout");
    assert_eq!(status.code(), tonic::Code::Cancelled, "{status:?}");
    assert!(started.elapsed() < SLOW, "cut before the handler finished");

    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let mut acks = client
        .stream(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .expect("the stream opens")
        .into_inner();
    for id in 1..=2u64 {
        let batch = StreamBatch {
            batch_id: id,
            ..Default::default()
        };
        tx.send(batch).await.unwrap();
        let ack = acks.message().await.expect("not cut").expect("an ack");
        assert_eq!(ack.batch_id, id);
    }
    assert!(
        started.elapsed() > TIMEOUT * 2 + SLOW,
        "outlived the timeout"
    );
}

/// The backstop cuts only handlers nobody waits for: it is above every
/// deadline a caller sets on an internode call (review H1 of 9ab29df: at
/// 30 s it cut repair's 120 s Merkle calls on large ranges every time).
#[test]
fn the_backstop_is_above_every_callers_deadline() {
    let merkle = crate::repair::session::SessionLimits::default().merkle_timeout;
    assert!(super::PEER_HANDLER_TIMEOUT > merkle, "{merkle:?}");
    assert!(super::PEER_HANDLER_TIMEOUT > crate::api::MAX_TIMEOUT);
}
