//! One repair session: two sides (this node's engine or a peer) compare the
//! Merkle leaves of a token range, and for each differing sub-range their
//! rows are merge-joined page by page ([`super::join`]) and each side is sent
//! the rows it lacks. Each side is a `replica::Handle` (this node's replica
//! or a peer's): leaves, scans and merges go through it.
//!
//! Owns the I/O of a session ([`SessionIo`]): deadlines, page size, push
//! concurrency. Must not: choose ranges or peers, check liveness, or keep
//! state between sessions.

use super::diff::differing_ranges;
use super::error::RepairError;
use super::join::{Join, Row, Transfers, Which};
use super::plan::Side;
use crate::replica::handle::{Handle, PlannedOn};
use crate::replica::Replica;
use crate::ring::{Ring, TokenRange};
use crate::topology::{NodeIdx, NodeInfo};
use crate::transport::Peers;
use crate::view::{Cluster, ClusterView};
use std::sync::Arc;
use std::time::Duration;

/// Deadlines and sizes of session I/O.
#[derive(Clone, Debug)]
pub struct SessionLimits {
    /// Building a tree reads the whole range on the peer: generous.
    pub merkle_timeout: Duration,
    /// One page of `RangeScan`, one `ReplicaWrite`.
    pub call_timeout: Duration,
    /// Rows per scanned page (small pages keep foreground latency flat).
    pub page_rows: u32,
    /// `ReplicaWrite`s in flight towards one peer.
    pub push_concurrency: usize,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            merkle_timeout: Duration::from_secs(120),
            call_timeout: Duration::from_secs(10),
            page_rows: 256,
            push_concurrency: 4,
        }
    }
}

/// What one session found and moved.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SessionStats {
    pub leaves_differing: u64,
    pub sub_ranges: u64,
    /// Keys merged into side A / side B.
    pub to_a: u64,
    pub to_b: u64,
}

/// The engine, peers and limits a session works with.
pub struct SessionIo {
    /// The live view; a pass pins one ([`SessionIo::pin`]) and places every
    /// range and resolves every node in it from start to end.
    pub cluster: Cluster,
    pub replica: Arc<Replica>,
    pub peers: Arc<Peers>,
    pub limits: SessionLimits,
    /// The view the running pass pinned; `None` between passes.
    pub pinned: parking_lot::RwLock<Option<Arc<ClusterView>>>,
}

/// A pinned view, unpinned when dropped (see [`SessionIo::pin`]).
pub struct Pinned<'a> {
    io: &'a SessionIo,
    version: u64,
}

impl Pinned<'_> {
    /// The layout version pinned.
    pub fn version(&self) -> u64 {
        self.version
    }
}

impl Drop for Pinned<'_> {
    fn drop(&mut self) {
        *self.io.pinned.write() = None;
    }
}

fn direction(side: Side) -> &'static str {
    match side {
        Side::Local => "pull",
        Side::Peer(_) => "push",
    }
}

impl SessionIo {
    /// No pass running yet.
    pub fn new(
        cluster: Cluster,
        replica: Arc<Replica>,
        peers: Arc<Peers>,
        limits: SessionLimits,
    ) -> Self {
        SessionIo {
            cluster,
            replica,
            peers,
            limits,
            pinned: parking_lot::RwLock::new(None),
        }
    }

