//! The admin HTTP port (hyper): `/health`, `/metrics` (Prometheus text), and,
//! when the node runs with fault injection enabled, `/faults` to delay or cut
//! internode links. Must not serve client data. Every metric family is
//! described in [`catalog`]; [`collect`] refreshes process and engine figures.
//!
//! ```text
//! GET  /health                       200 "ok <node-id>"
//! GET  /metrics                      Prometheus text exposition
//! GET  /faults                       current rules as JSON
//! POST /faults/cut?target=dc2        refuse calls to/from a node or datacenter
//! POST /faults/heal?target=dc2       undo a cut (target=* heals all)
//! POST /faults/delay?dc=dc2&ms=50    one-way delay towards a datacenter
//! POST /faults/crash-after-write     SIGKILL self after the next write coordinated for a peer
//! POST /repair[?keyspace=default]    anti-entropy sweep now; JSON summary when done
//! ```

pub mod catalog;
pub mod collect;

use crate::repair::Repair;
use crate::transport::faults::Faults;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use tokio::net::TcpListener;
use tokio::sync::watch;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide Prometheus recorder (idempotent).
pub fn install_metrics() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let buckets = [
                0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0,
            ];
            let recorder = PrometheusBuilder::new()
                .set_buckets(&buckets)
                .expect("static buckets are valid")
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_ok() {
                catalog::describe_all();
            }
            handle
        })
        .clone()
}

struct Admin {
    node_id: String,
    metrics: PrometheusHandle,
    faults: Arc<Faults>,
    repair: Option<Arc<Repair>>,
}

/// The Prometheus text exposition format's media type.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

fn reply(code: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    Response::builder()
        .status(code)
        .body(Full::new(body.into()))
        .expect("static response parts")
}

fn metrics_reply(text: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(StatusCode::OK)
        .header(hyper::header::CONTENT_TYPE, METRICS_CONTENT_TYPE)
        .body(Full::new(text.into()))
        .expect("static response parts")
}

fn query(req: &Request<Incoming>) -> HashMap<String, String> {
    req.uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl Admin {
    /// `POST /repair`: runs a sweep (waiting for one in progress) and
    /// answers with its summary.
    async fn repair(&self, q: &HashMap<String, String>) -> Response<Full<Bytes>> {
        let Some(repair) = &self.repair else {
            return reply(
                StatusCode::NOT_FOUND,
                "repair is not running on this node\n",
            );
        };
        match repair.sweep(q.get("keyspace").map(String::as_str)).await {
            Ok(s) => reply(
                StatusCode::OK,
                serde_json::to_string(&s).unwrap_or_default() + "\n",
            ),
            Err(e @ crate::repair::RepairError::Ring(_)) => {
                reply(StatusCode::BAD_REQUEST, format!("{e}\n"))
            }
            Err(e) => reply(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
        }
    }

    fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let q = query(&req);
        match (req.method(), req.uri().path()) {
            (&Method::GET, "/health") => reply(StatusCode::OK, format!("ok {}\n", self.node_id)),
            (&Method::GET, "/metrics") => metrics_reply(self.metrics.render()),
            (&Method::GET, "/faults") => reply(StatusCode::OK, self.faults.to_json()),
            (&Method::POST, path) if path.starts_with("/faults/") => self.fault(path, &q),
            _ => reply(StatusCode::NOT_FOUND, "not found\n"),
        }
    }

    fn fault(&self, path: &str, q: &HashMap<String, String>) -> Response<Full<Bytes>> {
        if !self.faults.enabled() {
            return reply(
                StatusCode::FORBIDDEN,
                "fault injection is disabled on this node (start it with --fault-injection)\n",
            );
        }
        let ok = match path {
            "/faults/cut" => q.get("target").map(|t| self.faults.cut(t)),
            "/faults/heal" => q.get("target").map(|t| self.faults.heal(t)),
            "/faults/delay" => match (q.get("dc"), q.get("ms").and_then(|m| m.parse().ok())) {
                (Some(dc), Some(ms)) => Some(self.faults.set_delay(dc, ms)),
                _ => None,
            },
            "/faults/crash-after-write" => Some(self.faults.arm_crash_after_write()),
            _ => return reply(StatusCode::NOT_FOUND, "unknown fault\n"),
        };
        match ok {
            Some(true) => reply(StatusCode::OK, self.faults.to_json()),
            _ => reply(StatusCode::BAD_REQUEST, "missing or bad parameters\n"),
        }
    }
}

/// Serves the admin port until `shutdown` turns true.
pub async fn serve(
    addr: SocketAddr,
    node_id: String,
    faults: Arc<Faults>,
    repair: Option<Arc<Repair>>,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    let admin = Arc::new(Admin {
        node_id,
        metrics: install_metrics(),
        faults,
        repair,
    });
    loop {
        let (stream, _) = tokio::select! {
            r = listener.accept() => r?,
            _ = shutdown.changed() => return Ok(()),
        };
        let admin = admin.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let admin = admin.clone();
                async move {
                    Ok::<_, std::convert::Infallible>(
                        if req.method() == Method::POST && req.uri().path() == "/repair" {
                            admin.repair(&query(&req)).await
                        } else {
                            admin.handle(req)
                        },
                    )
                }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
