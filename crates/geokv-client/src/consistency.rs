//! [`ConsistencyLevel`]: the level a request names, its canonical name and
//! its parsing from text (CLI flags, config files).
//!
//! Must not: give a level semantics (what each level requires, the acks
//! and from which datacenters, is the server's business:
//! `geokv::consistency`), nor map it to the wire (`level.rs`'s).
use std::fmt;
use std::str::FromStr;

/// How many replicas must answer a read or acknowledge a write, after
/// Cassandra's levels; the server turns a level into acknowledgements.
///
/// # Example
///
/// ```
/// use geokv_client::ConsistencyLevel;
///
/// let level: ConsistencyLevel = "local-quorum".parse()?;
/// assert_eq!(level, ConsistencyLevel::LocalQuorum);
/// assert_eq!(level.to_string(), "LOCAL_QUORUM");
/// # Ok::<(), geokv_client::ParseLevelError>(())
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum ConsistencyLevel {
    /// Writes only (reads are refused): one ack, in effect ONE, since the
    /// coordinating replica acknowledges first.
    Any,
    /// One replica, in any datacenter.
    One,
    /// Two replicas, in any datacenters.
    Two,
    /// Three replicas, in any datacenters.
    Three,
    /// One replica of the coordinator's datacenter.
    LocalOne,
    /// A majority of the coordinator's datacenter's replicas.
    LocalQuorum,
    /// A majority of the replicas in every datacenter that has some.
    EachQuorum,
    /// A majority of all replicas, in any datacenters.
    Quorum,
    /// Every replica.
    All,
}

impl ConsistencyLevel {
    /// Every level, weakest first.
    ///
    /// # Example
    ///
    /// ```
    /// use geokv_client::ConsistencyLevel;
    ///
    /// assert_eq!(ConsistencyLevel::ALL_LEVELS.len(), 9);
    /// assert_eq!(ConsistencyLevel::ALL_LEVELS[0], ConsistencyLevel::Any);
    /// ```
    pub const ALL_LEVELS: [ConsistencyLevel; 9] = [
        ConsistencyLevel::Any,
        ConsistencyLevel::One,
        ConsistencyLevel::Two,
        ConsistencyLevel::Three,
        ConsistencyLevel::LocalOne,
        ConsistencyLevel::LocalQuorum,
        ConsistencyLevel::EachQuorum,
        ConsistencyLevel::Quorum,
        ConsistencyLevel::All,
    ];

    /// The canonical upper-case name, e.g. `"LOCAL_QUORUM"`.
    ///
    /// # Example
    ///
    /// ```
    /// use geokv_client::ConsistencyLevel;
    ///
    /// assert_eq!(ConsistencyLevel::EachQuorum.name(), "EACH_QUORUM");
    /// ```
    pub fn name(&self) -> &'static str {
        match self {
            ConsistencyLevel::Any => "ANY",
            ConsistencyLevel::One => "ONE",
            ConsistencyLevel::Two => "TWO",
            ConsistencyLevel::Three => "THREE",
            ConsistencyLevel::LocalOne => "LOCAL_ONE",
            ConsistencyLevel::LocalQuorum => "LOCAL_QUORUM",
            ConsistencyLevel::EachQuorum => "EACH_QUORUM",
            ConsistencyLevel::Quorum => "QUORUM",
            ConsistencyLevel::All => "ALL",
        }
    }

    /// Only the local DC's replicas count (LOCAL_ONE, LOCAL_QUORUM).
    ///
    /// # Example
    ///
    /// ```
    /// use geokv_client::ConsistencyLevel;
    ///
    /// assert!(ConsistencyLevel::LocalOne.is_local());
    /// assert!(!ConsistencyLevel::Quorum.is_local());
    /// ```
    pub fn is_local(&self) -> bool {
        matches!(
            self,
            ConsistencyLevel::LocalOne | ConsistencyLevel::LocalQuorum
        )
    }
}

impl fmt::Display for ConsistencyLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A string that names no consistency level.
///
/// # Example
///
/// ```
/// use geokv_client::{ConsistencyLevel, ParseLevelError};
///
/// let err = "most".parse::<ConsistencyLevel>().unwrap_err();
/// assert_eq!(err, ParseLevelError("most".to_string()));
/// assert!(err.to_string().contains("LOCAL_QUORUM"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown consistency level '{0}' (expected one of ANY, ONE, TWO, THREE, LOCAL_ONE, LOCAL_QUORUM, EACH_QUORUM, QUORUM, ALL)")]
pub struct ParseLevelError(pub String);

impl FromStr for ConsistencyLevel {
    type Err = ParseLevelError;

    /// Case-insensitive; `_`, `-` and nothing are equivalent separators:
    /// `LOCAL_QUORUM`, `local-quorum` and `localquorum` all parse.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm: String = s
            .trim()
            .chars()
            .filter(|c| *c != '_' && *c != '-')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        ConsistencyLevel::ALL_LEVELS
            .into_iter()
            .find(|l| l.name().replace('_', "") == norm)
            .ok_or_else(|| ParseLevelError(s.to_string()))
    }
}
