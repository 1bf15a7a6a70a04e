//! The mapping between [`ConsistencyLevel`] and the wire enum
//! [`pb::Consistency`]: the only place the two meet.
//!
//! Must not: give a level semantics (what each level requires is the
//! server's business: `geokv::consistency`).
use crate::proto::v1 as pb;
use crate::ConsistencyLevel;

/// The wire value for a level.
///
/// # Example
///
/// ```
/// use geokv_client::proto::v1::Consistency;
/// use geokv_client::{level_to_proto, ConsistencyLevel};
///
/// assert_eq!(level_to_proto(ConsistencyLevel::LocalQuorum), Consistency::LocalQuorum);
/// ```
pub fn level_to_proto(level: ConsistencyLevel) -> pb::Consistency {
    match level {
        ConsistencyLevel::Any => pb::Consistency::Any,
        ConsistencyLevel::One => pb::Consistency::One,
        ConsistencyLevel::Two => pb::Consistency::Two,
        ConsistencyLevel::Three => pb::Consistency::Three,
        ConsistencyLevel::LocalOne => pb::Consistency::LocalOne,
        ConsistencyLevel::LocalQuorum => pb::Consistency::LocalQuorum,
        ConsistencyLevel::EachQuorum => pb::Consistency::EachQuorum,
        ConsistencyLevel::Quorum => pb::Consistency::Quorum,
        ConsistencyLevel::All => pb::Consistency::All,
    }
}

/// The level for a wire value; `None` for `CONSISTENCY_UNSPECIFIED` (the
/// server default) and for numbers this version does not know.
///
/// # Example
///
/// ```
/// use geokv_client::proto::v1::Consistency;
/// use geokv_client::{level_from_proto, ConsistencyLevel};
///
/// assert_eq!(level_from_proto(Consistency::All as i32), Some(ConsistencyLevel::All));
/// assert_eq!(level_from_proto(Consistency::Unspecified as i32), None);
/// ```
pub fn level_from_proto(value: i32) -> Option<ConsistencyLevel> {
    Some(match pb::Consistency::try_from(value).ok()? {
        pb::Consistency::Unspecified => return None,
        pb::Consistency::Any => ConsistencyLevel::Any,
        pb::Consistency::One => ConsistencyLevel::One,
        pb::Consistency::Two => ConsistencyLevel::Two,
        pb::Consistency::Three => ConsistencyLevel::Three,
        pb::Consistency::LocalOne => ConsistencyLevel::LocalOne,
        pb::Consistency::LocalQuorum => ConsistencyLevel::LocalQuorum,
        pb::Consistency::EachQuorum => ConsistencyLevel::EachQuorum,
        pb::Consistency::Quorum => ConsistencyLevel::Quorum,
        pb::Consistency::All => ConsistencyLevel::All,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [ConsistencyLevel; 9] = ConsistencyLevel::ALL_LEVELS;

    #[test]
    fn every_level_roundtrips() {
        for level in ALL {
            assert_eq!(level_from_proto(level_to_proto(level) as i32), Some(level));
        }
    }

    #[test]
    fn wire_names_match_level_names() {
        // `CONSISTENCY_UNSPECIFIED`-style proto names vs the level's own name:
        // both spell e.g. LOCAL_QUORUM, so shells and logs agree with the wire.
        for level in ALL {
            assert_eq!(level_to_proto(level).as_str_name(), level.name());
        }
    }

    #[test]
    fn unspecified_and_unknown_are_none() {
        assert_eq!(level_from_proto(0), None);
        assert_eq!(level_from_proto(42), None);
        assert_eq!(level_from_proto(-1), None);
    }
}