    /// Pins the view in force for one pass (passes are serialised by the
    /// scheduler): until the guard drops, [`Self::ring`], [`Self::me`] and
    /// [`Self::peer`] answer from it, so the ring indexes a plan took name
    /// the same nodes when its sessions run minutes later.
    pub fn pin(&self) -> Pinned<'_> {
        let view = self.cluster.current();
        let version = view.version();
        *self.pinned.write() = Some(view);
        Pinned { io: self, version }
    }

    /// The pinned view, or the one in force outside a pass.
    fn view(&self) -> Arc<ClusterView> {
        (self.pinned.read().clone()).unwrap_or_else(|| self.cluster.current())
    }

    /// Whether the view in force is no longer the pinned one (a pass then
    /// keeps its anti-entropy records for the next pass).
    pub fn view_changed(&self) -> bool {
        self.pinned
            .read()
            .as_ref()
            .is_some_and(|v| v.version() != self.cluster.current().version())
    }

    /// The ring of the pinned view.
    pub fn ring(&self) -> Arc<Ring> {
        self.view().ring.clone()
    }

    /// This node in the pinned view ([`crate::view::NOT_A_MEMBER`] if it
    /// is not a member).
    pub fn me(&self) -> NodeIdx {
        self.view().me_idx()
    }

    /// Node `n` of the pinned view.
    pub fn peer(&self, n: NodeIdx) -> Option<NodeInfo> {
        self.view().members().get(n.0 as usize).cloned()
    }

    fn peer_or_err(&self, n: NodeIdx) -> Result<NodeInfo, RepairError> {
        self.peer(n).ok_or_else(|| RepairError::BadReply {
            peer: n.to_string(),
            detail: "not a member of the layout any more".to_string(),
        })
    }

    fn name(&self, side: Side) -> String {
        match side {
            Side::Local => self.peers.me().id.clone(),
            Side::Peer(n) => self.peer(n).map_or_else(|| n.to_string(), |p| p.id),
        }
    }

    /// `side`'s replica.
    fn handle(&self, side: Side) -> Result<Handle, RepairError> {
        Ok(match side {
            Side::Local => Handle::Here(self.replica.clone(), self.cluster.clone()),
            Side::Peer(n) => Handle::Peer {
                peers: self.peers.clone(),
                node: self.peer_or_err(n)?,
            },
        })
    }

    async fn leaves(
        &self,
        side: Side,
        keyspace: &str,
        range: TokenRange,
        depth: u32,
    ) -> Result<Vec<Vec<u8>>, RepairError> {
        let timeout = self.limits.merkle_timeout;
        // Peers refuse deeper trees; both sides cap the same.
        let depth = depth.min(crate::replica::merkle::MAX_DEPTH);
        Ok((self.handle(side)?)
            .leaves(keyspace, range, depth, timeout)
            .await?)
    }

    /// One page of `side`'s rows in `range` after `after`; `(rows, more)`.
    async fn scan(
        &self,
        side: Side,
        keyspace: &str,
        range: TokenRange,
        after: Option<Vec<u8>>,
    ) -> Result<(Vec<Row>, bool), RepairError> {
        let (limit, timeout) = (self.limits.page_rows.max(1), self.limits.call_timeout);
        Ok((self.handle(side)?)
            .scan(keyspace, range, after, limit, timeout)
            .await?)
    }

    /// Merges `rows` into `side`, as decided in the pinned view: a side
    /// (this node too) whose view has moved on and no longer replicates a
    /// row's key refuses the page (`view::stale_view`), and the next pass
    /// repairs the range in the newer view. This node checks its page as a
    /// whole (refused: nothing applied); a peer gets the rows in
    /// concurrent calls (`push_concurrency`), so a page it refuses may be
    /// partly applied there (merges are idempotent; the session fails and
    /// the next pass retries). `geokv_repair_keys_streamed_total` counts
    /// only pages applied in full.
    async fn apply(&self, side: Side, keyspace: &str, rows: Vec<Row>) -> Result<(), RepairError> {
        if rows.is_empty() {
            return Ok(());
        }
        let n = rows.len() as u64;
        let (width, timeout) = (self.limits.push_concurrency, self.limits.call_timeout);
        let view = self.view();
        let digest = view.digest_bytes();
        let decided = PlannedOn::repair(view.version(), &digest);
        (self.handle(side)?)
            .merge_page(keyspace, rows, (Some(decided), width), timeout)
            .await?;
        metrics::counter!("geokv_repair_keys_streamed_total", "direction" => direction(side))
            .increment(n);
        Ok(())
    }

    /// Brings `a` and `b` to the merge of their rows in `range`.
    #[tracing::instrument(name = "repair.stream", skip(self), fields(range = %range))]
    async fn stream(
        &self,
        keyspace: &str,
        range: TokenRange,
        a: Side,
        b: Side,
    ) -> Result<(u64, u64), RepairError> {
        let mut join = Join::new();
        let (mut to_a, mut to_b) = (0u64, 0u64);
        loop {
            while let Some((which, after)) = join.wants() {
                let side = if which == Which::A { a } else { b };
                let (rows, more) = self
                    .scan(side, keyspace, range, after.map(<[u8]>::to_vec))
                    .await?;
                join.feed(which, rows, more);
            }
            let Transfers { to_a: ra, to_b: rb } = join.decide();
            to_a += ra.len() as u64;
            to_b += rb.len() as u64;
            let (x, y) = tokio::join!(self.apply(a, keyspace, ra), self.apply(b, keyspace, rb));
            x.and(y)?;
            if join.finished() {
                return Ok((to_a, to_b));
            }
        }
    }

    /// One session: compare trees of `depth` over `range`, stream what differs.
    #[tracing::instrument(name = "repair.session", skip(self),
        fields(a = %self.name(a), b = %self.name(b), range = %range))]
    pub async fn sync_pair(
        &self,
        keyspace: &str,
        range: TokenRange,
        a: Side,
        b: Side,
        depth: u32,
    ) -> Result<SessionStats, RepairError> {
        let (la, lb) = tokio::try_join!(
            self.leaves(a, keyspace, range, depth),
            self.leaves(b, keyspace, range, depth)
        )?;
        let diff = differing_ranges(range, depth, &la, &lb)?;
        metrics::counter!("geokv_repair_sessions_total").increment(1);
        metrics::counter!("geokv_repair_leaves_differing_total").increment(diff.leaves as u64);
        let mut stats = SessionStats {
            leaves_differing: diff.leaves as u64,
            sub_ranges: diff.ranges.len() as u64,
            ..SessionStats::default()
        };
        for sub in diff.ranges {
            let (x, y) = self.stream(keyspace, sub, a, b).await?;
            stats.to_a += x;
            stats.to_b += y;
        }
        if stats.leaves_differing > 0 {
            tracing::info!(
                leaves = stats.leaves_differing,
                to_a = stats.to_a,
                to_b = stats.to_b,
                "repair session streamed"
            );
        }
        Ok(stats)
    }
}

#[cfg(test)]
#[path = "session/tests.rs"]
mod tests;
