//! The automatic cleanup: [`follow_cleanup`] drops the ranges this node
//! no longer replicates once a movement has finished and every live
//! member is on the layout that finished it. Must not clean up while a
//! movement is in progress (`Control::cleanup` refuses it) or change the
//! layout.

use std::sync::Arc;

use tokio::sync::watch;

use super::control::Control;

/// Cleans up after every movement that finishes: once the view in force
/// has no movement while the one before had one, and every live member is
/// on it (a coordinator on an older view still reads the old owners).
pub async fn follow_cleanup(control: Arc<Control>, mut shutdown: watch::Receiver<bool>) {
    let mut views = control.cluster.subscribe();
    let mut moving = !views.borrow().layout.movements.is_empty();
    // A movement finished and its cleanup has not run yet (it is retried on
    // the next view when the view changed under it).
    let mut owed = false;
    loop {
        tokio::select! {
            r = views.changed() => if r.is_err() { return },
            _ = shutdown.wait_for(|v| *v) => return,
        }
        let view = views.borrow_and_update().clone();
        let was = std::mem::replace(&mut moving, !view.layout.movements.is_empty());
        owed |= was && !moving;
        if !owed || moving || view.me().is_none() {
            continue;
        }
        let announced = tokio::select! {
            r = control.announce(view.version()) => r,
            _ = shutdown.wait_for(|v| *v) => return,
        };
        if let Err(e) = announced {
            tracing::warn!(error = %e, "automatic cleanup skipped; run `geokv cleanup`");
            continue;
        }
        match control.cleanup().await {
            Ok(c) => {
                owed = false;
                tracing::info!(
                    ranges = c.ranges.len(),
                    keys = c.keys,
                    bytes = c.bytes,
                    version = view.version(),
                    "cleanup after the movement"
                )
            }
            Err(e) => tracing::info!(error = %e, "automatic cleanup not run"),
        }
    }
}
