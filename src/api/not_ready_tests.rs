//! review-tidy34 L3: a node whose storage refuses writes answers its
//! clients' get, put and delete through the client service (`check_key`)
//! UNAVAILABLE with `geokv-applied: no`, naming why.

use super::*;
use crate::engine::{Engine, EngineOptions, RocksEngine};
use crate::membership::{AlwaysUp, MembershipConfig, MonotonicClock};
use crate::security::auth::AuthState;

/// Pins `check_key`'s `serving()` (by reading: without it the get goes on
/// to the replicas, and the put reaches the mint).
#[tokio::test]
async fn a_node_refusing_writes_answers_its_clients_unavailable_not_applied() {
    let dir = tempfile::tempdir().unwrap();
    let rocks = Arc::new(RocksEngine::open(dir.path(), EngineOptions::default()).unwrap());
    let engine: Arc<dyn Engine> = rocks.clone();
    let seed = crate::layout::Layout::seed(&crate::topology::Topology::dev());
    let cluster = crate::view::Cluster::new(seed, "dc1-n1", Some(engine.clone())).unwrap();
    let nodes = cluster.current().ring.nodes().to_vec();
    let coordinator =
        crate::coordinator::tests_pending::coordinator_in(cluster, engine, Arc::new(AlwaysUp));
    let clock = Arc::new(MonotonicClock::new());
    let membership = MembershipConfig::default();
    let svc = KvService {
        coordinator: Arc::new(coordinator),
        gossiper: Gossiper::new(membership, nodes, "dc1-n1", 1, clock).unwrap(),
        limits: RequestLimits {
            max_key_bytes: 1024,
            max_value_bytes: 1 << 20,
        },
        local_id: "dc1-n1".into(),
        auth: Arc::new(Auth::new(false, AuthState::default(), None)),
    };
    assert!(svc.coordinator.cluster().serving().is_ok(), "ready first");
    rocks.fail_flushes();
    assert!(rocks.flush().is_err(), "the injected fsync failure");
    let (ks, key) = (String::from("default"), b"k".to_vec());
    let put = PutRequest {
        keyspace: ks.clone(),
        key: key.clone(),
        value: b"v".to_vec(),
        ..Default::default()
    };
    let delete = DeleteRequest {
        keyspace: ks.clone(),
        key: key.clone(),
        ..Default::default()
    };
    let get = GetRequest {
        keyspace: ks,
        key,
        ..Default::default()
    };
    let answers = [
        svc.put(Request::new(put)).await.map(|_| ()),
        svc.delete(Request::new(delete)).await.map(|_| ()),
        svc.get(Request::new(get)).await.map(|_| ()),
    ];
    for answer in answers {
        let status = answer.expect_err("not ready");
        assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
        let applied = status.metadata().get(crate::proto::APPLIED_METADATA);
        assert_eq!(applied.and_then(|v| v.to_str().ok()), Some("no"));
        let said = status.message();
        assert!(
            said.contains("engine writes refused") && said.contains("injected"),
            "{said}"
        );
    }
}
