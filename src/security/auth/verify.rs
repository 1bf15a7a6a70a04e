//! The bounded argon2 runs of token verification (review-sec27 M1,
//! review-lead27 H1): authentication runs before the client port's
//! admission gate, so at most [`VERIFYING_AT_ONCE`] verifications run at
//! once per node, and the permit is held by the blocking run itself — a
//! caller dropped while argon2 runs (a client's own `grpc-timeout`, a reset
//! stream) does not free its place for another run.
//!
//! Owns the permits and the counts of runs (`geokv_auth_verifications_running`).
//! Must not decide what a verdict means, nor cache it (`Auth` does).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use super::secret;

/// argon2 verifications one node runs at once.
pub const VERIFYING_AT_ONCE: usize = 2;

/// The gauge of argon2 runs in progress.
pub const RUNNING_METRIC: &str = "geokv_auth_verifications_running";

/// One run, counted in [`Counts::running`] and [`RUNNING_METRIC`] until
/// dropped. Moved into the blocking run, so a panic (unwinding) or a run
/// the runtime drops before it started gives it back too; the gauge moves
/// by increments, which commute (review-final27 L1: two threads setting
/// it could leave a stale value).
struct Running(Arc<Counts>);

impl Running {
    fn start(counts: Arc<Counts>) -> Running {
        counts.started.fetch_add(1, Ordering::Relaxed);
        let now = counts.running.fetch_add(1, Ordering::SeqCst) + 1;
        counts.most.fetch_max(now, Ordering::SeqCst);
        metrics::gauge!(RUNNING_METRIC).increment(1.0);
        Running(counts)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
        metrics::gauge!(RUNNING_METRIC).decrement(1.0);
    }
}

/// The permits and counts of argon2 runs.
#[derive(Debug)]
pub struct Verifier {
    permits: Arc<Semaphore>,
    counts: Arc<Counts>,
    /// Whether a secret matches a PHC: argon2 ([`secret::verify`]), or a
    /// test's stand-in.
    check: fn(&str, &str) -> bool,
}

/// Runs started, running now, and the most at once (tests, the gauge).
#[derive(Debug, Default)]
pub struct Counts {
    pub started: AtomicU64,
    pub running: AtomicUsize,
    pub most: AtomicUsize,
}

impl Default for Verifier {
    fn default() -> Self {
        Verifier {
            permits: Arc::new(Semaphore::new(VERIFYING_AT_ONCE)),
            counts: Arc::default(),
            check: secret::verify,
        }
    }
}

impl Verifier {
    /// A verifier checking secrets with `check` instead of argon2 (tests).
    #[cfg(test)]
    pub(crate) fn checking(check: fn(&str, &str) -> bool) -> Verifier {
        Verifier {
            check,
            ..Verifier::default()
        }
    }

    /// Waits for a place to run a verification (the caller then re-reads
    /// what another run may have cached meanwhile).
    pub async fn place(&self) -> Option<OwnedSemaphorePermit> {
        self.permits.clone().acquire_owned().await.ok()
    }

    /// Whether `secret` matches `phc`, verified on the blocking pool under
    /// `place`, which the run holds until argon2 ends and then hands back
    /// (the verdict is cached before the place is freed, so a call that
    /// waited for it finds the verdict). The run starts now and does not
    /// depend on the handle being awaited. An error: the run ended without
    /// a verdict (it panicked, or the runtime shut down before it started),
    /// nothing to cache (review-final27 M1).
    pub fn start(
        &self,
        place: OwnedSemaphorePermit,
        secret: String,
        phc: String,
    ) -> JoinHandle<(bool, OwnedSemaphorePermit)> {
        let (running, check) = (Running::start(self.counts.clone()), self.check);
        tokio::task::spawn_blocking(move || {
            let _running = running;
            (check(&secret, &phc), place)
        })
    }

    /// [`Verifier::start`], awaited; `None` without a verdict.
    pub async fn run(
        &self,
        place: OwnedSemaphorePermit,
        secret: String,
        phc: String,
    ) -> Option<(bool, OwnedSemaphorePermit)> {
        self.start(place, secret, phc).await.ok()
    }

    /// The counts of runs.
    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    /// Places free now (tests).
    #[cfg(test)]
    pub(crate) fn free_places(&self) -> usize {
        self.permits.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// review-final27 M1: a verification that panics (tokio catches it)
    /// must not leave its run counted, nor its place taken: the count and
    /// the gauge stayed one too high for good.
    #[tokio::test]
    async fn a_panicking_verification_leaves_no_run_counted_and_its_place_free() {
        let v = Verifier::checking(|_, _| panic!("a verification panicked"));
        let place = v.place().await.expect("a place");
        let ran = v.run(place, "secret".into(), "phc".into()).await;
        assert!(ran.is_none(), "no verdict");
        assert_eq!(
            v.counts().running.load(Ordering::SeqCst),
            0,
            "runs left counted"
        );
        assert_eq!(v.free_places(), VERIFYING_AT_ONCE);
    }
}
