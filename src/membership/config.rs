//! Membership tuning: the gossip interval, φ thresholds and fanout.
//!
//! Owns the knobs, their defaults, their validation and the values derived
//! from them (detector parameters, the grace for never-seen peers). Must not
//! hold state or read configuration files: `config.rs` at the crate root
//! deserialises and hands a [`MembershipConfig`] in.

use thiserror::Error;

use super::phi::{silence_for_phi, PhiParams};

/// Tuning for gossip and failure detection.
///
/// Several values are derived from `gossip_interval_ms` rather than stored,
/// so changing the interval rescales them: the detector's bootstrap interval
/// (1×), the longest gap it learns (2×, as Cassandra) and its μ floor (½×).
#[derive(Clone, Debug, PartialEq)]
pub struct MembershipConfig {
    /// Time between gossip rounds; each round bumps our heartbeat once.
    pub gossip_interval_ms: u64,
    /// φ above which a peer in our own datacenter is down (Cassandra: 8).
    pub phi_local: f64,
    /// φ above which a peer in another datacenter is down. Higher, so WAN
    /// jitter and slower cross-DC gossip paths do not flap nodes.
    pub phi_remote: f64,
    /// Live peers contacted per round (one local and one remote when ≥ 2).
    pub fanout: usize,
    /// Inter-arrival samples kept per peer.
    pub window: usize,
    /// Silence always tolerated before φ starts to grow.
    pub acceptable_pause_ms: u64,
    /// If our own rounds are this late, *we* were paused: forgive everyone's
    /// silence for that stretch instead of convicting the whole cluster
    /// (Cassandra's `MAX_LOCAL_PAUSE`, 5 s).
    pub max_local_pause_ms: u64,
}

impl Default for MembershipConfig {
    fn default() -> Self {
        Self {
            gossip_interval_ms: 1000,
            phi_local: 8.0,
            phi_remote: 12.0,
            fanout: 2,
            window: 1000,
            acceptable_pause_ms: 0,
            max_local_pause_ms: 5000,
        }
    }
}

/// A [`MembershipConfig`] that cannot work. Fatal: fix the configuration.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum ConfigError {
    /// The interval must be at least one millisecond.
    #[error("gossip_interval_ms must be > 0")]
    ZeroInterval,
    /// A φ threshold was not a positive finite number.
    #[error("{name} must be a positive finite number, got {value}")]
    BadThreshold {
        /// `phi_local` or `phi_remote`.
        name: &'static str,
        /// The rejected value.
        value: f64,
    },
    /// Nobody would ever be contacted.
    #[error("fanout must be >= 1")]
    ZeroFanout,
    /// The detector needs at least one sample.
    #[error("window must be >= 1")]
    ZeroWindow,
    /// Our own pause detection would fire every round.
    #[error("max_local_pause_ms ({pause}) must exceed gossip_interval_ms ({interval})")]
    PauseTooShort {
        /// The configured pause.
        pause: u64,
        /// The configured interval.
        interval: u64,
    },
}

impl MembershipConfig {
    /// Checks the knobs; the table and the gossiper refuse invalid ones.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.gossip_interval_ms == 0 {
            return Err(ConfigError::ZeroInterval);
        }
        for (name, value) in [
            ("phi_local", self.phi_local),
            ("phi_remote", self.phi_remote),
        ] {
            if !(value.is_finite() && value > 0.0) {
                return Err(ConfigError::BadThreshold { name, value });
            }
        }
        if self.fanout == 0 {
            return Err(ConfigError::ZeroFanout);
        }
        if self.window == 0 {
            return Err(ConfigError::ZeroWindow);
        }
        if self.max_local_pause_ms <= self.gossip_interval_ms {
            return Err(ConfigError::PauseTooShort {
                pause: self.max_local_pause_ms,
                interval: self.gossip_interval_ms,
            });
        }
        Ok(())
    }

    /// The detector parameters every peer starts with.
    pub fn phi_params(&self) -> PhiParams {
        PhiParams {
            window: self.window,
            bootstrap_interval_ms: self.gossip_interval_ms,
            max_recorded_interval_ms: self.gossip_interval_ms.saturating_mul(2),
            min_mean_ms: self.gossip_interval_ms / 2,
            acceptable_pause_ms: self.acceptable_pause_ms,
        }
    }

    /// The threshold for a peer in our datacenter or another one.
    pub fn threshold(&self, same_dc: bool) -> f64 {
        if same_dc {
            self.phi_local
        } else {
            self.phi_remote
        }
    }

    /// How long a peer we have never heard from counts as up after we start.
    ///
    /// We pretend its first heartbeat arrived the moment we started and let
    /// the detector run with its bootstrap μ (one gossip interval): the grace
    /// is the time φ takes to reach the threshold, threshold · ln 10 ·
    /// interval, ≈ 18 s local and ≈ 28 s remote with the defaults. A cold
    /// cluster thus has time to converge before anyone is declared down,
    /// and a peer that never comes up is treated like one that died at our
    /// start.
    pub fn unknown_grace_ms(&self, same_dc: bool) -> u64 {
        silence_for_phi(
            self.threshold(same_dc),
            self.gossip_interval_ms as f64,
            self.acceptable_pause_ms,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_grace_matches_the_detector() {
        let c = MembershipConfig::default();
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(c.unknown_grace_ms(true), 18_421);
        assert_eq!(c.unknown_grace_ms(false), 27_632);
    }

    #[test]
    fn invalid_knobs_are_rejected() {
        let bad = |f: fn(&mut MembershipConfig)| {
            let mut c = MembershipConfig::default();
            f(&mut c);
            c.validate().unwrap_err()
        };
        assert_eq!(bad(|c| c.gossip_interval_ms = 0), ConfigError::ZeroInterval);
        assert!(matches!(
            bad(|c| c.phi_remote = f64::NAN),
            ConfigError::BadThreshold {
                name: "phi_remote",
                ..
            }
        ));
        assert_eq!(bad(|c| c.fanout = 0), ConfigError::ZeroFanout);
        assert_eq!(bad(|c| c.window = 0), ConfigError::ZeroWindow);
        assert!(matches!(
            bad(|c| c.max_local_pause_ms = 1000),
            ConfigError::PauseTooShort { .. }
        ));
    }
}
