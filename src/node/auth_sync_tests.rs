//! The push's verdicts as the change's answer reads them (audit12-32 M1):
//! a peer's refusal `clock_ahead` is named as such, a peer that does not
//! answer by the deadline is missing, and the wait ends once all are in.

use std::time::Duration;

use super::*;
use crate::security::auth::spread::CLOCK_AHEAD;
use crate::security::auth::{Perm, MAX_OFFSET_MS};

/// A state with one role, stamped an hour past the refusal bound.
fn far_ahead() -> AuthState {
    let wall = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    let at = crate::security::auth::Stamp {
        ms: wall.unwrap().as_millis() as u64 + MAX_OFFSET_MS + 3_600_000,
        n: 0,
        node: 7,
    };
    AuthState::default()
        .create_role(at, "x", None, &[])
        .unwrap()
}

/// The reply the transport hands back for a status a peer answered.
fn answered(status: tonic::Status) -> TransportError {
    crate::transport::status_error("n2", status, 3_000)
}

#[test]
fn a_peer_refusing_our_state_as_clock_ahead_is_named_with_the_reason() {
    let ours = far_ahead();
    let peer = Auth::new(true, AuthState::default(), None);
    let refused = crate::security::auth::sync::serve(&peer, &to_message(&ours)).unwrap_err();
    let status = tonic::Status::from(crate::error::GeokvError::from(refused));
    let (verdict, theirs) = judge(&ours, Err(answered(status)));
    assert!(theirs.is_none());
    match verdict {
        Verdict::Refused { reason, .. } => assert_eq!(reason, CLOCK_AHEAD),
        other => panic!("{other:?}"),
    }
    let spread = Spread::decide(
        &["n2".into()],
        vec![Ack {
            peer: "n2".into(),
            verdict: Verdict::Refused {
                reason: CLOCK_AHEAD,
                detail: String::new(),
            },
        }],
        4_000,
    );
    assert!(!spread.acknowledged(), "1 of 2 is short of a quorum");
    assert!(spread
        .short_of_quorum(1, 0)
        .contains("n2 refused it (clock_ahead)"));
}

#[test]
fn a_peer_whose_answer_holds_our_state_holds_it() {
    let ours = AuthState::default()
        .create_role(
            crate::security::auth::Stamp {
                ms: 5,
                n: 0,
                node: 1,
            },
            "r",
            None,
            &[("*", Perm::Read)],
        )
        .unwrap();
    let (verdict, theirs) = judge(&ours, Ok(to_message(&ours)));
    assert_eq!((verdict, theirs.is_some()), (Verdict::Holds, true));
    let stale = AuthState::default();
    let (verdict, _) = judge(&ours, Ok(to_message(&stale)));
    assert!(matches!(verdict, Verdict::Missed(_)), "{verdict:?}");
}

#[tokio::test(start_paused = true)]
async fn the_wait_ends_at_the_deadline_naming_the_peers_that_did_not_answer() {
    let (tx, rx) = mpsc::unbounded_channel();
    tx.send(Ack {
        peer: "n2".into(),
        verdict: Verdict::Holds,
    })
    .unwrap();
    let peers = vec!["n2".to_string(), "n3".to_string()];
    let started = tokio::time::Instant::now();
    let spread = collect(peers.clone(), rx, Duration::from_secs(4)).await;
    assert_eq!(started.elapsed(), Duration::from_secs(4));
    assert_eq!((spread.holding, spread.members), (2, 3));
    assert_eq!(spread.missing[0].peer, "n3");
    drop(tx);
    // Every verdict in: no wait for the deadline.
    let (tx, rx) = mpsc::unbounded_channel();
    for p in &peers {
        tx.send(Ack {
            peer: p.clone(),
            verdict: Verdict::Holds,
        })
        .unwrap();
    }
    let started = tokio::time::Instant::now();
    let spread = collect(peers, rx, Duration::from_secs(4)).await;
    assert_eq!(started.elapsed(), Duration::ZERO);
    assert_eq!(spread.holding, 3);
}

/// review-authq33 L1: only a refusal (INVALID_ARGUMENT) reads as "refused
/// it"; a failed save on the peer may have kept the change, and a shed
/// call did not take it: both are missing, labelled by kind.
#[test]
fn a_peer_error_other_than_a_refusal_is_missing_with_its_kind() {
    let ours = far_ahead();
    let failed = tonic::Status::from(crate::error::GeokvError::Internal("disk".into()));
    match judge(&ours, Err(answered(failed))).0 {
        Verdict::Missed(why) => assert!(why.starts_with("it may hold it (Internal"), "{why}"),
        other => panic!("{other:?}"),
    }
    let shed = tonic::Status::from(crate::error::GeokvError::Overloaded {
        limit: 1,
        retry_after_ms: 50,
    });
    match judge(&ours, Err(answered(shed))).0 {
        Verdict::Missed(why) => assert!(why.starts_with("it answered ResourceExhausted"), "{why}"),
        other => panic!("{other:?}"),
    }
}
