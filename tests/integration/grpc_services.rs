//! The client port's standard gRPC services, against a real node process:
//! `grpc.health.v1.Health` answers SERVING for the node and for
//! `geokv.v1.Kv` (what load balancers and Kubernetes probes ask), and
//! server reflection lists the services and serves `geokv.v1`'s
//! descriptors (what grpcurl needs to call the node without a .proto file).

use crate::common::*;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::ServerReflectionRequest;

fn one_node() -> Spec {
    Spec {
        dcs: vec![("dc1", 1)],
        replication: vec![("dc1", 1)],
        extra_keyspaces: vec![],
        gossip_interval_ms: 100,
        extra_args: vec![],
    }
}

/// One reflection request; its answer.
async fn reflect(channel: tonic::transport::Channel, req: MessageRequest) -> MessageResponse {
    let mut c = ServerReflectionClient::new(channel);
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(req),
    };
    let mut answers = c
        .server_reflection_info(tokio_stream::iter([req]))
        .await
        .expect("reflection stream")
        .into_inner();
    let first = answers.message().await.expect("an answer").expect("one");
    first.message_response.expect("a response")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_port_serves_health_and_reflection() {
    let cluster = Cluster::start(one_node()).await;
    let channel = cluster.channel_at(cluster.node("dc1-n1").client_address);

    let mut health = HealthClient::new(channel.clone());
    for service in ["", "geokv.v1.Kv"] {
        let r = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap_or_else(|e| panic!("health of {service:?}: {e}"))
            .into_inner();
        assert_eq!(r.status, ServingStatus::Serving as i32, "{service:?}");
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await
        .expect_err("an unknown service is NOT_FOUND");
    assert_eq!(unknown.code(), tonic::Code::NotFound);

    let MessageResponse::ListServicesResponse(list) =
        reflect(channel.clone(), MessageRequest::ListServices(String::new())).await
    else {
        panic!("ListServices answers a service list");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for want in ["geokv.v1.Kv", "grpc.health.v1.Health"] {
        assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
    }
    let symbol = MessageRequest::FileContainingSymbol("geokv.v1.Kv".into());
    let MessageResponse::FileDescriptorResponse(files) = reflect(channel, symbol).await else {
        panic!("FileContainingSymbol answers descriptors");
    };
    assert!(
        !files.file_descriptor_proto.is_empty(),
        "geokv.v1.Kv's file is served"
    );
}
