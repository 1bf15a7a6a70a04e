//! The driven abort of a movement whose joiner or replacement died for good
//! after its reads switched (issue 11, review of stop 26): `removenode ID`
//! proposes the first step ([`Layout::abort`]: reads back to the old
//! owners, the datacenter marked `aborting`; likewise `decommission
//! --cancel` past the switch, `Layout::cancel_leave`); [`drop_abandoned`] proposes
//! the second (the node dropped) only once every live member is on the
//! first, the announce-await of `switch`. The step is read from the layout
//! in force, so a restart of the driver resumes it, and every node runs
//! [`follow_step`] (from `remove::follow`): the first Normal member up by
//! id drives it.
//!
//! Owns that driver and the choice of who drives. Must not choose a step's
//! layout ([`Layout::abort`] does) nor check the dead node's liveness
//! (`removenode` did before the first step).

use std::sync::Arc;
use std::time::Duration;

use super::ops::LayoutHandle;
use super::switch::{Announcing, FinishError};
use crate::layout::{Layout, NodeState};

/// The nodes whose movement is being abandoned in `layout`, by datacenter.
pub fn abandoned(layout: &Layout) -> Vec<String> {
    (layout.aborting.iter())
        .filter_map(|dc| layout.abandoning(dc).map(str::to_string))
        .collect()
}

/// Whether `me` drives the abort in `layout`: the first Normal member by
/// id that `is_up` (`me` counts as up). Two nodes that disagree on
/// liveness both propose the same layout; the CAS takes one.
pub fn drives(layout: &Layout, me: &str, is_up: &dyn Fn(&str) -> bool) -> bool {
    let mut normal: Vec<&str> = (layout.nodes())
        .filter(|(_, _, n)| n.state == NodeState::Normal)
        .map(|(_, _, n)| n.id.as_str())
        .filter(|id| *id == me || is_up(id))
        .collect();
    normal.sort_unstable();
    normal.first() == Some(&me)
}

/// Proposes the second step of the abort of the dead `node` (dropped,
/// its movement ended) once every live member is on the first; the
/// version that drops it (the version in force when it is already
/// dropped). Only the node of an `aborting` movement is dropped (the first
/// step is `removenode`'s, after its liveness check): any other node, but
/// one already Removed, is refused ([`FinishError::NotAbandoned`]) and
/// nothing is proposed (review-abort27 L5, review-elastic28 L6). The
/// upgrade gate is not asked (review-elastic28 L2): this step only takes
/// `aborting` out, and the first step passed the gate. A timed-out
/// announce is an error; calling again resumes.
pub async fn drop_abandoned<L: LayoutHandle>(layout: &L, node: &str) -> Result<u64, FinishError> {
    let now = layout.current();
    let Some((dc, _, n)) = now.node(node) else {
        return Err(crate::layout::LayoutError::UnknownNode(node.into()).into());
    };
    if now.abandoning(dc) != Some(node) {
        return match n.state {
            NodeState::Removed => Ok(now.version),
            _ => Err(FinishError::NotAbandoned(node.into())),
        };
    }
    // A decommission being cancelled ends with the leaver Normal again.
    let next = match now.cancelling(dc) {
        Some(_) => now.cancel_leave(node)?,
        None => now.abort(node)?,
    };
    layout.announced(now.version).await?;
    let version = next.version;
    tracing::info!(node, version, "abort: dropping the abandoned node");
    layout.propose(next).await?;
    Ok(version)
}

/// One pass on this node: drives every abort in progress it is the driver
/// of (`drives`), logging what did not complete (the next pass retries).
pub async fn follow_step(
    cluster: &crate::view::Cluster,
    peers: &Arc<crate::transport::Peers>,
    is_up: &Arc<dyn Fn(&str) -> bool + Send + Sync>,
) {
    let layout = cluster.current().layout.clone();
    if !drives(&layout, cluster.me(), &**is_up) {
        return;
    }
    for node in abandoned(&layout) {
        let handle = Announcing {
            cluster: cluster.clone(),
            peers: peers.clone(),
            is_up: is_up.clone(),
            timeout: Duration::from_secs(30),
        };
        match drop_abandoned(&handle, &node).await {
            Ok(version) => tracing::info!(
                node,
                version,
                "abort complete: node is removed (or, its decommission cancelled, Normal)"
            ),
            Err(e) => tracing::warn!(node, error = %e, "abort: not done; retrying"),
        }
    }
}
