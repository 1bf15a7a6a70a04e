//! One trace per client write across processes: real nodes of two
//! datacenters export their spans over OTLP/gRPC to a receiver this test
//! runs (opentelemetry-proto's tonic server types); a client write at
//! EACH_QUORUM, sent with the client's own `traceparent`, must show up in
//! that one trace on the coordinator, on its local replica and on both
//! replicas of the remote datacenter (the stream's apply span there).
//! Must not: judge spans by timing; it only reads trace ids and names.

use crate::common::*;
use geokv::proto::v1::{Consistency, PutRequest};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One exported span as the receiver saw it.
#[derive(Debug, Clone)]
struct Seen {
    node: String,
    name: String,
    trace_id: String,
}

/// An OTLP/gRPC trace receiver that keeps every span it is sent.
#[derive(Clone, Default)]
struct Receiver(Arc<Mutex<Vec<Seen>>>);

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        req: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut seen = self.0.lock().unwrap();
        for rs in req.into_inner().resource_spans {
            let attrs = rs.resource.map(|r| r.attributes).unwrap_or_default();
            let node = attrs
                .iter()
                .find(|kv| kv.key == "geokv.node")
                .and_then(|kv| kv.value.as_ref()?.value.as_ref())
                .map(|v| match v {
                    Value::StringValue(s) => s.clone(),
                    other => format!("{other:?}"),
                })
                .unwrap_or_default();
            for span in rs.scope_spans.into_iter().flat_map(|s| s.spans) {
                seen.push(Seen {
                    node: node.clone(),
                    name: span.name,
                    trace_id: hex(&span.trace_id),
                });
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Starts the receiver on a loopback port; its `http://` endpoint.
async fn start_receiver(receiver: Receiver) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(receiver))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    format!("http://{addr}")
}

/// The names of the spans `node` exported in trace `trace_id`.
fn spans_in(seen: &[Seen], trace_id: &str, node: &str) -> Vec<String> {
    (seen.iter())
        .filter(|s| s.trace_id == trace_id && s.node == node)
        .map(|s| s.name.clone())
        .collect()
}

#[tokio::test]
async fn a_remote_replicas_apply_joins_the_client_writes_trace() {
    let receiver = Receiver::default();
    let endpoint = start_receiver(receiver.clone()).await;
    let spec = Spec {
        dcs: vec![("dc1", 2), ("dc2", 2)],
        replication: vec![("dc1", 2), ("dc2", 2)],
        extra_keyspaces: Vec::new(),
        gossip_interval_ms: 100,
        extra_args: Vec::new(),
    };
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        // Export every 100 ms instead of every 5 s.
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ];
    let cluster = Cluster::start_with_env(spec, &env).await;
    let mut client = cluster.client("dc1-n1").await;

    // The client's own trace: every span of the write must join it.
    let trace_id = format!("{:032x}", rand::random::<u128>() | 1);
    let parent = format!("{:016x}", rand::random::<u64>() | 1);
    let mut req = tonic::Request::new(PutRequest {
        keyspace: "default".into(),
        key: b"traced".to_vec(),
        value: b"v".to_vec(),
        context: Vec::new(),
        options: opts(Consistency::EachQuorum),
    });
    let traceparent = format!("00-{trace_id}-{parent}-01");
    req.metadata_mut()
        .insert("traceparent", traceparent.parse().unwrap());
    client.put(req).await.expect("EACH_QUORUM put");

    // Every node replicates the key (rf 2 of 2 in each datacenter): the
    // coordinator's client span, dc1-n2's replica write, and in dc2 the
    // stream's apply and the other replica's write, all in one trace.
    let started = Instant::now();
    loop {
        let seen = receiver.0.lock().unwrap().clone();
        let coordinator = spans_in(&seen, &trace_id, "dc1-n1");
        let local = spans_in(&seen, &trace_id, "dc1-n2");
        let remote: Vec<Vec<String>> = ["dc2-n1", "dc2-n2"]
            .iter()
            .map(|n| spans_in(&seen, &trace_id, n))
            .collect();
        let remote_applied = remote.iter().flatten().any(|n| n == "hints.apply_entry");
        if coordinator.iter().any(|n| n == "kv")
            && !local.is_empty()
            && remote.iter().all(|r| !r.is_empty())
            && remote_applied
        {
            break;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let mut other: Vec<_> = (seen.iter())
                .filter(|s| s.trace_id != trace_id)
                .map(|s| format!("{} {} {}", s.node, s.name, s.trace_id))
                .collect();
            other.sort();
            other.dedup();
            panic!(
                "trace {trace_id}: dc1-n1 {coordinator:?}, dc1-n2 {local:?}, \
                 dc2 {remote:?}; spans of other traces:\n{}",
                other.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
