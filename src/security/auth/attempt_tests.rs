//! Verifications that end without a verdict, and attempts whose caller is
//! gone: neither may count for nothing (review-final27 M1, review-lead27 H1).
//! Must not: start servers.

use super::tests::{bearer, state_with_token};
use super::*;
use std::sync::atomic::Ordering;

/// A run that panicked (or was cancelled at shutdown before it started)
/// gave no verdict: it is not cached as a rejection, so the right token
/// is accepted once verification works again.
#[tokio::test]
async fn a_run_without_a_verdict_is_not_cached_as_a_rejection() {
    let state = state_with_token("app", "s3", &[("a", Perm::Read)]);
    let mut auth = Auth::new(true, state, None);
    auth.verifier = verify::Verifier::checking(|_, _| panic!("a verification panicked"));
    let first = auth.authenticate(&bearer("app:s3")).await;
    assert_eq!(first, Err(AuthError::Unverified));
    auth.verifier = verify::Verifier::default();
    let again = auth.authenticate(&bearer("app:s3")).await;
    assert_eq!(again, Ok("app".to_string()));
}

/// review-lead27 H1 (second half): calls from one address cancelled while
/// their argon2 runs (the client's own `grpc-timeout`, a reset stream)
/// count towards the address's throttle like failures: one address cannot
/// start more runs than its burst by never waiting for the verdicts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_attempts_from_one_address_count_towards_its_throttle() {
    let auth = Arc::new(Auth::new(
        true,
        state_with_token("app", "s3", &[("a", Perm::Read)]),
        None,
    ));
    let from: IpAddr = "10.1.1.1".parse().unwrap();
    let burst = throttle::ThrottleConfig::default().burst as u64;
    let started = || auth.verifier.counts().started.load(Ordering::SeqCst);
    let calls = async {
        for i in 0..2 * burst {
            let auth2 = auth.clone();
            let token = bearer(&format!("app:bogus{i}"));
            let call =
                tokio::spawn(async move { auth2.check_from(&token, None, Some(from)).await });
            // Aborted as soon as its run started (or it ended without one).
            while started() <= i && !call.is_finished() {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            call.abort();
        }
    };
    let bound = std::time::Duration::from_secs(60);
    tokio::time::timeout(bound, calls).await.expect("calls end");
    let runs = started();
    assert!(
        runs <= burst,
        "{runs} argon2 runs for one address's cancelled calls"
    );
    let next = auth
        .check_from(&bearer("app:bogus"), None, Some(from))
        .await;
    assert!(matches!(next, Err(AuthError::Throttled { .. })), "{next:?}");
}

/// review-conn28 M2, review-final27 L2: a good token's verdict must not
/// depend on its caller staying. Calls with the right token, each aborted
/// once its run started (a client with a short deadline on a busy node),
/// spent an attempt each and cached nothing, so the address was throttled
/// with its correct token; the verdict is now settled and cached whether
/// the caller waits or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_token_whose_callers_give_up_mid_run_is_not_throttled() {
    let auth = Arc::new(Auth::new(
        true,
        state_with_token("app", "s3", &[("a", Perm::Read)]),
        None,
    ));
    let from: IpAddr = "10.1.1.2".parse().unwrap();
    let burst = throttle::ThrottleConfig::default().burst as u64;
    let started = || auth.verifier.counts().started.load(Ordering::SeqCst);
    let calls = async {
        for i in 0..2 * burst {
            let auth2 = auth.clone();
            let call =
                tokio::spawn(
                    async move { auth2.check_from(&bearer("app:s3"), None, Some(from)).await },
                );
            // Aborted as soon as a run started after it began (or it ended).
            while started() <= i && !call.is_finished() {
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
    tokio::time::timeout(bound, calls).await.expect("calls end");
    let next = auth.check_from(&bearer("app:s3"), None, Some(from)).await;
    assert_eq!(next, Ok("app".to_string()));
    let runs = started();
    assert!(
        runs as usize <= verify::VERIFYING_AT_ONCE,
        "{runs} argon2 runs for one good token"
    );
}
