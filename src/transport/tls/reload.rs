//! The reload loop of a node's TLS material: every `every` the files are
//! loaded if their stamps (modification time, size) changed; on a hangup
//! (SIGHUP) they are loaded whatever the stamps say, since a pair copied
//! with its modification time kept (`cp -p`, `rsync -t`) and of the same
//! size looks unchanged. A pair that does not load is refused, logged and
//! counted; the material in use stays.
//!
//! Owns: when to reload and reporting the outcome. Must not: spawn (the
//! caller does, `Tls::spawn_reload`) or load files itself (`material.rs`).

use super::material::Store;
use futures::{Stream, StreamExt};
use std::sync::Arc;
use std::time::Duration;

/// Reloads and their outcome (`ok`, `error`).
pub const RELOADS_METRIC: &str = "geokv_tls_reloads_total";

/// The hangup signals this process receives (none if they cannot be
/// listened to).
pub(super) fn hangups() -> impl Stream<Item = ()> + Unpin + Send {
    use tokio::signal::unix::{signal, SignalKind};
    let hup = signal(SignalKind::hangup())
        .map_err(|e| tracing::warn!(error = %e, "cannot listen to SIGHUP: one would stop the node"))
        .ok();
    Box::pin(futures::stream::unfold(hup, |mut hup| async move {
        match hup.as_mut() {
            Some(h) => h.recv().await.map(|()| ((), hup)),
            None => std::future::pending().await,
        }
    }))
}

/// Runs until `shutdown`: a reload if changed every `every`, a forced one
/// on each item of `hangups`.
pub(super) async fn run(
    store: Arc<Store>,
    every: Duration,
    hangups: impl Stream<Item = ()> + Unpin,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut hangups = hangups.fuse();
    loop {
        let forced = tokio::select! {
            _ = shutdown.wait_for(|v| *v) => return,
            _ = tokio::time::sleep(every) => false,
            Some(()) = hangups.next() => true,
        };
        let outcome = if forced {
            store.reload().map(|()| true)
        } else {
            store.reload_if_changed()
        };
        report(forced, outcome);
    }
}

/// Logs and counts a reload's outcome.
fn report(forced: bool, outcome: Result<bool, super::TlsError>) {
    let why = if forced { "SIGHUP" } else { "files changed" };
    match outcome {
        Ok(false) => {}
        Ok(true) => {
            metrics::counter!(RELOADS_METRIC, "outcome" => "ok").increment(1);
            tracing::info!(why, "TLS certificates reloaded from disk");
        }
        Err(e) => {
            metrics::counter!(RELOADS_METRIC, "outcome" => "error").increment(1);
            tracing::warn!(why, error = %e, "TLS certificates on disk do not load; keeping the previous ones");
        }
    }
}
