//! The calling side of the auth state's replication: anti-entropy with one
//! random member every second (`SyncAuth`: offer ours, install theirs —
//! both sides merge), and a push to every member right after a change made
//! here. A revoke is in force on every reachable node within a push, or a
//! few anti-entropy rounds for a node the push missed. Internode calls are
//! mutually authenticated under TLS, so only cluster nodes can offer a state.
//!
//! Must not: decide what a state contains or merge states (that is
//! `security::auth`).

use std::sync::Arc;
use std::time::Duration;

use rand::seq::IndexedRandom;
use tokio::sync::watch;

use crate::security::auth::sync::{from_message, to_message};
use crate::security::auth::{Auth, AuthState, PushHook};
use crate::transport::Peers;
use crate::view::Cluster;

/// Deadline of one `SyncAuth` call.
const CALL_TIMEOUT: Duration = Duration::from_secs(3);

async fn exchange(auth: &Auth, peers: &Peers, to: &crate::topology::NodeInfo) {
    match peers
        .sync_auth(to, to_message(&auth.state()), CALL_TIMEOUT)
        .await
    {
        Ok(reply) => match from_message(&reply) {
            Ok(Some(theirs)) => {
                if let Err(e) = auth.install(theirs) {
                    tracing::warn!(peer = %to.id, error = %e, "auth: installing a peer's state failed");
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(peer = %to.id, error = %e, "auth: a peer's state does not decode")
            }
        },
        Err(e) => tracing::debug!(peer = %to.id, error = %e, "auth: sync failed"),
    }
}

/// The hook [`Auth::change`] pushes with: every other member, concurrently.
/// Each push runs in the node's task set (`spawner`).
pub fn push_hook(
    auth: &Arc<Auth>,
    cluster: Cluster,
    peers: Arc<Peers>,
    spawner: crate::tasks::Spawner,
) -> PushHook {
    let auth = Arc::downgrade(auth);
    Arc::new(move |_state: Arc<AuthState>| {
        let view = cluster.current();
        for peer in view.members().iter().filter(|n| n.id != view.me_id()) {
            let (auth, peers, peer) = (auth.clone(), peers.clone(), peer.clone());
            spawner.spawn("auth push", async move {
                if let Some(auth) = auth.upgrade() {
                    exchange(&auth, &peers, &peer).await;
                }
            });
        }
    })
}

/// Anti-entropy with one random other member every `every`, until `shutdown`.
pub async fn run(
    auth: Arc<Auth>,
    cluster: Cluster,
    peers: Arc<Peers>,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.wait_for(|v| *v) => return,
        }
        let view = cluster.current();
        let others: Vec<_> = (view.members().iter())
            .filter(|n| n.id != view.me_id())
            .collect();
        let Some(peer) = others.choose(&mut rand::rng()).map(|n| (*n).clone()) else {
            continue;
        };
        exchange(&auth, &peers, &peer).await;
    }
}
