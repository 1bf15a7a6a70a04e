//! The SDK against in-process fake nodes (tonic servers on loopback): discovery,
//! local-datacenter preference, fallback, the write-retry rule, deadlines.
//! Owns no production code.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};

use crate::proto::v1 as pb;
use crate::proto::v1::test_server::kv_server::{Kv, KvServer};
use crate::ConsistencyLevel;
use crate::{CausalContext, Client, ClientError};

#[derive(Clone, Copy)]
enum Mode {
    Ok,
    /// UNAVAILABLE without a node's verdict (as a proxy would answer).
    Unavailable,
    /// UNAVAILABLE as a node answers it before sending anything.
    NothingSent,
    Slow,
}

struct Fake {
    id: String,
    datacenter: String,
    nodes: Vec<pb::NodeStatus>,
    mode: Mode,
    hits: Arc<AtomicUsize>,
    seen: Arc<crate::sync::Mutex<Vec<pb::PutRequest>>>,
}

impl Fake {
    async fn answer<T>(&self, ok: T) -> Result<Response<T>, Status> {
        self.hits.fetch_add(1, Ordering::SeqCst);
        match self.mode {
            Mode::Ok => Ok(Response::new(ok)),
            Mode::Unavailable => Err(Status::unavailable("1 of 2 replicas answered")),
            Mode::NothingSent => {
                let mut s = Status::unavailable("1 replica alive, 2 required");
                s.metadata_mut().insert(
                    crate::proto::APPLIED_METADATA,
                    tonic::metadata::MetadataValue::from_static("no"),
                );
                Err(s)
            }
            Mode::Slow => {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Ok(Response::new(ok))
            }
        }
    }
}

#[tonic::async_trait]
impl Kv for Fake {
    async fn get(&self, _: Request<pb::GetRequest>) -> Result<Response<pb::GetResponse>, Status> {
        let sibling = pb::Sibling {
            value: Some(self.id.as_bytes().to_vec()),
            tombstone: false,
            timestamp_ms: 1,
        };
        self.answer(pb::GetResponse {
            siblings: vec![sibling],
            context: vec![7, 7],
            replicas_answered: 2,
        })
        .await
    }

    async fn put(&self, req: Request<pb::PutRequest>) -> Result<Response<pb::PutResponse>, Status> {
        self.seen.lock().push(req.into_inner());
        self.answer(pb::PutResponse {
            context: vec![1],
            acks: 2,
            hints: 0,
        })
        .await
    }

    async fn delete(
        &self,
        _: Request<pb::DeleteRequest>,
    ) -> Result<Response<pb::DeleteResponse>, Status> {
        self.answer(pb::DeleteResponse {
            context: vec![2],
            acks: 1,
            hints: 0,
        })
        .await
    }

    async fn status(
        &self,
        _: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        Ok(Response::new(pb::StatusResponse {
            cluster: "test".into(),
            answered_by: self.id.clone(),
            local_datacenter: self.datacenter.clone(),
            nodes: self.nodes.clone(),
            keyspaces: vec![],
        }))
    }
}

struct Cluster {
    urls: Vec<String>,
    hits: Vec<Arc<AtomicUsize>>,
    seen: Vec<Arc<crate::sync::Mutex<Vec<pb::PutRequest>>>>,
}

