//! What one entry's acknowledgement means for the sender: whether the
//! entry leaves its queue, and what a coordinator waiting on it learns.
//! Pure.
//!
//! Must not: touch storage or the waiters themselves.

use super::queue::Lane;
use super::waiters::{StreamFailure, StreamOutcome};
use crate::proto::v1::internode::EntryAck;

/// What becomes of a queued entry after its batch was acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    /// Durable at the destination: delete it.
    Delete,
    /// The destination can never apply it: record the key for
    /// anti-entropy and delete it.
    Refused,
    /// Not durable there yet: keep it and send it again.
    Keep,
    /// A node hint its receiver does not take because, in its view (this
    /// layout version), it does not replicate the key: keep it, and skip
    /// it until this node's view is as new (see `schedule::park`).
    Elsewhere(u64),
}

/// The entry's fate, and the outcome to resolve its waiter with (`None`:
/// leave the wait alone).
pub(crate) fn fate(lane: Lane, ack: Option<&EntryAck>) -> (Option<StreamOutcome>, Fate) {
    let fate = match ack {
        Some(a) if a.durable => Fate::Delete,
        Some(a) if a.refused => Fate::Refused,
        Some(EntryAck {
            elsewhere_layout: Some(v),
            ..
        }) => Fate::Elsewhere(*v),
        _ => Fate::Keep,
    };
    let outcome = match (lane, fate, ack) {
        (Lane::Backlog, _, _) => None,
        (_, Fate::Delete, Some(a)) => Some(Ok(a.replicas)),
        (_, Fate::Refused, _) => Some(Err(StreamFailure::Refused)),
        // Resent until durable there: the wait ends with that answer, or at
        // its deadline.
        _ => None,
    };
    (outcome, fate)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(replicas: u32, durable: bool, refused: bool) -> EntryAck {
        EntryAck {
            seq: 1,
            replicas,
            durable,
            refused,
            elsewhere_layout: None,
        }
    }

    /// A wait is settled only by a durable acknowledgement (with its
    /// replica count) or a refusal; a first, non-durable answer leaves it
    /// waiting for the redelivery.
    #[test]
    fn only_a_durable_or_final_answer_settles_a_wait() {
        let u = Lane::Urgent;
        assert_eq!(
            fate(u, Some(&ack(2, true, false))),
            (Some(Ok(2)), Fate::Delete)
        );
        assert_eq!(fate(u, Some(&ack(1, false, false))), (None, Fate::Keep));
        assert_eq!(fate(u, None), (None, Fate::Keep));
        assert_eq!(
            fate(u, Some(&ack(0, false, true))),
            (Some(Err(StreamFailure::Refused)), Fate::Refused),
            "a refused entry fails its wait"
        );
        // Backlog entries have no waiters.
        assert_eq!(
            fate(Lane::Backlog, Some(&ack(3, true, false))),
            (None, Fate::Delete)
        );
        assert_eq!(fate(Lane::Backlog, None), (None, Fate::Keep));
    }

    /// A receiver that does not replicate the key in its view names its
    /// layout version: the entry is kept (no wait settled), as
    /// "elsewhere"; a receiver from before the field sends none: kept as
    /// not durable, as before.
    #[test]
    fn a_wrong_owner_answer_is_kept_as_elsewhere_with_the_receivers_version() {
        let elsewhere = EntryAck {
            elsewhere_layout: Some(9),
            ..ack(0, false, false)
        };
        assert_eq!(
            fate(Lane::Backlog, Some(&elsewhere)),
            (None, Fate::Elsewhere(9))
        );
        assert_eq!(
            fate(Lane::Backlog, Some(&ack(0, false, false))),
            (None, Fate::Keep)
        );
    }
}
