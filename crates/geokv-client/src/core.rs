//! [`Client`]: the cheap-to-clone handle and the one attempt loop every
//! call goes through (endpoint order → send → classify → maybe back off and
//! try the next endpoint). Its public calls are `calls.rs`'s; the request
//! builders (`read.rs`, `write.rs`) and discovery build on this file.
//!
//! Owns the per-node channels and their reachability marks. Must not contain
//! placement or consistency logic (the coordinator on the server owns both),
//! or depend on the files that build on it.
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::sync::{Mutex, RwLock};
use tonic::transport::Channel;

use crate::dial::Refresher;
use crate::endpoints::{preference_order, Candidate, NodeAddr};
use crate::level::level_to_proto;
use crate::proto::v1 as pb;
use crate::proto::v1::kv_client::KvClient;
use crate::ConsistencyLevel;
use crate::{ClientError, RetryPolicy};

/// How long a node that refused a connection is tried only after the others.
const UNREACHABLE_COOLDOWN: Duration = Duration::from_secs(5);

/// A handle to a geokv cluster. Cloning is cheap (one `Arc`); clones share
/// channels, the round-robin cursor and reachability marks, so one client
/// per process is the intended use.
///
/// Requests go to a coordinator of the local datacenter (round-robin), and
/// fall back to other datacenters when local nodes fail. Note that `LOCAL_*`
/// levels are evaluated in the *coordinator's* datacenter, so a request that
/// fell back to a remote coordinator counts that datacenter's replicas.
///
/// # Example
///
/// ```no_run
/// use std::time::Duration;
/// use geokv_client::Client;
/// use geokv_client::ConsistencyLevel;
///
/// # async fn demo() -> Result<(), geokv_client::ClientError> {
/// let client = Client::builder()
///     .endpoints(["http://127.0.0.11:7070", "http://127.0.0.12:7070"])
///     .local_datacenter("dc1")
///     .keyspace("default")
///     .consistency(ConsistencyLevel::LocalQuorum)
///     .timeout(Duration::from_secs(2))
///     .retries(3)
///     .build()
///     .await?;
/// client.put("greeting", "hello").await?;
/// let read = client.get("greeting").consistency(ConsistencyLevel::All).await?;
/// assert_eq!(read.values().next().map(|v| &v[..]), Some(&b"hello"[..]));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    /// The known nodes; replaced whole by a refresh (`crate::discovery`),
    /// so a call works on one snapshot from start to end.
    pub(crate) nodes: RwLock<Arc<Vec<Arc<NodeSlot>>>>,
    /// Refreshing the node list, when discovery is on.
    pub(crate) refresh: Option<Refresher>,
    pub(crate) local_dc: Option<String>,
    pub(crate) defaults: Defaults,
    pub(crate) retry: RetryPolicy,
    /// Round-robin position; incremented once per call (relaxed: only spread
    /// matters, not a strict sequence).
    pub(crate) cursor: AtomicUsize,
}

/// Settings a call uses unless it overrides them.
#[derive(Debug, Clone)]
pub(crate) struct Defaults {
    pub keyspace: String,
    pub consistency: ConsistencyLevel,
    pub timeout: Duration,
    /// Sent as `authorization` on every call ([`crate::ClientBuilder::token`]).
    pub token: Option<Bearer>,
}

/// An `authorization: Bearer ROLE:SECRET` value; never printed.
#[derive(Clone)]
pub(crate) struct Bearer(pub tonic::metadata::AsciiMetadataValue);

impl std::fmt::Debug for Bearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Bearer(***)")
    }
}

#[derive(Debug)]
pub(crate) struct NodeSlot {
    pub addr: NodeAddr,
    /// Lazy: connects on first use and reconnects by itself.
    pub channel: Channel,
    /// Set when a connect attempt failed; the node is ordered last until then.
    /// A plain mutex: held only to read or write one `Option<Instant>`.
    pub unreachable_until: Mutex<Option<Instant>>,
}

impl Client {
    /// The token every call sends, if any.
    pub(crate) fn token(&self) -> Option<Bearer> {
        self.inner.defaults.token.clone()
    }

