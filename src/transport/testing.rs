//! A test peer on a loopback socket: a real tonic internode server whose
//! `ReplicaWrite`, `ReplicaBatch`, `Stream`, `LayoutPrepare`,
//! `LayoutAccept` and `SyncWal` a test supplies
//! ([`Serves`]), every other call UNIMPLEMENTED; or an **old** server, one
//! from before `ReplicaBatch`, whose routing table lacks that method, so
//! the generated server's own fallback answers UNIMPLEMENTED (nothing
//! built by hand). And a [`Peers`] that dials it. Test-only.
//!
//! Must not: hold assertions, or be used outside `#[cfg(test)]` code.

use super::faults::Faults;
use super::tls::Tls;
use super::Peers;
use crate::proto::v1::internode::internode_server::{Internode, InternodeServer};
use crate::proto::v1::internode::*;
use crate::topology::{NodeIdx, NodeInfo};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use tonic::codegen::{http, Service};
use tonic::server::NamedService;
use tonic::{Request, Response, Status};

/// The acknowledgements of a `Stream` call.
pub(crate) type Acks =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<StreamAck, Status>> + Send + 'static>>;

fn no() -> Status {
    Status::unimplemented("not served by this test peer")
}

/// What a test peer does with the calls it serves (each: UNIMPLEMENTED
/// unless the test says otherwise).
#[tonic::async_trait]
pub(crate) trait Serves: Send + Sync + 'static {
    async fn replica_write(&self, _: ReplicaWriteRequest) -> Result<ReplicaWriteResponse, Status> {
        Err(no())
    }
    async fn replica_batch(&self, _: ReplicaBatchRequest) -> Result<ReplicaBatchResponse, Status> {
        Err(no())
    }
    async fn replica_read(&self, _: ReplicaReadRequest) -> Result<ReplicaReadResponse, Status> {
        Err(no())
    }
    async fn replica_read_batch(
        &self,
        _: ReplicaReadBatchRequest,
    ) -> Result<ReplicaReadBatchResponse, Status> {
        Err(no())
    }
    async fn stream(&self, _: tonic::Streaming<StreamBatch>) -> Result<Acks, Status> {
        Err(no())
    }
    async fn layout_prepare(&self, _: LayoutPrepareRequest) -> Result<LayoutPaxosReply, Status> {
        Err(no())
    }
    async fn layout_accept(&self, _: LayoutAcceptRequest) -> Result<LayoutPaxosReply, Status> {
        Err(no())
    }
    async fn sync_wal(&self, _: SyncWalRequest) -> Result<SyncWalResponse, Status> {
        Err(no())
    }
}

/// The internode service over `S`.
pub(crate) struct Stub<S>(pub S);

#[tonic::async_trait]
impl<S: Serves> Internode for Stub<S> {
    async fn replica_write(
        &self,
        r: Request<ReplicaWriteRequest>,
    ) -> Result<Response<ReplicaWriteResponse>, Status> {
        self.0
            .replica_write(r.into_inner())
            .await
            .map(Response::new)
    }
    async fn replica_batch(
        &self,
        r: Request<ReplicaBatchRequest>,
    ) -> Result<Response<ReplicaBatchResponse>, Status> {
        self.0
            .replica_batch(r.into_inner())
            .await
            .map(Response::new)
    }
    async fn coordinate_write(
        &self,
        _: Request<CoordinateWriteRequest>,
    ) -> Result<Response<CoordinateWriteResponse>, Status> {
        Err(no())
    }
    async fn replica_read(
        &self,
        r: Request<ReplicaReadRequest>,
    ) -> Result<Response<ReplicaReadResponse>, Status> {
        self.0.replica_read(r.into_inner()).await.map(Response::new)
    }
    async fn replica_read_batch(
        &self,
        r: Request<ReplicaReadBatchRequest>,
    ) -> Result<Response<ReplicaReadBatchResponse>, Status> {
        self.0
            .replica_read_batch(r.into_inner())
            .await
            .map(Response::new)
    }
    type StreamStream = Acks;
    async fn stream(
        &self,
        r: Request<tonic::Streaming<StreamBatch>>,
    ) -> Result<Response<Acks>, Status> {
        self.0.stream(r.into_inner()).await.map(Response::new)
    }
    type AdoptStream = Acks;
    async fn adopt(
        &self,
        _: Request<tonic::Streaming<StreamBatch>>,
    ) -> Result<Response<Acks>, Status> {
        Err(no())
    }
    async fn gossip(&self, _: Request<GossipDigest>) -> Result<Response<GossipDigest>, Status> {
        Err(no())
    }
    async fn merkle(&self, _: Request<MerkleRequest>) -> Result<Response<MerkleResponse>, Status> {
        Err(no())
    }
    async fn range_scan(
        &self,
        _: Request<RangeScanRequest>,
    ) -> Result<Response<RangeScanResponse>, Status> {
        Err(no())
    }
    async fn get_layout(
        &self,
        _: Request<GetLayoutRequest>,
    ) -> Result<Response<LayoutMessage>, Status> {
        Err(no())
    }
    async fn push_layout(
        &self,
        _: Request<LayoutMessage>,
    ) -> Result<Response<PushLayoutResponse>, Status> {
        Err(no())
    }
    async fn layout_prepare(
        &self,
        r: Request<LayoutPrepareRequest>,
    ) -> Result<Response<LayoutPaxosReply>, Status> {
        self.0
            .layout_prepare(r.into_inner())
            .await
            .map(Response::new)
    }
    async fn layout_accept(
        &self,
        r: Request<LayoutAcceptRequest>,
    ) -> Result<Response<LayoutPaxosReply>, Status> {
        self.0
            .layout_accept(r.into_inner())
            .await
            .map(Response::new)
    }
    async fn sync_auth(&self, _: Request<AuthMessage>) -> Result<Response<AuthMessage>, Status> {
        Err(no())
    }
    async fn sync_wal(
        &self,
        r: Request<SyncWalRequest>,
    ) -> Result<Response<SyncWalResponse>, Status> {
        self.0.sync_wal(r.into_inner()).await.map(Response::new)
    }
}

