//! The public calls of [`Client`]: starting a builder, get / put /
//! resolve / delete (each returns its request builder, sent by `.await`),
//! status, and what the client knows of the cluster.
//!
//! Must not: send anything but through [`Client::call`] (`core.rs`, the one
//! attempt loop), or hold state of its own.
use crate::core::request;
use crate::proto::v1 as pb;
use crate::read::Get;
use crate::write::{Delete, Put};
use crate::{CausalContext, Client, ClientBuilder, ClientError, ClusterStatus, GetResult};

impl Client {
    /// Starts configuring a client; see [`ClientBuilder`].
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
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// Reads every sibling of `key` and their causal context. Returns a
    /// request builder: set per-call options, then `.await` it. Retried on
    /// retriable errors (a read is idempotent).
    ///
    /// # Example
    ///
    /// ```no_run
    /// use geokv_client::ConsistencyLevel;
    ///
    /// # async fn demo(client: geokv_client::Client) -> Result<(), geokv_client::ClientError> {
    /// let read = client.get("k").await?;
    /// let strong = client.get("k").consistency(ConsistencyLevel::EachQuorum).await?;
    /// let two = client.get("k").r(2).keyspace("sessions").await?;
    /// # Ok(()) }
    /// ```
    pub fn get(&self, key: impl AsRef<[u8]>) -> Get {
        Get::new(self.clone(), key.as_ref().to_vec())
    }

    /// Writes `value` under `key` as a blind write (no context: it becomes a
    /// sibling of whatever is stored). Chain [`Put::context`] to replace what a
    /// read saw. Not retried once it may have reached a coordinator.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo(client: geokv_client::Client) -> Result<(), geokv_client::ClientError> {
    /// let written = client.put("k", "v").w(2).await?;
    /// println!("{} acks", written.acks);
    /// # Ok(()) }
    /// ```
    pub fn put(&self, key: impl AsRef<[u8]>, value: impl Into<Vec<u8>>) -> Put {
        Put::new(self.clone(), key.as_ref().to_vec(), value.into())
    }

    /// A put carrying `context`: replaces exactly the versions it covers.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo(client: geokv_client::Client) -> Result<(), geokv_client::ClientError> {
    /// let read = client.get("counter").await?;
    /// client.put_with_context("counter", "7", &read.context).await?;
    /// # Ok(()) }
    /// ```
    pub fn put_with_context(
        &self,
        key: impl AsRef<[u8]>,
        value: impl Into<Vec<u8>>,
        context: &CausalContext,
    ) -> Put {
        self.put(key, value).context(context)
    }

    /// Writes back one value that resolves every sibling `read` returned
    /// (a put with the read's context).
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo(client: geokv_client::Client) -> Result<(), geokv_client::ClientError> {
    /// let read = client.get("cart").await?;
    /// if read.siblings.len() > 1 {
    ///     let merged = read.values().max_by_key(|v| v.len()).cloned().unwrap_or_default();
    ///     client.resolve("cart", merged.to_vec(), &read).await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn resolve(
        &self,
        key: impl AsRef<[u8]>,
        value: impl Into<Vec<u8>>,
        read: &GetResult,
    ) -> Put {
        self.put_with_context(key, value, &read.context)
    }

    /// Deletes the versions `context` covers (pass a read's context; an empty
    /// context deletes nothing already stored and leaves a tombstone sibling).
    /// Not retried once it may have reached a coordinator.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo(client: geokv_client::Client) -> Result<(), geokv_client::ClientError> {
    /// let read = client.get("k").await?;
    /// client.delete("k", &read.context).await?;
    /// # Ok(()) }
    /// ```
    pub fn delete(&self, key: impl AsRef<[u8]>, context: &CausalContext) -> Delete {
        Delete::new(self.clone(), key.as_ref().to_vec(), context.clone())
    }

    /// The cluster's nodes and keyspaces, as the answering node sees them.
    /// Retried on retriable errors.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo(client: geokv_client::Client) -> Result<(), geokv_client::ClientError> {
    /// let status = client.status().await?;
    /// println!("{} answered for cluster {}", status.answered_by, status.cluster);
    /// # Ok(()) }
    /// ```
    pub async fn status(&self) -> Result<ClusterStatus, ClientError> {
        let timeout = self.defaults().timeout;
        let token = self.token();
        let (status, _) = self
            .call("status", true, |mut kv| {
                let request = request(pb::StatusRequest {}, timeout, token.as_ref());
                async move { kv.status(request).await.map(tonic::Response::into_inner) }
            })
            .await?;
        Ok(status.into())
    }

    /// The datacenter whose nodes are preferred, if any: the one given to the
    /// builder, else the datacenter of the node that answered discovery.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # fn demo(client: geokv_client::Client) {
    /// println!("local dc: {}", client.local_datacenter().unwrap_or("(none)"));
    /// # }
    /// ```
    pub fn local_datacenter(&self) -> Option<&str> {
        self.inner().local_dc.as_deref()
    }

    /// Every known endpoint URL, in discovery order. With discovery on,
    /// the list follows the cluster's members: it is asked again every
    /// [`ClientBuilder::refresh_interval`] and soon after a node could not
    /// be reached, so joined nodes appear and removed ones disappear.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # fn demo(client: geokv_client::Client) {
    /// for url in client.endpoints() {
    ///     println!("{url}");
    /// }
    /// # }
    /// ```
    pub fn endpoints(&self) -> Vec<String> {
        (self.nodes().iter()).map(|n| n.addr.url.clone()).collect()
    }
}
