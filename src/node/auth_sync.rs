//! The calling side of the auth state's replication: anti-entropy with one
//! random member every second (`SyncAuth`: offer ours, install theirs —
//! both sides merge), and a push to every member right after a change made
//! here, whose verdicts (holds it, holds a later change undoing it,
//! refused and why, no answer) the change's
//! answer waits for, up to [`ACK_DEADLINE`]. A revoke is in force on every
//! reachable node within a push, or a few anti-entropy rounds for a node
//! the push missed. Internode calls are mutually authenticated under TLS,
//! so only cluster nodes can offer a state. Each answer carries its
//! sender's clock: the peer's offset is recorded (`auth::peer_clocks`).
//!
//! Must not: decide what a state contains or merge states (that is
//! `security::auth`).

use std::sync::Arc;
use std::time::Duration;

use rand::seq::IndexedRandom;
use tokio::sync::{mpsc, watch};

use crate::engine::CallSite;
use crate::proto::v1::internode::AuthMessage;
use crate::security::auth::peer_clocks;
use crate::security::auth::spread::{Ack, Spread, Verdict};
use crate::security::auth::sync::{from_message, to_message};
use crate::security::auth::{now_ms, Auth, AuthState, PushHook};
use crate::transport::{PeerVerdict, Peers, TransportError};
use crate::view::Cluster;

/// Deadline of one `SyncAuth` call.
const CALL_TIMEOUT: Duration = Duration::from_secs(3);

/// How long a change's answer waits for the push's verdicts (a call's
/// deadline, and a second for a connection being set up).
pub const ACK_DEADLINE: Duration = Duration::from_secs(4);

/// Offers `to` our state and installs its answer; what the answer says of
/// `change` (the state of a change made here, pushed), or else of the
/// state offered. The answer's clock gives `to`'s offset, measured on the
/// round trip ([`Auth::heard_clock`]).
async fn exchange(
    auth: &Arc<Auth>,
    peers: &Peers,
    to: &crate::topology::NodeInfo,
    change: Option<Arc<AuthState>>,
) -> Verdict {
    let ours = auth.state();
    let judged = change.unwrap_or_else(|| ours.clone());
    let sent = now_ms();
    let reply = peers.sync_auth(to, to_message(&ours), CALL_TIMEOUT).await;
    if let Ok(msg) = &reply {
        let offset = peer_clocks::on_round_trip(msg.sent_at_ms, sent, now_ms());
        auth.heard_clock(&to.id, offset);
    }
    let (verdict, theirs) = judge(&judged, reply);
    if let Some(theirs) = theirs {
        // A synced save under the install lock: on the blocking pool, not
        // on an async worker (review-authq33 M1).
        let auth = auth.clone();
        let installed = CallSite::BlockingPool.run(move || auth.install(theirs));
        let failed = match installed.await {
            Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(e) => Some(e.to_string()),
        };
        if let Some(e) = failed {
            tracing::warn!(peer = %to.id, error = %e, "auth: installing a peer's state failed");
        }
    }
    if verdict != Verdict::Holds {
        tracing::debug!(peer = %to.id, ?verdict, "auth: a peer does not hold our state");
    }
    verdict
}

/// What a peer's reply to our offer of `ours` says, and its state (to
/// install) if it sent one.
fn judge(
    ours: &AuthState,
    reply: Result<AuthMessage, TransportError>,
) -> (Verdict, Option<AuthState>) {
    match reply {
        Ok(msg) => match from_message(&msg) {
            Ok(Some(theirs)) => (Verdict::of_answer(ours, &theirs), Some(theirs)),
            Ok(None) => (Verdict::Missed("it answered an empty state".into()), None),
            Err(e) => (
                Verdict::Missed(format!("its state does not decode: {e}")),
                None,
            ),
        },
        // It refused the state (`clock_ahead`, ...): nothing installed.
        Err(TransportError::Rpc { code, message, .. }) if code.is_invalid_argument() => {
            (Verdict::of_refusal(&message), None)
        }
        // Another error, labelled by kind (review-authq33 L1): a failed
        // save may have kept it; shedding or draining did not take it.
        Err(TransportError::Rpc {
            code,
            message,
            verdict,
            ..
        }) => {
            let why = match verdict {
                PeerVerdict::MaybeApplied => format!("it may hold it ({code:?}: {message})"),
                _ => format!("it answered {code:?}: {message}"),
            };
            (Verdict::Missed(why), None)
        }
        Err(e) => (Verdict::Missed(e.to_string()), None),
    }
}

/// The hook [`Auth::change`] pushes with: every other member, concurrently,
/// each push in the node's task set (`spawner`), started at once; its
/// answer collects their verdicts until all are in or [`ACK_DEADLINE`].
pub fn push_hook(
    auth: &Arc<Auth>,
    cluster: Cluster,
    peers: Arc<Peers>,
    spawner: crate::tasks::Spawner,
) -> PushHook {
    let auth = Arc::downgrade(auth);
    Arc::new(move |state: Arc<AuthState>| {
        let view = cluster.current();
        let others: Vec<_> = (view.members().iter())
            .filter(|n| n.id != view.me_id())
            .cloned()
            .collect();
        let (tx, rx) = mpsc::unbounded_channel();
        for peer in &others {
            let (auth, peers, peer, tx) = (auth.clone(), peers.clone(), peer.clone(), tx.clone());
            let change = state.clone();
            spawner.spawn("auth push", async move {
                if let Some(auth) = auth.upgrade() {
                    let verdict = exchange(&auth, &peers, &peer, Some(change)).await;
                    let _ = tx.send(Ack {
                        peer: peer.id.to_string(),
                        verdict,
                    });
                }
            });
        }
        let ids = others.iter().map(|n| n.id.to_string()).collect();
        Box::pin(collect(ids, rx, ACK_DEADLINE))
    })
}

/// The verdicts of `peers` arriving on `rx` until each has one or
/// `deadline` passes, decided ([`Spread::decide`]).
async fn collect(
    peers: Vec<String>,
    mut rx: mpsc::UnboundedReceiver<Ack>,
    deadline: Duration,
) -> Spread {
    let mut acks = Vec::new();
    let until = tokio::time::Instant::now() + deadline;
    while acks.len() < peers.len() {
        match tokio::time::timeout_at(until, rx.recv()).await {
            Ok(Some(ack)) => acks.push(ack),
            Ok(None) | Err(_) => break,
        }
    }
    Spread::decide(&peers, acks, deadline.as_millis() as u64)
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
        exchange(&auth, &peers, &peer, None).await;
    }
}

#[cfg(test)]
#[path = "auth_sync_tests.rs"]
mod tests;