/// The generated server with `ReplicaBatch` and `ReplicaReadBatch` taken
/// out of its routing table, as a node built before those calls: the request goes to a path the
/// server does not know and its generated fallback answers. Counts the
/// batch calls it turned away.
#[derive(Clone)]
struct Old<S>(S, Arc<AtomicUsize>);

impl<S: NamedService> NamedService for Old<S> {
    const NAME: &'static str = S::NAME;
}

impl<S: Service<http::Request<B>> + NamedService, B> Service<http::Request<B>> for Old<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> S::Future {
        let path = req.uri().path();
        if path.ends_with("/ReplicaBatch") || path.ends_with("/ReplicaReadBatch") {
            let unknown = format!("/{}/NotInThisVersion", S::NAME);
            *req.uri_mut() = unknown.parse().expect("a path");
            self.1.fetch_add(1, Ordering::SeqCst);
        }
        self.0.call(req)
    }
}

/// Serves `s` on a loopback port until the runtime ends; the peer that
/// node is. With `old`, as a server from before `ReplicaBatch`, counting
/// there the batch calls it turned away.
pub(crate) async fn serve<S: Serves>(id: &str, s: S, old: Option<Arc<AtomicUsize>>) -> NodeInfo {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("an address");
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    // The peer port's message limits (`node::limits`).
    let limit = super::encoded::MAX_MESSAGE_BYTES;
    let server = InternodeServer::new(Stub(s))
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    let mut builder = tonic::transport::Server::builder();
    let router = match old {
        Some(refused) => builder.add_service(Old(server, refused)),
        None => builder.add_service(server),
    };
    tokio::spawn(router.serve_with_incoming(incoming));
    node(id, addr)
}

/// Serves `s` over the internode port's TLS of `tls` on a loopback port
/// until the runtime ends; the peer that node is.
pub(crate) async fn serve_tls<S: Serves>(id: &str, s: S, tls: &Tls) -> NodeInfo {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("an address");
    let incoming = tls.incoming(listener, super::tls::Port::Internode);
    let router = tonic::transport::Server::builder().add_service(InternodeServer::new(Stub(s)));
    tokio::spawn(router.serve_with_incoming(incoming));
    node(id, addr)
}

/// A listener whose accept queue is full and never drained: a further
/// connect's SYN is dropped by the kernel, as by a firewall or a dead
/// host. Returns its address and the connections that fill it.
pub(crate) async fn dropping_syns() -> (
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
        match tokio::time::timeout(std::time::Duration::from_millis(200), connect).await {
            Ok(Ok(s)) => filled.push(s),
            _ => break,
        }
    }
    assert!(filled.len() < 16, "the accept queue never filled");
    (addr, listener, filled)
}

