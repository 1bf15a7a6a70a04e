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
    /// Its WAL was synced: what it took before the call is durable.
    Synced,
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
            Ok(_) => Ok(WalSync::Synced),
            Err(e) if unimplemented(&e) => Ok(WalSync::Unsupported),
            Err(e) => Err(e),
        }
    }
}