/// Starts one fake per `(datacenter, mode)`; a `None` mode is a node listed
/// in Status whose port refuses connections.
async fn cluster(spec: &[(&str, Option<Mode>)]) -> Cluster {
    let mut listeners = Vec::new();
    let mut nodes = Vec::new();
    for (i, (dc, mode)) in spec.iter().enumerate() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        nodes.push(pb::NodeStatus {
            id: format!("n{i}"),
            datacenter: dc.to_string(),
            rack: "r1".into(),
            client_address: listener.local_addr().unwrap().to_string(),
            up: true,
            ..Default::default()
        });
        // Dropping the listener leaves a port nobody listens on.
        listeners.push(mode.map(|m| (listener, m)));
    }
    let mut out = Cluster {
        urls: nodes
            .iter()
            .map(|n| format!("http://{}", n.client_address))
            .collect(),
        hits: Vec::new(),
        seen: Vec::new(),
    };
    for (i, slot) in listeners.into_iter().enumerate() {
        let hits = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(crate::sync::Mutex::new(Vec::new()));
        out.hits.push(hits.clone());
        out.seen.push(seen.clone());
        let Some((listener, mode)) = slot else {
            continue;
        };
        let fake = Fake {
            id: nodes[i].id.clone(),
            datacenter: nodes[i].datacenter.clone(),
            nodes: nodes.clone(),
            mode,
            hits,
            seen,
        };
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(KvServer::new(fake))
                .serve_with_incoming(TcpListenerStream::new(listener)),
        );
    }
    out
}

fn hits(c: &Cluster) -> Vec<usize> {
    c.hits.iter().map(|h| h.load(Ordering::SeqCst)).collect()
}

fn fast(builder: crate::ClientBuilder) -> crate::ClientBuilder {
    builder.retry_policy(crate::RetryPolicy {
        retries: 2,
        base: Duration::from_millis(1),
        max: Duration::from_millis(2),
    })
}

#[tokio::test]
async fn discovery_prefers_local_datacenter_round_robin() {
    let c = cluster(&[
        ("dc2", Some(Mode::Ok)),
        ("dc1", Some(Mode::Ok)),
        ("dc1", Some(Mode::Ok)),
    ])
    .await;
    // Seed is the dc2 node; the client must still prefer dc1.
    let client = Client::builder()
        .endpoints([c.urls[0].clone()])
        .local_datacenter("dc1")
        .build()
        .await
        .unwrap();
    assert_eq!(client.endpoints().len(), 3);
    for _ in 0..4 {
        let read = client.get("k").await.unwrap();
        assert_ne!(read.coordinator, c.urls[0]);
        assert_eq!(read.context.as_bytes(), &[7, 7]);
    }
    assert_eq!(hits(&c), [0, 2, 2]);
}

#[tokio::test]
async fn local_dc_defaults_to_the_answering_node_and_typos_are_rejected() {
    let c = cluster(&[("dc2", Some(Mode::Ok)), ("dc1", Some(Mode::Ok))]).await;
    let client = Client::builder()
        .endpoints([c.urls[0].clone()])
        .build()
        .await
        .unwrap();
    assert_eq!(client.local_datacenter(), Some("dc2"));
    let err = Client::builder()
        .endpoints([c.urls[0].clone()])
        .local_datacenter("dc9")
        .build()
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err}");
}

#[tokio::test]
async fn unreachable_local_node_falls_back_even_for_writes() {
    let c = cluster(&[("dc1", None), ("dc2", Some(Mode::Ok))]).await;
    let client = fast(Client::builder())
        .endpoints([c.urls[1].clone()])
        .local_datacenter("dc1")
        .build()
        .await
        .unwrap();
    // A connect error proves the write never reached a coordinator.
    let put = client.put("k", "v").await.unwrap();
    assert_eq!(put.coordinator, c.urls[1]);
    assert_eq!(put.acks, 2);
    // The refused node is now ordered last: no more failed attempts.
    client.get("k").await.unwrap();
    assert_eq!(hits(&c), [0, 2]);
}

#[tokio::test]
async fn unavailable_before_sending_is_retried_even_for_a_write() {
    let c = cluster(&[("dc1", Some(Mode::NothingSent)), ("dc1", Some(Mode::Ok))]).await;
    let client = fast(Client::builder())
        .endpoints(c.urls.clone())
        .discover(false)
        .build()
        .await
        .unwrap();
    let put = client.put("k", "v").await.unwrap();
    assert_eq!(put.coordinator, c.urls[1]);
    assert_eq!(hits(&c), [1, 1]);
}

