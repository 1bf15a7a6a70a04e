//! [`ClientBuilder`]: collects settings, validates the seed endpoints, asks
//! one of them for the cluster's nodes (discovery) and opens a lazy channel
//! per node.
//!
//! Owns start-up only: after `build()` the node list is kept current by
//! `discovery.rs`. Must not send data requests.
use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use crate::sync::{Mutex, RwLock};
use std::sync::Arc;
use tonic::transport::Channel;

use crate::core::{request, Bearer, Defaults, Inner, NodeSlot};
use crate::dial::{Dialer, Refresher};
use crate::endpoints::{nodes_from_seeds, nodes_from_status, NodeAddr};
use crate::proto::v1 as pb;
use crate::proto::v1::kv_client::KvClient;
use crate::ConsistencyLevel;
use crate::{Client, ClientError, RetryPolicy, TlsOptions};

mod security;
use security::Redacted;

/// Configures and builds a [`Client`].
///
/// Defaults: keyspace `default`, level `LOCAL_QUORUM`, timeout 5 s, connect
/// timeout 1 s, [`RetryPolicy::default`] (2 retries), discovery on.
///
/// # Example
///
/// ```no_run
/// use std::time::Duration;
/// use geokv_client::Client;
///
/// # async fn demo() -> Result<(), geokv_client::ClientError> {
/// let client = Client::builder()
///     .endpoints(["http://127.0.0.11:7070", "http://127.0.0.21:7070"])
///     .local_datacenter("dc1")
///     .timeout(Duration::from_millis(800))
///     .build()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use = "call .build().await to get a Client"]
pub struct ClientBuilder {
    endpoints: Vec<String>,
    local_dc: Option<String>,
    keyspace: String,
    consistency: ConsistencyLevel,
    timeout: Duration,
    connect_timeout: Duration,
    retry: RetryPolicy,
    discover: bool,
    refresh_interval: Duration,
    tls: Option<TlsOptions>,
    token: Option<Redacted>,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            endpoints: Vec::new(),
            local_dc: None,
            keyspace: "default".to_string(),
            consistency: ConsistencyLevel::LocalQuorum,
            timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(1),
            retry: RetryPolicy::default(),
            discover: true,
            refresh_interval: Duration::from_secs(30),
            tls: None,
            token: None,
        }
    }
}

impl ClientBuilder {
    /// Seed endpoints (`http://host:port`, or `host:port`), tried in order
    /// for discovery; adds to any given before.
    ///
    /// # Example
    ///
    /// ```no_run
    /// let b = geokv_client::Client::builder().endpoints(["127.0.0.11:7070", "127.0.0.12:7070"]);
    /// ```
    pub fn endpoints<I, S>(mut self, endpoints: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.endpoints.extend(endpoints.into_iter().map(Into::into));
        self
    }

    /// The datacenter whose coordinators are preferred. When unset, the
    /// datacenter of the node that answered discovery is used.
    ///
    /// # Example
    ///
    /// ```no_run
    /// let b = geokv_client::Client::builder().local_datacenter("eu-west");
    /// ```
    pub fn local_datacenter(mut self, datacenter: impl Into<String>) -> Self {
        self.local_dc = Some(datacenter.into());
        self
    }

    /// The keyspace calls use unless they name one.
    ///
    /// # Example
    ///
    /// ```no_run
    /// let b = geokv_client::Client::builder().keyspace("sessions");
    /// ```
    pub fn keyspace(mut self, keyspace: impl Into<String>) -> Self {
        self.keyspace = keyspace.into();
        self
    }

    /// The consistency level calls use unless they set one.
    ///
    /// # Example
    ///
    /// ```no_run
    /// use geokv_client::ConsistencyLevel;
    /// let b = geokv_client::Client::builder().consistency(ConsistencyLevel::Quorum);
    /// ```
    pub fn consistency(mut self, level: ConsistencyLevel) -> Self {
        self.consistency = level;
        self
    }

