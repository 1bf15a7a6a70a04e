//! The end of a movement, driven: the steps of `layout/switch.rs`
//! (switch reads to the new owners, then finish), each proposed only once
//! every live member is on the version before it (issue 11, audit W2).
//!
//! Owns [`finish_movement`] (shared by join, decommission, replace and
//! removal) and [`Announcing`], the production [`LayoutHandle`] whose
//! [`LayoutHandle::announced`] asks every live member (`announce`). Each
//! step reads the layout in force, so after a crash of the node driving it
//! the same call resumes at the step the layout is at (an announce that
//! timed out is an error the caller retries). Must not stream nor choose
//! the layout of a step (that is [`Layout::next_finish_step`]).

use std::sync::Arc;
use std::time::Duration;

use super::ops::{LayoutHandle, ProposeError};
use crate::layout::{FinishStep, Layout, LayoutError};
use crate::transport::Peers;
use crate::view::Cluster;

/// A finish that did not complete; calling [`finish_movement`] again resumes it.
#[derive(Debug, thiserror::Error)]
pub enum FinishError {
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error(transparent)]
    Propose(#[from] ProposeError),
    #[error(
        "node '{0}' is not abandoned (no `removenode` aborted its movement); nothing proposed"
    )]
    NotAbandoned(String),
    /// The switch of reads waits for a member's build (`upgrade`).
    #[error(transparent)]
    NotUpgraded(#[from] super::upgrade::NotUpgraded),
}

/// Proposes the steps ending the movement that moves `node` until it is
/// finished, each once every live member is on the layout before it
/// ([`LayoutHandle::announced`]); the version of the finished layout.
pub async fn finish_movement<L: LayoutHandle>(layout: &L, node: &str) -> Result<u64, FinishError> {
    loop {
        let now = layout.current();
        let step = now.next_finish_step(node)?;
        if matches!(step, FinishStep::SwitchReads(_)) {
            layout.upgraded(node)?;
        }
        layout.announced(now.version).await?;
        let done = matches!(step, FinishStep::Finish(_));
        let next = match step {
            FinishStep::SwitchReads(l) | FinishStep::Finish(l) => l,
        };
        let version = next.version;
        tracing::info!(node, version, done, "movement step proposed");
        layout.propose(next).await?;
        if done {
            return Ok(version);
        }
    }
}

/// The node's cluster view, with the announce to every live member
/// through `peers` (`is_up` says who is live) bounded by `timeout`.
pub struct Announcing {
    pub cluster: Cluster,
    pub peers: Arc<Peers>,
    pub is_up: Arc<dyn Fn(&str) -> bool + Send + Sync>,
    pub timeout: Duration,
}

impl LayoutHandle for Announcing {
    fn current(&self) -> Arc<Layout> {
        LayoutHandle::current(&self.cluster)
    }

    async fn propose(&self, next: Layout) -> Result<(), ProposeError> {
        LayoutHandle::propose(&self.cluster, next).await
    }

    fn upgraded(&self, except: &str) -> Result<(), super::upgrade::NotUpgraded> {
        LayoutHandle::upgraded(&self.cluster, except)
    }

    async fn announced(&self, version: u64) -> Result<(), ProposeError> {
        let is_up = &*self.is_up;
        super::announce::until_announced(&self.cluster, &self.peers, is_up, version, self.timeout)
            .await
            .map_err(|e| ProposeError(e.to_string()))
    }
}
