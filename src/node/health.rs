//! The client port's `grpc.health.v1` status follows the node's readiness
//! ([`Cluster::serving`], the one answer `/health` and the client port
//! give): a node whose engine refuses writes, that has left, or whose seed
//! disagrees with a peer's is `NOT_SERVING` there too, so a gRPC or
//! Kubernetes probe on the client port drains it (review-tidy34 open
//! point); `NOT_SERVING` for good once the node begins to shut down.
//!
//! Must not decide readiness (the view does) or serve anything itself.

use std::time::Duration;

use tokio::sync::watch;
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;

use crate::api::KvService;
use crate::proto::v1::kv_server::KvServer;
use crate::view::Cluster;

/// How often readiness is looked at again.
const EVERY: Duration = Duration::from_secs(1);

/// Sets the health of the node's services (`""` and the KV service) from
/// readiness now and at every tick, until `shutdown`, then `NOT_SERVING`.
pub(super) async fn follow(
    cluster: Cluster,
    health: HealthReporter,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut shown = None;
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|v| *v) => break,
            _ = tick.tick() => {}
        }
        let now = match cluster.serving() {
            Ok(()) => ServingStatus::Serving,
            Err(why) => {
                if shown == Some(ServingStatus::Serving) {
                    tracing::warn!(reason = %why, "client port health: NOT_SERVING");
                }
                ServingStatus::NotServing
            }
        };
        if shown != Some(now) {
            set(&health, now).await;
            shown = Some(now);
        }
    }
    set(&health, ServingStatus::NotServing).await;
}

async fn set(health: &HealthReporter, status: ServingStatus) {
    health.set_service_status("", status).await;
    match status {
        ServingStatus::Serving => health.set_serving::<KvServer<KvService>>().await,
        _ => health.set_not_serving::<KvServer<KvService>>().await,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tonic::server::NamedService;
    use tonic_health::pb::health_check_response::ServingStatus as Shown;
    use tonic_health::pb::health_server::Health;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::server::HealthService;

    use super::*;
    use crate::engine::{Engine, EngineOptions, RocksEngine};

    async fn shown(health: &HealthService, service: &str) -> Shown {
        let asked = tonic::Request::new(HealthCheckRequest {
            service: service.into(),
        });
        let status = health
            .check(asked)
            .await
            .expect("known")
            .into_inner()
            .status;
        Shown::try_from(status).expect("a status")
    }

    /// review-tidy34 open point: a node whose engine refuses writes
    /// answered `SERVING` on the client port's `grpc.health.v1` while
    /// `/health` said 503. Fails before: the status was set once, at bind.
    #[tokio::test(start_paused = true)]
    async fn the_client_ports_health_follows_readiness() {
        let dir = tempfile::tempdir().unwrap();
        let rocks = Arc::new(RocksEngine::open(dir.path(), EngineOptions::default()).unwrap());
        let engine: Arc<dyn Engine> = rocks.clone();
        let seed = crate::layout::Layout::seed(&crate::topology::Topology::dev());
        let cluster = Cluster::new(seed, "dc1-n1", Some(engine)).unwrap();
        let reporter = HealthReporter::new();
        let health = HealthService::from_health_reporter(reporter.clone());
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(follow(cluster, reporter, stopped));
        let kv = <KvServer<KvService> as NamedService>::NAME;
        tokio::time::sleep(EVERY / 2).await;
        assert_eq!(shown(&health, "").await, Shown::Serving);
        assert_eq!(shown(&health, kv).await, Shown::Serving);
        rocks.fail_flushes();
        assert!(rocks.flush().is_err(), "the injected fsync failure");
        tokio::time::sleep(EVERY * 2).await;
        assert_eq!(shown(&health, "").await, Shown::NotServing);
        assert_eq!(shown(&health, kv).await, Shown::NotServing);
        stop.send(true).unwrap();
        task.await.unwrap();
        assert_eq!(shown(&health, "").await, Shown::NotServing);
    }
}
