//! The node list after `build()`: a background task per client that asks a
//! known node (or a seed) for the cluster's members with the Status RPC
//! every refresh interval, and soon after a connection failure, then swaps
//! in the merged list (new nodes get a lazy channel, removed ones are
//! dropped, known ones keep theirs).
//!
//! Owns the task, the asking and the swap. The decisions (when, and how a
//! list replaces another) are `refresh.rs`'s; the channels and the refresh
//! state, `dial.rs`'s. Must not send data requests.
use std::sync::{Arc, Weak};
use std::time::Instant;

use crate::sync::Mutex;
use tonic::transport::Channel;

use crate::core::{request, Inner, NodeSlot};
use crate::dial::Refresher;
use crate::endpoints::{nodes_from_status, NodeAddr};
use crate::proto::v1 as pb;
use crate::proto::v1::kv_client::KvClient;
use crate::refresh::merge;
use crate::{Client, ClientError};

impl Client {
    /// A client on `inner`, its refresh task started (when discovery is on).
    pub(crate) fn from_inner(inner: Inner) -> Self {
        let client = Client::from_arc(Arc::new(inner));
        spawn(&client);
        client
    }
}

/// Starts `client`'s refresh task on the current tokio runtime (none
/// outside one). The task holds the client weakly: it ends once every
/// clone of the client is dropped.
fn spawn(client: &Client) {
    let Some(refresh) = &client.inner().refresh else {
        return;
    };
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::debug!("no tokio runtime: the node list stays as discovered");
        return;
    };
    let (weak, wake) = (Arc::downgrade(client.inner()), refresh.wake.clone());
    runtime.spawn(run(weak, wake));
}

async fn run(weak: Weak<Inner>, wake: Arc<tokio::sync::Notify>) {
    loop {
        let due = match weak.upgrade() {
            Some(inner) => inner.refresh.as_ref().map(|r| r.schedule.lock().next_due()),
            None => return,
        };
        let Some(due) = due else { return };
        // Woken early by a connection failure: look at the schedule again.
        let _ = tokio::time::timeout_at(due.into(), wake.notified()).await;
        let Some(inner) = weak.upgrade() else { return };
        let client = Client::from_arc(inner);
        let Some(refresh) = &client.inner().refresh else {
            return;
        };
        if !refresh.schedule.lock().due(Instant::now()) {
            continue;
        }
        if let Err(e) = client.refresh_nodes().await {
            tracing::debug!(error = %e, "refreshing the node list failed; keeping it");
        }
    }
}

impl Client {
    /// Asks the cluster for its current members now (a known node, else a
    /// seed, with the Status RPC) and replaces the node list with them:
    /// joined nodes are added, removed ones dropped, known ones keep their
    /// connection. Returns whether the list changed. The client does this
    /// by itself every [`crate::ClientBuilder::refresh_interval`] and soon
    /// after a node could not be reached; call it to learn a change at once.
    /// Without discovery (`discover(false)`) the list is fixed and this
    /// returns `Ok(false)`.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo(client: geokv_client::Client) -> Result<(), geokv_client::ClientError> {
    /// if client.refresh_nodes().await? {
    ///     println!("now using {:?}", client.endpoints());
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn refresh_nodes(&self) -> Result<bool, ClientError> {
        let Some(refresh) = &self.inner().refresh else {
            return Ok(false);
        };
        let answer = self.ask_members(refresh).await;
        refresh.schedule.lock().refreshed(Instant::now());
        let discovered = nodes_from_status(&answer?);
        let known = self.nodes();
        let addrs: Vec<NodeAddr> = known.iter().map(|n| n.addr.clone()).collect();
        let plan = merge(&addrs, discovered);
        if !plan.changes(&addrs) {
            return Ok(false);
        }
        let mut slots = Vec::with_capacity(plan.nodes.len());
        for (addr, at) in plan.nodes {
            let slot = match at.map(|i| &known[i]) {
                Some(old) if old.addr == addr => old.clone(),
                Some(old) => Arc::new(NodeSlot {
                    addr,
                    channel: old.channel.clone(),
                    unreachable_until: Mutex::new(*old.unreachable_until.lock()),
                }),
                None => Arc::new(NodeSlot {
                    channel: refresh.dialer.channel(&addr.url)?,
                    addr,
                    unreachable_until: Mutex::new(None),
                }),
            };
            slots.push(slot);
        }
        tracing::info!(nodes = slots.len(), removed = ?plan.removed, "node list refreshed");
        *self.inner().nodes.write() = Arc::new(slots);
        Ok(true)
    }

    /// The first Status answer from a known node (those believed up first)
    /// or, failing all, a seed.
    async fn ask_members(&self, refresh: &Refresher) -> Result<pb::StatusResponse, ClientError> {
        let mut known: Vec<Arc<NodeSlot>> = self.nodes().to_vec();
        known.sort_by_key(|n| !n.addr.up);
        let mut channels: Vec<(String, Channel)> = (known.iter())
            .map(|n| (n.addr.url.clone(), n.channel.clone()))
            .collect();
        for seed in &refresh.seeds {
            if !channels.iter().any(|(url, _)| *url == seed.url) {
                channels.push((seed.url.clone(), refresh.dialer.channel(&seed.url)?));
            }
        }
        let defaults = self.defaults();
        let mut last = ClientError::invalid("no node to ask");
        for (url, channel) in channels {
            let req = request(
                pb::StatusRequest {},
                defaults.timeout,
                defaults.token.as_ref(),
            );
            match KvClient::new(channel).status(req).await {
                Ok(answer) => return Ok(answer.into_inner()),
                Err(status) => {
                    tracing::debug!(%url, error = %status, "asking for members failed");
                    last = ClientError::from(status);
                }
            }
        }
        Err(last)
    }
}
