//! A gainer's side of a removal (`remove`): announce, then copy what it
//! gains from the survivors (`rereplicate`), reporting `done`, `waiting: …`
//! or, short of survivors past [`SHORTFALL_PATIENCE`], `failed: …` on its
//! board (`GET /movement`).
//!
//! Owns [`Gainer`]. Must not decide who gains or finishes (`remove`), nor
//! propose a layout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::remove::{forced, movement_name, stream_id, Patience, SHORTFALL_PATIENCE};
use super::rereplicate::{rereplicate, RereplicateError, Target};
use super::stream::{Progress, StreamConfig};
use crate::engine::Engine;
use crate::layout::Layout;
use crate::view::Cluster;

/// A gainer's side of a removal.
pub(super) struct Gainer {
    pub(super) cluster: Cluster,
    pub(super) engine: Arc<dyn Engine>,
    pub(super) peers: Arc<crate::transport::Peers>,
    pub(super) is_up: Arc<dyn Fn(&str) -> bool + Send + Sync>,
    pub(super) me: String,
    pub(super) patience: Patience,
    pub(super) throughput: Arc<super::Throughput>,
}

impl Gainer {
    /// Announce, then copy what this node gains in `layout`'s removal of
    /// `dead`, reporting on its board; whether it is done. Once the
    /// removal reads from the gainers the copy is done (the switch is
    /// proposed only after every gainer reported it): it is not redone,
    /// so a survivor down by then cannot hold the finish back (review of
    /// the switch, M2).
    pub(super) async fn copy(&mut self, layout: &Layout, dead: &str) -> bool {
        let me = self.me.clone();
        let board = super::progress::board(&me);
        let progress = Arc::new(Progress::default());
        board.start(
            &movement_name(layout, dead),
            layout.version,
            progress.clone(),
        );
        if super::replace::copied(layout, dead) {
            board.status("done");
            return true;
        }
        // As for a join: every live member must send writes to this
        // pending replica before the copy passes a key.
        let wait = Duration::from_secs(30);
        let (cluster, peers) = (&self.cluster, &self.peers);
        let announced =
            super::announce::until_announced(cluster, peers, &*self.is_up, layout.version, wait);
        if let Err(e) = announced.await {
            board.status(&format!("waiting: {e}"));
            return false;
        }
        let source = super::ops::peer_source(cluster, peers, &self.is_up);
        let target = Target {
            layout,
            gainer: &me,
            dead,
            stream_id: &stream_id(layout, dead),
            force: forced(layout, dead),
        };
        let cfg = StreamConfig::capped(self.throughput.clone());
        match rereplicate(
            target,
            self.engine.clone(),
            Arc::new(source),
            &cfg,
            progress,
        )
        .await
        {
            Ok(short) => {
                self.patience.reset();
                board.warn(short.iter().map(|s| s.to_string()).collect());
                board.status("done");
                tracing::info!(node = %me, dead, forced = short.len(), "removal: ranges copied");
                true
            }
            Err(RereplicateError::Shortfall(s))
                if self.patience.short(Instant::now(), SHORTFALL_PATIENCE) =>
            {
                let secs = SHORTFALL_PATIENCE.as_secs();
                board.status(&format!("failed: {s}; waited {secs} s for survivors. Bring them up (the copy resumes by itself) or run `geokv removenode {dead} --force` to copy from the survivors that are up (writes only the missing ones hold are lost)"));
                tracing::error!(node = %me, dead, shortfall = %s, "removal: too few survivors; waiting for them or `removenode --force`");
                false
            }
            Err(e) => {
                board.status(&format!("waiting: {e}"));
                tracing::warn!(node = %me, dead, error = %e, "removal: copy not finished; retrying");
                false
            }
        }
    }
}
