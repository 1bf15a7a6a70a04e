//! A merge into this node's replica ([`super::Handle::Here`], [`Local`]):
//! on the replica's call site ([`Replica::blocking`]), through
//! [`Replica::apply`] (so a closing replica refuses it), checked against
//! the view it was decided in and applied under one view
//! ([`stale_view::apply_checked`]), as a peer serves a `ReplicaWrite`.
//! The one path of every merge here: [`super::Handle::merge`]'s, and a
//! copy that must also land on a replica of the key in the view in force
//! ([`Local::merge_placed`]: a hint's copy redirected to this node).
//!
//! Must not: talk to peers, or touch the engine except through [`Replica`].

use super::Local;
use crate::error::GeokvError;
use crate::replica::Replica;
use crate::version::SiblingSet;
use crate::view::stale_view::{self, Decided};
use crate::view::{Cluster, ClusterView};
use std::sync::Arc;

/// Whether this node (the view's) may hold `keyspace`/`key` in a view.
pub type Placed = fn(&ClusterView, &str, &[u8]) -> bool;

/// A record to merge here, owned (to take onto the call site).
pub(super) struct Owned {
    pub keyspace: String,
    pub key: Vec<u8>,
    pub set: SiblingSet,
}

impl Local<'_> {
    /// Merges `set` into this node's copy of `keyspace`/`key` as
    /// [`super::Handle::merge`] does here (checked against `decided`), and
    /// only where `placed` accepts the view in force too, whatever view
    /// the copy was decided in: otherwise [`GeokvError::StaleView`] and
    /// nothing applied. For a copy bound for a replica of the key (a
    /// hint's copy, `hints::moving`).
    pub async fn merge_placed(
        self,
        (keyspace, key, set): (&str, &[u8], &SiblingSet),
        decided: Decided,
        placed: Placed,
    ) -> Result<(), GeokvError> {
        let m = Owned {
            keyspace: keyspace.to_string(),
            key: key.to_vec(),
            set: set.clone(),
        };
        merge(self.replica, self.cluster, m, Some(decided), Some(placed)).await
    }
}

/// Merges `m` here: checked against `decided` (none: in any view) under
/// one view, and refused where `placed` (if any) does not accept the view
/// in force.
pub(super) async fn merge(
    replica: &Arc<Replica>,
    cluster: &Cluster,
    m: Owned,
    decided: Option<Decided>,
    placed: Option<Placed>,
) -> Result<(), GeokvError> {
    let cluster = cluster.clone();
    let Owned { keyspace, key, set } = m;
    replica
        .blocking(move |r| match decided {
            None => r.apply(&keyspace, &key, &set),
            Some(d) => stale_view::apply_checked(&cluster, &d.of_key(&keyspace, &key), || {
                // The view in force is held (installs wait) until this returns.
                let view = cluster.current();
                if placed.is_some_and(|placed| !placed(&view, &keyspace, &key)) {
                    return Err(GeokvError::StaleView {
                        planned_on: d.version,
                        replica_version: view.version(),
                    });
                }
                r.apply(&keyspace, &key, &set)
            }),
        })
        .await
}
