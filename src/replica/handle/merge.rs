//! What [`super::Handle::merge`] is given (a record and the plan it
//! belongs to) and the `ReplicaWrite` it becomes at a peer.
//!
//! Must not: send anything, or decide which replicas get a merge.

use crate::proto::v1::internode::ReplicaWriteRequest;
use crate::version::SiblingSet;
use crate::view::stale_view::Decided;

/// The view a client write was planned on, or a repair's merge decided
/// in, sent with it so a replica on a newer view that places the key
/// differently refuses it (`view::stale_view`).
#[derive(Clone, Copy, Debug)]
pub struct PlannedOn<'a> {
    pub version: u64,
    pub digest: &'a [u8],
    /// The planned targets in the replica's datacenter; none for a
    /// repair's merge (which [`Merge::repair`] marks: refused only where
    /// the key moved away).
    pub targets: &'a [String],
}

impl<'a> PlannedOn<'a> {
    /// The view of `version` and `digest`, no targets: what a peer's read
    /// is checked against.
    pub fn view(version: u64, digest: &'a [u8]) -> Self {
        PlannedOn {
            version,
            digest,
            targets: &[],
        }
    }

    /// A repair's merge (read repair, anti-entropy) decided in the view of
    /// `version` and `digest`.
    pub fn repair(version: u64, digest: &'a [u8]) -> Self {
        PlannedOn::view(version, digest)
    }
}

impl From<PlannedOn<'_>> for Decided {
    /// [`PlannedOn`] owned, to take onto a blocking thread.
    fn from(p: PlannedOn<'_>) -> Self {
        Decided {
            version: p.version,
            digest: p.digest.to_vec(),
            targets: p.targets.to_vec(),
            // A client write's unless the caller marks it a repair's.
            repair: false,
        }
    }
}

/// A record to merge into a replica's copy of a key.
#[derive(Clone, Copy, Debug)]
pub struct Merge<'a> {
    pub keyspace: &'a str,
    pub key: &'a [u8],
    pub set: &'a SiblingSet,
    /// `set` encoded: what a peer is sent (shared, not copied, into the
    /// peer's request: one copy per fan-out, issue 14).
    pub record: &'a bytes::Bytes,
    /// A client write's plan or a repair's view, checked by the replica,
    /// here as at a peer; `None` (streams, hint hand-offs): applied in any
    /// view.
    pub planned: Option<PlannedOn<'a>>,
    /// A repair's merge (read repair, a repair session's or a movement
    /// stream's rows), sent with the repair mark
    /// (`ReplicaWriteRequest.repair`): checked only where the key moved
    /// away. `false`: a client write (the fan-out, a stream entry),
    /// checked against its targets.
    pub repair: bool,
}

/// `m` as the `ReplicaWrite` a peer is sent, naming `coordinator` (this
/// node) as the coordinator.
pub fn write_request(coordinator: &str, m: Merge<'_>) -> ReplicaWriteRequest {
    let mut msg = ReplicaWriteRequest {
        keyspace: m.keyspace.to_string(),
        key: bytes::Bytes::copy_from_slice(m.key),
        record: m.record.clone(),
        coordinator: coordinator.to_string(),
        repair: m.repair,
        ..Default::default()
    };
    if let Some(p) = m.planned {
        msg.layout_version = p.version;
        msg.layout_digest = bytes::Bytes::copy_from_slice(p.digest);
        msg.targets = p.targets.to_vec();
    }
    msg
}
