//! The production [`RangeSource`]: a peer's internode `RangeScan`.
//!
//! Owns [`PeerSource`]: resolves a node id to a connection (through a
//! caller-given function, so it works with whatever view of the cluster the
//! node holds) and asks its [`Handle`] for one page with a deadline.
//! Must not choose sources or retry: the streaming driver does.

use std::sync::Arc;
use std::time::Duration;

use super::stream::{Page, RangeSource, SourceError};
use crate::replica::handle::Handle;
use crate::ring::TokenRange;
use crate::topology::NodeInfo;
use crate::transport::Peers;

/// A node of the caller's view and whether it is believed up; `None` when
/// the id is not a member.
pub type Resolve = dyn Fn(&str) -> Option<(NodeInfo, bool)> + Send + Sync;

/// Pages of peers' `RangeScan`.
pub struct PeerSource {
    peers: Arc<Peers>,
    resolve: Arc<Resolve>,
    timeout: Duration,
}

impl PeerSource {
    pub fn new(peers: Arc<Peers>, resolve: Arc<Resolve>, timeout: Duration) -> Self {
        PeerSource {
            peers,
            resolve,
            timeout,
        }
    }
}

impl RangeSource for PeerSource {
    fn is_up(&self, node: &str) -> bool {
        (self.resolve)(node).is_some_and(|(_, up)| up)
    }

    async fn scan(
        &self,
        node: &str,
        keyspace: &str,
        range: TokenRange,
        after: Option<Vec<u8>>,
        limit: u32,
    ) -> Result<Page, SourceError> {
        let err = |detail: String| SourceError {
            node: node.to_string(),
            detail,
        };
        let (to, _) = (self.resolve)(node).ok_or_else(|| err("not in the layout".into()))?;
        let replica = Handle::Peer {
            peers: self.peers.clone(),
            node: to,
        };
        let (rows, more) = (replica
            .scan(keyspace, range, after, limit, self.timeout)
            .await)
            .map_err(|e| err(e.to_string()))?;
        Ok(Page { rows, more })
    }
}
