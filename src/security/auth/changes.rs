//! How a state gets in force on a node: a peer's state merged in
//! ([`Auth::install`]), a change made here ([`Auth::change`], stamped later
//! than everything the node has seen), the first admin role
//! ([`Auth::bootstrap`]); each persisted (synced: `store::save`) before it
//! is swapped in. A change made here is acknowledged once a quorum holds
//! it ([`Auth::change_and_spread`]); it is refused, before anything is
//! stamped, when this node's clock is more than 60 s ahead of or behind
//! most of the members' clocks, or while fewer than a quorum of the
//! members are known within 60 s since this node started
//! ([`Auth::heard_clock`] records them, `PeerClocks::hold` decides).
//!
//! Must not: decide what a change does to the cells (that is `model` and
//! `cells`), or talk to peers (the push hook does).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::cells::Stamp;
use super::model::Draft;
use super::peer_clocks::OFFSET_METRIC;
use super::spread::{Spread, CLOCK_AHEAD};
use super::{secret, store, Auth, AuthState, AuthStateError, ChangeError, InForce, Token};
use super::{InstallError, Spreading, MAX_OFFSET_MS};
use super::{Perm, ANY_KEYSPACE};

impl Auth {
    /// Installs a state learned from a peer: merged with ours; if that
    /// changes it, persisted then swapped. Returns whether it changed. A
    /// state whose clock is more than [`MAX_OFFSET_MS`] ahead of this
    /// node's wall clock is refused (logged, counted in
    /// `geokv_auth_states_refused_total{reason="clock_ahead"}`): its stamps
    /// would win over every change made here until wall time caught up.
    pub fn install(&self, incoming: AuthState) -> Result<bool, InstallError> {
        let now = now_ms();
        let ahead_ms = incoming.clock().ms.saturating_sub(now);
        if ahead_ms > MAX_OFFSET_MS {
            metrics::counter!("geokv_auth_states_refused_total", "reason" => "clock_ahead")
                .increment(1);
            if warn_due(&self.clock_warned, now) {
                tracing::warn!(
                    ahead_ms,
                    "auth: refused a peer's state whose clock is ahead of this node's (check NTP; \
                     logged at most once a minute, every refusal is counted)"
                );
            }
            return Err(InstallError::ClockAhead { ahead_ms });
        }
        let _guard = self.install.lock();
        let current = self.state();
        let merged = (*current).clone().merge(incoming);
        if merged == *current {
            return Ok(false);
        }
        self.swap(merged)?;
        Ok(true)
    }

    fn swap(&self, next: AuthState) -> Result<(), store::StoreError> {
        if let Some(engine) = &self.engine {
            store::save(&**engine, &next)?;
        }
        let version = next.version();
        let generation = self.in_force.load().generation + 1;
        self.in_force.store(Arc::new(InForce {
            generation,
            state: Arc::new(next),
        }));
        metrics::gauge!("geokv_auth_version").set(version as f64);
        tracing::info!(version, generation, "auth: new state in force");
        Ok(())
    }

    /// Makes a change here (`f` of a [`Draft`]: the state in force and the
    /// change's stamp, later than every stamp this node has seen and not
    /// before its wall clock), persists it (synced), and pushes it to peers
    /// without waiting for them.
    pub fn change(
        &self,
        f: impl FnOnce(&Draft) -> Result<AuthState, ChangeError>,
    ) -> Result<Arc<AuthState>, AuthStateError> {
        let (next, _spreading) = self.change_pushed(f)?;
        Ok(next)
    }

    /// [`Auth::change`], then waits for the push's verdicts (the hook's
    /// deadline): the change is acknowledged when a quorum of the members
    /// holds it ([`Spread::acknowledged`]). A node without a push hook (a
    /// tool, a test) is alone: its own quorum. Short of a quorum, nothing
    /// is rolled back: the change is durable here and keeps spreading.
    pub fn change_and_spread(
        &self,
        f: impl FnOnce(&Draft) -> Result<AuthState, ChangeError>,
    ) -> Result<(Arc<AuthState>, Spreading), AuthStateError> {
        let (next, spreading) = self.change_pushed(f)?;
        let spreading =
            spreading.unwrap_or_else(|| Box::pin(async { Spread::decide(&[], vec![], 0) }));
        Ok((next, spreading))
    }

