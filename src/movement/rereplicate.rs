//! Re-replicating a dead node's ranges into this node (replace, removenode):
//! the ranges this node gains in the layout's movement, each copied from
//! the survivors [`super::survivors::choose`] picks, one resumable
//! [`Streamer`] per source under `STREAM_ID/SOURCE`, all reporting into one
//! [`Progress`].
//!
//! Cursors are keyed by source as well as range: should a later attempt
//! pick another survivor for a range (one went down), that survivor's copy
//! is streamed from its start, never resumed at a key another source
//! reached.
//!
//! Forced (`geokv removenode --force`), a range whose survivors fall short
//! is copied from those that are up (none: nothing) and returned as a
//! [`Shortfall`], so the caller can say which ranges may have lost writes.
//!
//! Owns [`rereplicate`]. Must not change the layout.

use std::sync::Arc;

use super::plan::{gains, PlanError};
use super::stream::{Progress, RangeSource, StreamConfig, StreamError, Streamer};
use super::survivors::{by_source, choose, Shortfall};
use crate::engine::Engine;
use crate::layout::Layout;

/// Why a re-replication stopped; its cursors stay, running it again resumes.
#[derive(Debug, thiserror::Error)]
pub enum RereplicateError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("waiting for survivors: {0}")]
    Shortfall(#[from] Shortfall),
    #[error("streaming stopped (it resumes): {0}")]
    Stream(#[from] StreamError),
}

/// What a re-replication copies: the ranges `gainer` gains in `layout`,
/// whose movement replaces or removes `dead`, under `stream_id`.
pub struct Target<'a> {
    pub layout: &'a Layout,
    pub gainer: &'a str,
    pub dead: &'a str,
    pub stream_id: &'a str,
    /// Copy from fewer survivors than [`super::survivors::need`] asks
    /// rather than fail.
    pub force: bool,
}

/// Copies every range of `t` from survivors into `engine`; the ranges a
/// forced copy took from fewer survivors than needed.
pub async fn rereplicate<S: RangeSource>(
    t: Target<'_>,
    engine: Arc<dyn Engine>,
    source: Arc<S>,
    cfg: &StreamConfig,
    progress: Arc<Progress>,
) -> Result<Vec<Shortfall>, RereplicateError> {
    let Target {
        layout,
        gainer,
        dead,
        stream_id,
        force,
    } = t;
    let plan = gains(layout, gainer)?;
    let up = |id: &str| source.is_up(id);
    let mut short = Vec::new();
    let mut choices = Vec::with_capacity(plan.len());
    for g in &plan {
        match choose(layout, g, gainer, dead, &up) {
            Ok(sources) => choices.push(sources),
            Err(s) if force => {
                tracing::warn!(gainer, dead, shortfall = %s,
                    "forced copy (removal or replacement): from fewer survivors; writes in this range may be lost");
                choices.push(s.up.clone());
                short.push(s);
            }
            Err(s) => return Err(s.into()),
        }
    }
    let groups = by_source(&plan, &choices);
    progress.begin(groups.values().map(|g| g.len() as u64).sum());
    for (from, list) in &groups {
        let id = format!("{stream_id}/{from}");
        let streamer = Streamer::new(engine.clone(), source.clone(), &id, cfg.clone())
            .with_progress(progress.clone());
        streamer.run_counted(list).await?;
    }
    Ok(short)
}