    /// The deadline of each attempt unless a call sets one (also used for
    /// discovery).
    ///
    /// # Example
    ///
    /// ```no_run
    /// let b = geokv_client::Client::builder().timeout(std::time::Duration::from_secs(2));
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long opening a TCP connection to one node may take.
    ///
    /// # Example
    ///
    /// ```no_run
    /// let b = geokv_client::Client::builder().connect_timeout(std::time::Duration::from_millis(300));
    /// ```
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Extra attempts after the first (keeps the policy's backoff).
    ///
    /// # Example
    ///
    /// ```no_run
    /// let b = geokv_client::Client::builder().retries(0); // fail fast
    /// ```
    pub fn retries(mut self, retries: u32) -> Self {
        self.retry.retries = retries;
        self
    }

    /// The whole retry policy.
    ///
    /// # Example
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use geokv_client::RetryPolicy;
    /// let b = geokv_client::Client::builder().retry_policy(RetryPolicy {
    ///     retries: 5,
    ///     base: Duration::from_millis(10),
    ///     max: Duration::from_millis(500),
    /// });
    /// ```
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Whether `build()` asks a seed for every node of the cluster (default
    /// true). Without discovery the seeds are the only endpoints, tried in the
    /// order given (first one first).
    ///
    /// # Example
    ///
    /// ```no_run
    /// let b = geokv_client::Client::builder().endpoints(["127.0.0.11:7070"]).discover(false);
    /// ```
    pub fn discover(mut self, discover: bool) -> Self {
        self.discover = discover;
        self
    }

    /// How often the client asks the cluster for its members again after
    /// `build()` (default 30 s; sooner after a node could not be reached),
    /// so it starts using joined nodes and stops using removed ones. Only
    /// with discovery on: [`ClientBuilder::discover`]`(false)` keeps the
    /// given endpoints as they are.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), geokv_client::ClientError> {
    /// let client = geokv_client::Client::builder()
    ///     .endpoints(["http://127.0.0.11:7070"])
    ///     .refresh_interval(std::time::Duration::from_secs(5))
    ///     .build()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn refresh_interval(mut self, every: Duration) -> Self {
        self.refresh_interval = every;
        self
    }

    /// Validates the endpoints, runs discovery (a `Status` call on each seed
    /// in turn until one answers) and returns the client.
    ///
    /// # Errors
    ///
    /// `InvalidArgument` for no endpoint, a malformed URL, or a
    /// `local_datacenter` no node belongs to; otherwise the error of the last
    /// seed tried when none answers discovery.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), geokv_client::ClientError> {
    /// let client = geokv_client::Client::builder()
    ///     .endpoints(["http://127.0.0.11:7070"])
    ///     .build()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn build(self) -> Result<Client, ClientError> {
        let token = self.bearer()?;
        let seeds = nodes_from_seeds(&self.endpoints);
        if seeds.is_empty() {
            return Err(ClientError::invalid("no endpoint given"));
        }
        let mut channels = HashMap::new();
        for seed in &seeds {
            channels.insert(seed.url.clone(), self.channel(&seed.url)?);
        }
        let (nodes, discovered_dc) = if self.discover {
            self.discover_nodes(&seeds, &channels, token.as_ref())
                .await?
        } else {
            (seeds.clone(), None)
        };
        let local_dc = self.local_dc.clone().or(discovered_dc);
        if let (Some(dc), true) = (&local_dc, self.discover) {
            if !nodes.iter().any(|n| n.datacenter.as_ref() == Some(dc)) {
                let mut known: Vec<&str> = nodes
                    .iter()
                    .filter_map(|n| n.datacenter.as_deref())
                    .collect();
                known.sort_unstable();
                known.dedup();
                return Err(ClientError::invalid(format!(
                    "no node in local datacenter {dc:?} (known: {})",
                    known.join(", ")
                )));
            }
        }
        let refresh = self
            .discover
            .then(|| Refresher::new(self.refresh_interval, seeds.clone(), self.dialer()));
        let mut slots = Vec::with_capacity(nodes.len());
        for addr in nodes {
            let channel = match channels.remove(&addr.url) {
                Some(channel) => channel,
                None => self.channel(&addr.url)?,
            };
            slots.push(Arc::new(NodeSlot {
                addr,
                channel,
                unreachable_until: Mutex::new(None),
            }));
        }
        Ok(Client::from_inner(Inner {
            nodes: RwLock::new(Arc::new(slots)),
            refresh,
            local_dc,
            defaults: Defaults {
                keyspace: self.keyspace,
                consistency: self.consistency,
                timeout: self.timeout,
                token,
            },
            retry: self.retry,
            cursor: AtomicUsize::new(0),
        }))
    }

    fn dialer(&self) -> Dialer {
        Dialer {
            tls: self.tls.clone(),
            connect_timeout: self.connect_timeout,
        }
    }

    fn channel(&self, url: &str) -> Result<Channel, ClientError> {
        self.dialer().channel(url)
    }

    /// Asks each seed in turn for the cluster's nodes; returns them and the
    /// answering node's datacenter. Falls back to the seeds if the answer
    /// lists no node with a client address.
    async fn discover_nodes(
        &self,
        seeds: &[NodeAddr],
        channels: &HashMap<String, Channel>,
        token: Option<&Bearer>,
    ) -> Result<(Vec<NodeAddr>, Option<String>), ClientError> {
        let mut last_err = None;
        for seed in seeds {
            let mut kv = KvClient::new(channels[&seed.url].clone());
            match kv
                .status(request(pb::StatusRequest {}, self.timeout, token))
                .await
            {
                Ok(answer) => {
                    let answer = answer.into_inner();
                    let nodes = nodes_from_status(&answer);
                    let dc = Some(answer.local_datacenter).filter(|dc| !dc.is_empty());
                    tracing::debug!(seed = %seed.url, nodes = nodes.len(), ?dc, "discovered");
                    if nodes.is_empty() {
                        return Ok((seeds.to_vec(), dc));
                    }
                    return Ok((nodes, dc));
                }
                Err(status) => {
                    let err = match ClientError::from(status) {
                        ClientError::Transport { message } => ClientError::Transport {
                            message: format!("{}: {message}", seed.url),
                        },
                        err => err,
                    };
                    tracing::debug!(seed = %seed.url, error = %err, "discovery failed");
                    last_err = Some(err);
                }
            }
        }
        Err(last_err.unwrap_or_else(|| ClientError::invalid("no endpoint given")))
    }
}