/// A node `id` of dc1 whose peer port is `addr`.
pub(crate) fn node(id: &str, addr: SocketAddr) -> NodeInfo {
    NodeInfo {
        idx: NodeIdx(0),
        id: id.into(),
        dc: "dc1".into(),
        rack: "r1".into(),
        client_address: addr,
        peer_address: addr,
        admin_address: addr,
        vnodes: 1,
    }
}

/// The transport of a node `me`, in plaintext, without faults.
pub(crate) fn peers() -> Arc<Peers> {
    let me = node("me", SocketAddr::from(([127, 0, 0, 1], 1)));
    Arc::new(Peers::new(
        me,
        Arc::new(Faults::new(false)),
        &Tls::insecure(),
    ))
}

/// A peer that records what reaches its handlers: the keys of each batch
/// and those written one by one (reads: of each read batch and those read
/// one by one), and wakes `arrived` at each write batch. Every write is
/// applied, but an entry whose key starts with `refuse` is refused as a
/// stale view would refuse it (nothing applied, layout v9); a read finds
/// `record_of(key)`, none for a key starting with `missing`, and refuses
/// as a write does; with `stall`, a write batch is never answered (a
/// stalled peer).
#[derive(Clone, Default)]
pub(crate) struct Recorder {
    pub stall: bool,
    pub batches: Arc<parking_lot::Mutex<Vec<Vec<Vec<u8>>>>>,
    pub singles: Arc<parking_lot::Mutex<Vec<Vec<u8>>>>,
    pub read_batches: Arc<parking_lot::Mutex<Vec<Vec<Vec<u8>>>>>,
    pub read_singles: Arc<parking_lot::Mutex<Vec<Vec<u8>>>>,
    pub arrived: Arc<tokio::sync::Notify>,
}

/// The record a [`Recorder`] holds for `key`.
pub(crate) fn record_of(key: &[u8]) -> Vec<u8> {
    [b"record of ", key].concat()
}

fn stale() -> Status {
    crate::error::GeokvError::StaleView {
        planned_on: 1,
        replica_version: 9,
    }
    .into()
}

/// A [`Recorder`]'s answer to a read of `key`.
fn read_of(key: &[u8]) -> Result<ReplicaReadResponse, Status> {
    if key.starts_with(b"refuse") {
        return Err(stale());
    }
    Ok(match key.starts_with(b"missing") {
        true => ReplicaReadResponse::default(),
        false => ReplicaReadResponse {
            record: record_of(key),
            found: true,
        },
    })
}

#[tonic::async_trait]
impl Serves for Recorder {
    async fn replica_write(&self, r: ReplicaWriteRequest) -> Result<ReplicaWriteResponse, Status> {
        self.singles.lock().push(r.key.to_vec());
        Ok(ReplicaWriteResponse {})
    }

    async fn replica_batch(&self, r: ReplicaBatchRequest) -> Result<ReplicaBatchResponse, Status> {
        let key = |e: &ReplicaBatchEntry| e.write.as_ref().map(|w| w.key.to_vec());
        let keys: Vec<Vec<u8>> = r
            .entries
            .iter()
            .map(|e| key(e).unwrap_or_default())
            .collect();
        self.batches.lock().push(keys.clone());
        self.arrived.notify_one();
        if self.stall {
            std::future::pending::<()>().await;
        }
        let result = |k: &Vec<u8>| match k.starts_with(b"refuse") {
            true => super::replica_batch::result_of(Err(stale())),
            false => super::replica_batch::result_of(Ok(())),
        };
        let results = keys.iter().map(result).collect();
        Ok(ReplicaBatchResponse { results })
    }

    async fn replica_read(&self, r: ReplicaReadRequest) -> Result<ReplicaReadResponse, Status> {
        self.read_singles.lock().push(r.key.clone());
        read_of(&r.key)
    }

    async fn replica_read_batch(
        &self,
        r: ReplicaReadBatchRequest,
    ) -> Result<ReplicaReadBatchResponse, Status> {
        let keys: Vec<Vec<u8>> = (r.entries.iter())
            .map(|e| e.read.as_ref().map(|r| r.key.clone()).unwrap_or_default())
            .collect();
        self.read_batches.lock().push(keys.clone());
        let result = |k: &Vec<u8>| match read_of(k) {
            Ok(read) => ReplicaReadBatchResult {
                status: None,
                read: Some(read),
            },
            Err(s) => ReplicaReadBatchResult {
                status: Some(super::replica_batch::result_of(Err(s))),
                read: None,
            },
        };
        let results = keys.iter().map(result).collect();
        Ok(ReplicaReadBatchResponse { results })
    }
}
