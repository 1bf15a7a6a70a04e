//! The end of a movement, driven: the steps of `layout/switch.rs`
//! (switch reads to the new owners, then finish), each proposed only once
//! every live member is on the version before it (issue 11, audit W2).
//!
//! Owns [`finish_movement`] (shared by join, decommission, replace and
//! removal; a removal's finisher passes the movement whose copies it
//! checked, [`finish_movement_expecting`]) and [`Announcing`], the production [`LayoutHandle`] whose
//! [`LayoutHandle::announced`] asks every live member (`announce`). Each
//! step reads the layout in force, so after a crash of the node driving it
//! the same call resumes at the step the layout is at (an announce that
//! timed out is an error the caller retries). Must not stream nor choose
//! the layout of a step (that is [`Layout::next_finish_step`]).

use std::sync::Arc;
use std::time::Duration;

use super::ops::{LayoutHandle, ProposeError};
use crate::layout::{FinishStep, Layout, LayoutError, Movement};
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
    /// The movement in force is not the one whose copies were checked (a
    /// node joined the removal since: its ranges are not copied yet).
    #[error(
        "the movement of '{node}' changed since its copies were checked \
         (checked {checked:?}, now {now:?}); nothing proposed"
    )]
    Changed {
        node: String,
        checked: Box<Movement>,
        now: Option<Box<Movement>>,
    },
}

/// Proposes the steps ending the movement that moves `node` until it is
/// finished, each once every live member is on the layout before it
/// ([`LayoutHandle::announced`]); the version of the finished layout.
pub async fn finish_movement<L: LayoutHandle>(layout: &L, node: &str) -> Result<u64, FinishError> {
    finish_movement_expecting(layout, node, None).await
}

/// [`finish_movement`], refusing (proposing nothing) when the datacenter's
/// movement in force is not `checked`, the one whose copies the caller
/// verified (review-cancel31 M1: a node joined to a removal after its
/// gainers reported). Compared on the snapshot each step is built from;
/// the proposal's CAS at its version closes the gap after it.
pub async fn finish_movement_expecting<L: LayoutHandle>(
    layout: &L,
    node: &str,
    checked: Option<&Movement>,
) -> Result<u64, FinishError> {
    loop {
        let now = layout.current();
        if let Some(checked) = checked {
            let dc = now.node(node).map(|(dc, _, _)| dc);
            let in_force = dc.and_then(|dc| now.movements.get(dc));
            if in_force != Some(checked) {
                return Err(FinishError::Changed {
                    node: node.into(),
                    checked: Box::new(checked.clone()),
                    now: in_force.cloned().map(Box::new),
                });
            }
        }
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