    fn change_pushed(
        &self,
        f: impl FnOnce(&Draft) -> Result<AuthState, ChangeError>,
    ) -> Result<(Arc<AuthState>, Option<Spreading>), AuthStateError> {
        let next = {
            let _guard = self.install.lock();
            let state = self.state();
            let now = now_ms();
            let ahead_ms = state.clock().ms.saturating_sub(now);
            if ahead_ms > MAX_OFFSET_MS {
                metrics::counter!(CHANGES_REFUSED, "reason" => CLOCK_AHEAD).increment(1);
                return Err(AuthStateError::ClockAhead { ahead_ms });
            }
            // Too few members heard since start to tell (review-clock35
            // M1), far from most members' clocks, or too few of them known
            // within (review-clock35b H1): nothing is stamped.
            let members = self.members.get().map(|m| m());
            let clocks = self.clocks.lock();
            if let Some(hold) = clocks.hold(members.as_deref(), mono_ms()) {
                metrics::counter!(CHANGES_REFUSED, "reason" => hold.reason()).increment(1);
                return Err(hold.into());
            }
            drop(clocks);
            let Some(at) = state.stamp(now, self.writer) else {
                metrics::counter!(CHANGES_REFUSED, "reason" => CLOCK_EXHAUSTED).increment(1);
                return Err(AuthStateError::ClockExhausted);
            };
            let next = f(&Draft { state: &state, at })?;
            self.swap(next)?;
            self.state()
        };
        // The hook starts the pushes now; the future only waits for them.
        let spreading = self.push.get().map(|push| push(next.clone()));
        Ok((next, spreading))
    }

    /// First start with an admin token (`--admin-token-file`,
    /// `GEOKV_ADMIN_TOKEN`): when no state was ever made, creates its role
    /// with `admin` on every keyspace, stamped at [`Stamp::FLOOR`], below
    /// every change ever made: a node started empty later (a join, a
    /// replaced disk) must not undo the cluster's drop, revoke or rotation
    /// of that role (review-auth29 H1). Returns whether it did.
    pub fn bootstrap(&self, token: &Token) -> Result<bool, AuthStateError> {
        if !self.state().is_empty() {
            return Ok(false);
        }
        let phc = secret::hash(&token.secret)?;
        let next = {
            let _guard = self.install.lock();
            let state = self.state();
            if !state.is_empty() {
                return Ok(false);
            }
            let grants = [(ANY_KEYSPACE, Perm::Admin)];
            self.swap(state.create_role(Stamp::FLOOR, &token.role, Some(phc), &grants)?)?;
            self.state()
        };
        if let Some(push) = self.push.get() {
            // Started by the hook; nobody waits for the verdicts.
            drop(push(next));
        }
        Ok(true)
    }
}

/// Counted per change refused before it was stamped, by `reason` (409
/// `clock_ahead`: this node's clock is more than 60 s behind its own
/// newest stamp; 409 `clock_exhausted`: that stamp is the largest there
/// is; [`Hold::reason`](super::peer_clocks::Hold::reason): 409 `clock_skew`:
/// this node's clock is more than 60 s ahead of or behind most of its
/// peers'; 503 `not_heard`: fewer than a quorum of the members heard since
/// this node started; 503 `not_within`: a quorum heard, but fewer than a
/// quorum known within 60 s, which after a restart lasts while a member
/// far is up and members down since are not back).
pub const CHANGES_REFUSED: &str = "geokv_auth_changes_refused_total";

/// The reason label of a change refused because the state's newest stamp
/// is the largest there is ([`AuthStateError::ClockExhausted`]).
const CLOCK_EXHAUSTED: &str = "clock_exhausted";

impl Auth {
    /// Records that `peer` was heard now on a `SyncAuth` message, either
    /// way, and its clock offset (ms, its clock minus ours; `None`: it sent
    /// no clock, an older build, and its last offset is dropped:
    /// review-clock35 L2), exported as [`OFFSET_METRIC`].
    pub fn heard_clock(&self, peer: &str, offset_ms: Option<i64>) {
        if peer.is_empty() {
            return;
        }
        let Some(offset_ms) = offset_ms else {
            self.clocks.lock().record_no_clock(peer);
            return;
        };
        self.clocks.lock().record(peer, offset_ms, mono_ms());
        metrics::gauge!(OFFSET_METRIC, "peer" => peer.to_string()).set(offset_ms as f64 / 1000.0);
    }
}

/// How often a refusal of a state whose clock is ahead is logged: a peer
/// whose clock is far ahead offers its state every second and on every
/// change (each refusal is still counted).
const CLOCK_WARN_EVERY_MS: u64 = 60_000;

/// Whether a warning logged at wall time `now_ms` is due, the last one
/// having been at `last` (0: none yet); if so, it is taken (`last` = now).
/// A wall clock stepped back by a minute or more makes it due too.
pub(super) fn warn_due(last: &AtomicU64, now_ms: u64) -> bool {
    let prev = last.load(Ordering::Relaxed);
    (prev == 0 || now_ms.abs_diff(prev) >= CLOCK_WARN_EVERY_MS)
        && (last.compare_exchange(prev, now_ms.max(1), Ordering::Relaxed, Ordering::Relaxed))
            .is_ok()
}

/// Wall time in ms since the Unix epoch (0 if the clock is before it: the
/// stamp then still follows every stamp seen).
pub fn now_ms() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Ms since this process first asked (a monotonic clock, unmoved when the
/// wall clock is stepped): when each peer offset was measured, and the
/// age of each in a `clock_skew` text (review-clock36 M1).
pub(super) fn mono_ms() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_millis() as u64
}
