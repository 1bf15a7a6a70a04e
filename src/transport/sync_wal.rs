//! The internode `SyncWal` call (issue 11): a decommission's leaver asks a
//! gainer to sync its WAL before the switch, and this file classifies the
//! answer (an UNIMPLEMENTED refusal is a build from before the call).
//! Must not: decide what a decommission does with the answer (the
//! leaver's push does, `movement::push`).

use super::{support::unimplemented, Peers, TransportError};
use crate::proto::v1::internode::SyncWalRequest;
use crate::topology::NodeInfo;
use std::time::Duration;

/// A gainer's answer to `SyncWal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalSync {
    /// Its WAL was synced: what it took before the call is durable, if it
    /// took it under `incarnation` (its engine's, 0 = not told: a build
    /// from before the field).
    Synced { incarnation: u64 },
    /// Its build predates the call (UNIMPLEMENTED, never "may have been
    /// applied"): its pages become durable with its own periodic sync.
    Unsupported,
}

impl Peers {
    /// Asks `to` to sync its WAL within `timeout`.
    pub async fn sync_wal(
        &self,
        to: &NodeInfo,
        timeout: Duration,
    ) -> Result<WalSync, TransportError> {
        let call = self.call(to, SyncWalRequest {}, timeout, |mut c, r| async move {
            c.sync_wal(r).await
        });
        match call.await {
            Ok(r) => Ok(WalSync::Synced {
                incarnation: r.incarnation,
            }),
            Err(e) if unimplemented(&e) => Ok(WalSync::Unsupported),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::WalSync;
    use crate::proto::v1::internode::{SyncWalRequest, SyncWalResponse};
    use crate::transport::testing::{peers, serve, Serves};
    use std::time::Duration;
    use tonic::Status;

    struct Syncs(u64);

    #[tonic::async_trait]
    impl Serves for Syncs {
        async fn sync_wal(&self, _: SyncWalRequest) -> Result<SyncWalResponse, Status> {
            Ok(SyncWalResponse {
                incarnation: self.0,
            })
        }
    }

    /// Serves nothing: `SyncWal` is UNIMPLEMENTED, as on a build before it.
    struct Older;

    #[tonic::async_trait]
    impl Serves for Older {}

    #[tokio::test]
    async fn a_gainer_tells_its_incarnation_and_an_older_build_is_unsupported() {
        let (peers, t) = (peers(), Duration::from_secs(5));
        let new = serve("new", Syncs(7), None).await;
        let synced = peers.sync_wal(&new, t).await.unwrap();
        assert_eq!(synced, WalSync::Synced { incarnation: 7 });
        let old = serve("old", Older, None).await;
        assert_eq!(peers.sync_wal(&old, t).await.unwrap(), WalSync::Unsupported);
    }
}