#[tokio::test]
async fn unavailable_without_a_verdict_is_not_retried_for_a_write_but_read_is() {
    let c = cluster(&[
        ("dc1", Some(Mode::Unavailable)),
        ("dc1", Some(Mode::Unavailable)),
    ])
    .await;
    let client = fast(Client::builder())
        .endpoints(c.urls.clone())
        .discover(false)
        .build()
        .await
        .unwrap();
    let err = client.put("k", "v").await.unwrap_err();
    assert!(matches!(err, ClientError::ConnectionLost { .. }), "{err:?}");
    assert_eq!(hits(&c).iter().sum::<usize>(), 1);
    let err = client
        .delete("k", &CausalContext::empty())
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable);
    assert_eq!(hits(&c).iter().sum::<usize>(), 2);
    client.get("k").await.unwrap_err();
    assert_eq!(
        hits(&c).iter().sum::<usize>(),
        2 + 3,
        "one read + two retries"
    );
}

#[tokio::test]
async fn requests_carry_defaults_and_overrides() {
    let c = cluster(&[("dc1", Some(Mode::Ok))]).await;
    let client = Client::builder()
        .endpoints(c.urls.clone())
        .keyspace("ks")
        .consistency(ConsistencyLevel::Quorum)
        .timeout(Duration::from_millis(1500))
        .build()
        .await
        .unwrap();
    let ctx = CausalContext::from_bytes(vec![4, 2]);
    client.put("k", "v").await.unwrap();
    client
        .put_with_context("k2", "v2", &ctx)
        .keyspace("other")
        .consistency(ConsistencyLevel::All)
        .w(3)
        .await
        .unwrap();
    let seen = c.seen[0].lock().clone();
    let opts = seen[0].options.unwrap();
    assert_eq!(
        (
            seen[0].keyspace.as_str(),
            &seen[0].key[..],
            &seen[0].value[..]
        ),
        ("ks", &b"k"[..], &b"v"[..])
    );
    assert!(seen[0].context.is_empty());
    assert_eq!(opts.consistency, pb::Consistency::Quorum as i32);
    assert_eq!((opts.explicit_count, opts.timeout_ms), (0, 1500));
    let opts = seen[1].options.unwrap();
    assert_eq!(
        (seen[1].keyspace.as_str(), &seen[1].context[..]),
        ("other", &[4u8, 2][..])
    );
    assert_eq!(
        (opts.consistency, opts.explicit_count),
        (pb::Consistency::All as i32, 3)
    );
}

#[tokio::test]
async fn slow_coordinator_times_out() {
    let c = cluster(&[("dc1", Some(Mode::Slow))]).await;
    let client = Client::builder()
        .endpoints(c.urls.clone())
        .retries(0)
        .timeout(Duration::from_millis(100))
        .build()
        .await
        .unwrap();
    let err = client.put("k", "v").await.unwrap_err();
    assert!(matches!(err, ClientError::Timeout { .. }), "{err:?}");
    assert!(err.reached_server());
}

#[tokio::test]
async fn nobody_answering_discovery_is_a_transport_error() {
    let c = cluster(&[("dc1", None)]).await;
    let err = Client::builder()
        .endpoints(c.urls.clone())
        .build()
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Transport { .. }), "{err:?}");
    assert!(err.message().contains(&c.urls[0]), "{err}");
    let err = Client::builder().build().await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
}

#[test]
fn a_token_travels_as_bearer_metadata_and_stays_out_of_debug() {
    let b = Client::builder().token("app:s3cret");
    assert!(!format!("{b:?}").contains("s3cret"), "{b:?}");
    let bearer = b.bearer().unwrap().expect("a token");
    assert!(!format!("{bearer:?}").contains("s3cret"));
    let req = crate::core::request((), Duration::from_secs(1), Some(&bearer));
    assert_eq!(
        req.metadata().get("authorization").unwrap(),
        "Bearer app:s3cret"
    );
    assert!(crate::core::request((), Duration::from_secs(1), None)
        .metadata()
        .get("authorization")
        .is_none());
    let err = Client::builder().token("no-colon").bearer().unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
}
