//! The client port: gRPC clients to the cluster's nodes (TLS with the
//! cluster CA when it runs TLS, the cluster's admin token when it runs
//! `--auth`), put/get at a level, and the writer and
//! read-back loops the movement tests share. Must not: decide what a test
//! counts as lost; it reports what it read.

use super::Cluster;
use geokv::proto::v1::kv_client::KvClient;
use geokv::proto::v1::*;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// A gRPC client of a node's client port (see [`Cluster::client`]).
pub type Kv = KvClient<InterceptedService<Channel, Bearer>>;

/// Sends `authorization: Bearer TOKEN` on every call that does not carry
/// an `authorization` of its own (a test may present another role's).
#[derive(Clone, Default)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Bearer {
    pub fn new(token: Option<&str>) -> Bearer {
        Bearer(token.map(|t| format!("Bearer {t}").parse().expect("ASCII token")))
    }
}

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            if !req.metadata().contains_key("authorization") {
                req.metadata_mut().insert("authorization", v.clone());
            }
        }
        Ok(req)
    }
}

impl Cluster {
    /// A raw gRPC client to one node's client port, authenticated as the
    /// cluster's admin when the cluster runs `--auth` (the default).
    pub async fn client(&self, id: &str) -> Kv {
        self.client_at(self.node(id).client_address)
    }

    /// [`Cluster::client`] presenting no credential of its own.
    pub fn anonymous_client(&self, id: &str) -> Kv {
        let channel = self.channel_at(self.node(id).client_address);
        KvClient::with_interceptor(channel, Bearer::default())
    }

    /// A raw gRPC client to the client port at `addr` (a node of this
    /// cluster, or one that joined it), over TLS when the cluster runs TLS,
    /// with the admin token when it runs `--auth`.
    pub fn client_at(&self, addr: SocketAddr) -> Kv {
        let bearer = Bearer::new(self.admin_token.as_deref());
        KvClient::with_interceptor(self.channel_at(addr), bearer)
    }

    /// A lazy channel to the client port at `addr` (any gRPC service on
    /// it), over TLS trusting the cluster CA when the cluster runs TLS.
    pub fn channel_at(&self, addr: SocketAddr) -> Channel {
        let mut endpoint = tonic::transport::Endpoint::from_shared(self.client_url_at(addr))
            .unwrap()
            .connect_timeout(Duration::from_secs(2));
        if let Some(ca) = &self.tls_ca {
            let pem = std::fs::read(ca).expect("cluster CA");
            let tls = tonic::transport::ClientTlsConfig::new()
                .ca_certificate(tonic::transport::Certificate::from_pem(pem));
            endpoint = endpoint.tls_config(tls).expect("TLS settings");
        }
        endpoint.connect_lazy()
    }

    /// The URL of the client port at `addr`: `https://` on a TLS cluster.
    pub fn client_url_at(&self, addr: SocketAddr) -> String {
        let scheme = if self.tls_ca.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{addr}")
    }

    /// The URL of node `id`'s client port (see [`Cluster::client_url_at`]).
    pub fn client_url(&self, id: &str) -> String {
        self.client_url_at(self.node(id).client_address)
    }

    /// Clients to every node of datacenter `dc` except `skip`.
    pub fn clients_in(&self, dc: &str, skip: &[&str]) -> Vec<Kv> {
        (self.nodes.iter())
            .filter(|n| n.dc == dc && !skip.contains(&n.id.as_str()))
            .map(|n| self.client_at(n.client_address))
            .collect()
    }

    /// Writes `n` keys `{prefix}-{i}` (value = key) at LOCAL_QUORUM through
    /// node `via`; every one must be acknowledged. The keys.
    pub async fn preload(&self, via: &str, prefix: &str, n: usize) -> Vec<String> {
        let mut c = self.client(via).await;
        let mut keys = Vec::with_capacity(n);
        for i in 0..n {
            let key = format!("{prefix}-{i}");
            put(&mut c, &key, &key, Vec::new(), Consistency::LocalQuorum)
                .await
                .unwrap_or_else(|e| panic!("preload {key}: {e}"));
            keys.push(key);
        }
        keys
    }
}

pub fn opts(level: Consistency) -> Option<RequestOptions> {
    Some(RequestOptions {
        consistency: level as i32,
        explicit_count: 0,
        timeout_ms: 2000,
    })
}

pub async fn put(
    c: &mut Kv,
    key: &str,
    value: &str,
    context: Vec<u8>,
    level: Consistency,
) -> Result<PutResponse, tonic::Status> {
    c.put(PutRequest {
        keyspace: "default".into(),
        key: key.as_bytes().to_vec(),
        value: value.as_bytes().to_vec(),
        context,
        options: opts(level),
    })
    .await
    .map(|r| r.into_inner())
}

pub async fn get(c: &mut Kv, key: &str, level: Consistency) -> Result<GetResponse, tonic::Status> {
    c.get(GetRequest {
        keyspace: "default".into(),
        key: key.as_bytes().to_vec(),
        options: opts(level),
    })
    .await
    .map(|r| r.into_inner())
}

/// The sibling values of a read, sorted.
pub fn values(r: &GetResponse) -> Vec<String> {
    let mut v: Vec<String> = r
        .siblings
        .iter()
        .filter_map(|s| s.value.as_ref())
        .map(|v| String::from_utf8_lossy(v).to_string())
        .collect();
    v.sort();
    v
}

/// Writes unique keys `{tag}-{i}` (value = key) at LOCAL_QUORUM through
/// `clients` in turn until `stop`; the keys acknowledged.
pub async fn writer(clients: Vec<Kv>, tag: String, stop: Arc<AtomicBool>) -> Vec<String> {
    let mut acked = Vec::new();
    write_until(clients, &tag, &stop, |key| acked.push(key)).await;
    acked
}

/// Writes unique keys `{tag}-{i}` (value = key) at LOCAL_QUORUM through
/// `clients` in turn until `stop`, handing each key to `acked` as its
/// acknowledgement comes back (a failed or timed-out write is unknown and
/// never handed over).
pub async fn write_until(
    mut clients: Vec<Kv>,
    tag: &str,
    stop: &AtomicBool,
    mut acked: impl FnMut(String),
) {
    let mut i = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let key = format!("{tag}-{i}");
        let k = clients.len();
        let level = Consistency::LocalQuorum;
        if put(&mut clients[i % k], &key, &key, Vec::new(), level)
            .await
            .is_ok()
        {
            acked(key);
        }
        i += 1;
    }
}

/// Reads every key at `level` through `c` until it returns the key's
/// value (or the deadline `limit` from now); the keys that never did, each
/// with what was read.
pub async fn unread(
    c: &mut Kv,
    keys: &[String],
    level: Consistency,
    limit: Duration,
) -> Vec<String> {
    let deadline = Instant::now() + limit;
    let mut missing = Vec::new();
    for k in keys {
        loop {
            let got = get(c, k, level).await.map(|g| values(&g));
            if got.as_ref().is_ok_and(|v| v == &vec![k.clone()]) {
                break;
            }
            if Instant::now() >= deadline {
                missing.push(format!("{k}: {got:?}"));
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    missing
}

/// Asserts [`unread`] found nothing missing, naming the first ten.
pub async fn assert_all_read(c: &mut Kv, keys: &[String], level: Consistency, limit: Duration) {
    let lost = unread(c, keys, level, limit).await;
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged writes not read at {level:?}: {:?}",
        lost.len(),
        keys.len(),
        &lost[..lost.len().min(10)]
    );
}
