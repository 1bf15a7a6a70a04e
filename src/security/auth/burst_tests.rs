//! Bounded argon2 work under bursts of first calls and aborted calls
//! (review-sec27 M1, review-lead27 H1): the authenticator runs at most
//! [`verify::VERIFYING_AT_ONCE`] verifications at a time whatever its
//! callers do.

use super::tests::{bearer, state_with_token};
use super::*;

/// review-sec27 M1: since authentication runs before admission, a burst of
/// first calls with one token must not each run argon2 (~19 MiB and tens
/// of ms each on the blocking pool that hints, repair and movements share):
/// at most [`verify::VERIFYING_AT_ONCE`] run at a time, and a call that waited
/// takes the verdict the others cached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_first_calls_with_one_token_verifies_it_a_bounded_number_of_times() {
    let auth = Arc::new(Auth::new(
        true,
        state_with_token("app", "s3", &[("a", Perm::Read)]),
        None,
    ));
    let calls = (0..32).map(|_| {
        let auth = auth.clone();
        tokio::spawn(async move { auth.authenticate(&bearer("app:s3")).await })
    });
    for r in futures::future::join_all(calls).await {
        assert_eq!(r.unwrap(), Ok("app".to_string()));
    }
    let runs = auth
        .verifier
        .counts()
        .started
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        runs as usize <= verify::VERIFYING_AT_ONCE,
        "{runs} argon2 runs for one token"
    );
}

/// review-lead27 H1: a caller dropped while its argon2 runs (a client's own
/// `grpc-timeout`, a reset stream) must not free its place for another run:
/// bogus tokens whose calls are aborted once started still run at most
/// [`verify::VERIFYING_AT_ONCE`] at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborted_calls_do_not_run_more_verifications_at_once() {
    use std::sync::atomic::Ordering;
    let auth = Arc::new(Auth::new(
        true,
        state_with_token("app", "s3", &[("a", Perm::Read)]),
        None,
    ));
    let calls = async {
        for i in 0..24u64 {
            let auth2 = auth.clone();
            let token = bearer(&format!("app:bogus{i}"));
            let call = tokio::spawn(async move { auth2.authenticate(&token).await });
            // Aborted as soon as its own run started.
            while auth.verifier.counts().started.load(Ordering::SeqCst) <= i {
                tokio::task::yield_now().await;
            }
            call.abort();
        }
        // Every run started ends.
        while auth.verifier.counts().running.load(Ordering::SeqCst) > 0 {
            tokio::task::yield_now().await;
        }
    };
    let bound = std::time::Duration::from_secs(60);
    tokio::time::timeout(bound, calls)
        .await
        .expect("every run ends");
    let most = auth.verifier.counts().most.load(Ordering::SeqCst);
    assert!(
        most <= verify::VERIFYING_AT_ONCE,
        "{most} argon2 runs at once"
    );
}
