//! The layout CAS over real internode gRPC on loopback: six acceptors
//! served by tonic (`transport::testing`), two nodes proposing the same
//! version at once through `PeersNet`.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use tonic::Status;

use super::acceptor;
use super::cas::PeersNet;
use super::*;
use crate::engine::memory::MemoryEngine;
use crate::engine::Limits;
use crate::proto::v1::internode::{LayoutAcceptRequest, LayoutPaxosReply, LayoutPrepareRequest};
use crate::topology::Topology;
use crate::transport::testing::{self, Serves};

/// A peer whose acceptor is a node's [`Cluster`] (set once it exists).
struct AcceptorPeer(Arc<OnceLock<Cluster>>);

fn bad(e: acceptor::AcceptorError) -> Status {
    Status::invalid_argument(e.to_string())
}

#[tonic::async_trait]
impl Serves for AcceptorPeer {
    async fn layout_prepare(&self, r: LayoutPrepareRequest) -> Result<LayoutPaxosReply, Status> {
        let msg = acceptor::prepare_msg(&r).map_err(bad)?;
        Ok(acceptor::serve(self.0.get().expect("a cluster").clone(), msg).await?)
    }
    async fn layout_accept(&self, r: LayoutAcceptRequest) -> Result<LayoutPaxosReply, Status> {
        let msg = acceptor::accept_msg("a proposer", &r).map_err(bad)?;
        Ok(acceptor::serve(self.0.get().expect("a cluster").clone(), msg).await?)
    }
}

fn with_keyspace(l: &Layout, name: &str) -> Layout {
    let mut next = l.clone();
    next.version += 1;
    let spec = next.keyspaces.values().next().expect("dev has one").clone();
    next.keyspaces.insert(name.to_string(), spec);
    next
}

/// The dev layout, each node's peer port a loopback acceptor, and its
/// cluster (persisting in memory, reaching the others over gRPC, pushing
/// chosen layouts to all as `PushLayout` would).
async fn loopback_cluster() -> (Layout, BTreeMap<String, Cluster>) {
    let mut seed = Layout::seed(&Topology::dev());
    let ids: Vec<String> = seed.nodes().map(|(_, _, n)| n.id.clone()).collect();
    let mut cells = BTreeMap::new();
    for id in &ids {
        let cell = Arc::new(OnceLock::new());
        let info = testing::serve(id, AcceptorPeer(cell.clone()), None).await;
        seed.node_mut(id).expect("a node").peer_address = info.peer_address;
        cells.insert(id.clone(), cell);
    }
    let mut clusters = BTreeMap::new();
    for id in &ids {
        let engine: Arc<dyn crate::engine::Engine> = Arc::new(MemoryEngine::new(Limits::default()));
        let c = Cluster::new(seed.clone(), id, Some(engine)).expect("a view");
        c.set_net(Arc::new(PeersNet(testing::peers())));
        cells[id].set(c.clone()).expect("set once");
        clusters.insert(id.clone(), c);
    }
    let all: Vec<Cluster> = clusters.values().cloned().collect();
    for c in clusters.values() {
        let all = all.clone();
        c.set_push(Arc::new(move |l: Arc<Layout>| {
            for node in &all {
                node.install((*l).clone())
                    .expect("a chosen layout installs");
            }
        }));
    }
    (seed, clusters)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_grpc_two_concurrent_proposals_of_one_version_choose_one() {
    let (seed, nodes) = loopback_cluster().await;
    let (a, b) = (with_keyspace(&seed, "a"), with_keyspace(&seed, "b"));
    let (n1, n2) = (nodes["dc1-n1"].clone(), nodes["dc2-n2"].clone());
    let (ra, rb) = tokio::join!(
        tokio::spawn({
            let a = a.clone();
            async move { n1.propose(a).await }
        }),
        tokio::spawn({
            let b = b.clone();
            async move { n2.propose(b).await }
        })
    );
    let (ra, rb) = (ra.expect("a task"), rb.expect("a task"));
    let (won, refused) = match (ra, rb) {
        (Ok(_), Err(e)) => (a, e),
        (Err(e), Ok(_)) => (b, e),
        other => panic!("exactly one must succeed, got {other:?}"),
    };
    assert!(
        matches!(refused, ProposeError::Concurrent { version: 2, .. }),
        "{refused}"
    );
    for (id, c) in &nodes {
        assert_eq!(*c.current().layout, won, "node {id} holds the chosen v2");
    }
}