    pub(crate) fn from_arc(inner: Arc<Inner>) -> Self {
        Client { inner }
    }

    /// The current snapshot of the known nodes.
    pub(crate) fn nodes(&self) -> Arc<Vec<Arc<NodeSlot>>> {
        self.inner.nodes.read().clone()
    }

    pub(crate) fn inner(&self) -> &Arc<Inner> {
        &self.inner
    }

    pub(crate) fn defaults(&self) -> &Defaults {
        &self.inner.defaults
    }

    /// Sends one call, retrying per [`RetryPolicy`]: each attempt goes to the
    /// next endpoint in preference order. Returns the answer and the URL of
    /// the endpoint that gave it.
    #[tracing::instrument(name = "geokv.client.call", skip(self, send))]
    pub(crate) async fn call<T, F, Fut>(
        &self,
        op: &'static str,
        idempotent: bool,
        mut send: F,
    ) -> Result<(T, String), ClientError>
    where
        F: FnMut(KvClient<Channel>) -> Fut,
        Fut: Future<Output = Result<T, tonic::Status>>,
    {
        let inner = &self.inner;
        let nodes = self.nodes();
        let order = self.order(&nodes, Instant::now());
        let mut attempt: u32 = 0;
        loop {
            let node = &nodes[order[attempt as usize % order.len()]];
            match send(KvClient::new(node.channel.clone())).await {
                Ok(answer) => {
                    *node.unreachable_until.lock() = None;
                    return Ok((answer, node.addr.url.clone()));
                }
                Err(status) => {
                    let mut err = ClientError::from(status);
                    if let ClientError::Transport { message }
                    | ClientError::ConnectionLost { message } = &mut err
                    {
                        *node.unreachable_until.lock() =
                            Some(Instant::now() + UNREACHABLE_COOLDOWN);
                        if let Some(refresh) = &inner.refresh {
                            refresh.connection_failed();
                        }
                        *message = format!("{}: {message}", node.addr.url);
                    }
                    if !inner.retry.should_retry(attempt, &err, idempotent) {
                        return Err(err);
                    }
                    attempt += 1;
                    let pause = inner.retry.pause(attempt, fastrand::f64(), &err);
                    tracing::debug!(endpoint = %node.addr.url, error = %err, ?pause, attempt, "retrying");
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }

    fn order(&self, nodes: &[Arc<NodeSlot>], now: Instant) -> Vec<usize> {
        let inner = &self.inner;
        let candidates: Vec<Candidate<'_>> = nodes
            .iter()
            .map(|n| Candidate {
                datacenter: n.addr.datacenter.as_deref(),
                healthy: n.addr.up && n.unreachable_until.lock().is_none_or(|until| until <= now),
            })
            .collect();
        let cursor = inner.cursor.fetch_add(1, Ordering::Relaxed);
        preference_order(&candidates, inner.local_dc.as_deref(), cursor)
    }
}

/// The wire options for a call: `count` (explicit R or W) overrides the level
/// on the server when non-zero.
pub(crate) fn wire_options(
    level: ConsistencyLevel,
    count: Option<u32>,
    timeout: Duration,
) -> pb::RequestOptions {
    pb::RequestOptions {
        consistency: level_to_proto(level) as i32,
        explicit_count: count.unwrap_or(0),
        timeout_ms: u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX),
    }
}

/// Wraps a message with a client deadline of `timeout` plus a grace of a
/// fifth (at most 1 s): the server is told `timeout` in the request options,
/// so its own, more informative timeout error (how many replicas answered)
/// normally arrives before the client gives up. The deadline also travels as
/// the `grpc-timeout` header.
/// A token, if any, travels as `authorization`.
pub(crate) fn request<M>(
    message: M,
    timeout: Duration,
    token: Option<&Bearer>,
) -> tonic::Request<M> {
    let grace = (timeout / 5).min(Duration::from_secs(1));
    let mut request = tonic::Request::new(message);
    request.set_timeout(timeout + grace);
    if let Some(Bearer(v)) = token {
        request.metadata_mut().insert("authorization", v.clone());
    }
    request
}
