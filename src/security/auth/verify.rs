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

use super::secret;

/// argon2 verifications one node runs at once.
pub const VERIFYING_AT_ONCE: usize = 2;

/// The permits and counts of argon2 runs.
#[derive(Debug)]
pub struct Verifier {
    permits: Arc<Semaphore>,
    counts: Arc<Counts>,
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
        }
    }
}

impl Verifier {
    /// Waits for a place to run a verification (the caller then re-reads
    /// what another run may have cached meanwhile).
    pub async fn place(&self) -> Option<OwnedSemaphorePermit> {
        self.permits.clone().acquire_owned().await.ok()
    }

    /// Whether `secret` matches `phc`, verified on the blocking pool under
    /// `place`, which the run holds until argon2 ends and then hands back
    /// (the caller caches the verdict before it frees the place, so a call
    /// that waited for it finds the verdict); a caller dropped meanwhile
    /// frees it when the run ends.
    pub async fn run(
        &self,
        place: OwnedSemaphorePermit,
        secret: String,
        phc: String,
    ) -> (bool, Option<OwnedSemaphorePermit>) {
        let counts = self.counts.clone();
        counts.started.fetch_add(1, Ordering::Relaxed);
        let now = counts.running.fetch_add(1, Ordering::SeqCst) + 1;
        counts.most.fetch_max(now, Ordering::SeqCst);
        metrics::gauge!("geokv_auth_verifications_running").set(now as f64);
        tokio::task::spawn_blocking(move || {
            let ok = secret::verify(&secret, &phc);
            let left = counts.running.fetch_sub(1, Ordering::SeqCst) - 1;
            metrics::gauge!("geokv_auth_verifications_running").set(left as f64);
            (ok, Some(place))
        })
        .await
        .unwrap_or((false, None))
    }

    /// The counts of runs.
    pub fn counts(&self) -> &Counts {
        &self.counts
    }
}
