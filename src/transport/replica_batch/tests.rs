//! Each entry's result maps to the error a single `ReplicaWrite` would
//! have given; a batch that failed as a whole is "maybe applied" for every
//! entry unless it was never sent; a peer from before `ReplicaBatch`
//! (UNIMPLEMENTED) gets every entry as a single write, until the mark
//! expires.

use super::*;
use crate::error::GeokvError;
use crate::transport::status_error;
use parking_lot::Mutex;

mod gave_up;
mod limit;
mod mixed;
mod socket;

/// A status through the batch wire and back, and straight through.
fn both_ways(s: tonic::Status) -> (String, String) {
    let single = status_error("p", s.clone(), 7);
    let batched = entry_result("p", result_of(Err(s))).expect_err("an error");
    (format!("{batched:?}"), format!("{single:?}"))
}

#[test]
fn an_applied_entry_is_ok() {
    assert_eq!(result_of(Ok(())).code, 0);
    assert!(entry_result("p", result_of(Ok(()))).is_ok());
}

#[test]
fn an_entry_maps_like_a_single_call() {
    let stale: tonic::Status = GeokvError::StaleView {
        planned_on: 1,
        replica_version: 3,
    }
    .into();
    let internal: tonic::Status = GeokvError::Internal("disk".into()).into();
    let mut refused = tonic::Status::unavailable("cut");
    refused.metadata_mut().insert(
        crate::proto::APPLIED_METADATA,
        tonic::metadata::MetadataValue::from_static("no"),
    );
    // (A status without `geokv-applied`, e.g. a bare DEADLINE_EXCEEDED, is
    // the transport's when a single call gets it, and the peer's answer in
    // an entry: `an_entry_is_classified_on_its_typed_fields_not_its_text`.)
    for s in [stale.clone(), internal.clone(), refused.clone()] {
        let (batched, single) = both_ways(s);
        assert_eq!(batched, single);
    }
    let e = entry_result("p", result_of(Err(stale))).expect_err("stale");
    assert!(
        matches!(e, TransportError::StaleView { version: 3, .. }),
        "{e:?}"
    );
    assert!(e.nothing_applied());
    let e = entry_result("p", result_of(Err(internal))).expect_err("internal");
    assert!(!e.nothing_applied(), "{e:?}");
    let e = entry_result("p", result_of(Err(refused))).expect_err("refused");
    assert!(e.nothing_applied(), "{e:?}");
}

/// An entry's result is its peer's answer to it: the entry was sent, so
/// it is never "not sent" nor "no answer in time", whatever its message
/// reads; it is classified on its typed fields (code, `applied`, layout
/// version). One without `applied` (a build that sends none) may have
/// been applied; with this build's verdict, as that says.
#[test]
fn an_entry_is_classified_on_its_typed_fields_not_as_a_connection_failure() {
    let answers = [
        (
            tonic::Code::Unavailable,
            "could not connect: tcp connect error",
        ),
        (tonic::Code::Unavailable, "not sent: TLS handshake failed"),
        (tonic::Code::DeadlineExceeded, "no answer within 7 ms"),
        (tonic::Code::Cancelled, "operation was canceled"),
    ];
    for (code, message) in answers {
        let none = ReplicaBatchResult {
            code: code as i32,
            message: message.into(),
            applied: String::new(),
            layout_version: 0,
        };
        let e = entry_result("p", none.clone()).expect_err("an error");
        assert!(
            matches!(&e, TransportError::Rpc { code: c, verdict: PeerVerdict::MaybeApplied, .. }
                if c.grpc() == code),
            "{code:?} {message:?}: {e:?}"
        );
        for (applied, nothing) in [("no", true), ("maybe", false)] {
            let told = ReplicaBatchResult {
                applied: applied.into(),
                ..none.clone()
            };
            let e = entry_result("p", told).expect_err("an error");
            assert!(matches!(&e, TransportError::Rpc { .. }), "{e:?}");
            assert_eq!(e.nothing_applied(), nothing, "{applied}: {e:?}");
        }
    }
    // This build's (and every earlier batching build's) refusal of an
    // entry past its deadline: nothing applied.
    let expired = result_of(Err(GeokvError::Expired.into()));
    let e = entry_result("p", expired).expect_err("expired");
    assert!(e.nothing_applied(), "{e:?}");
}

#[test]
fn a_failed_batch_is_maybe_applied_unless_never_sent() {
    let peer = || "p".to_string();
    let sent = [
        TransportError::Timeout {
            peer: peer(),
            ms: 5,
        },
        TransportError::StaleView {
            peer: peer(),
            version: 4,
        },
        TransportError::Rpc {
            peer: peer(),
            code: tonic::Code::Unavailable.into(),
            message: "refused".into(),
            verdict: PeerVerdict::NothingApplied,
        },
        TransportError::Rpc {
            peer: peer(),
            code: tonic::Code::Internal.into(),
            message: "reset".into(),
            verdict: PeerVerdict::Unknown,
        },
    ];
    for e in sent {
        let b = batch_failed(e.clone());
        assert!(!b.nothing_applied(), "{e:?} became {b:?}");
        assert!(!matches!(b, TransportError::StaleView { .. }), "{b:?}");
    }
    let unsent = [
        TransportError::Cut { peer: peer() },
        TransportError::NotSent {
            peer: peer(),
            message: "refused".into(),
        },
    ];
    for e in unsent {
        assert!(batch_failed(e).nothing_applied());
    }
}

/// An entry counts against the lane's cap with everything it holds: key,
/// record, keyspace, coordinator, plan and trace context, not its key and
/// record alone (a write of a small record with a long keyspace and trace
/// context was counted far below what the lane held for it).
#[test]
fn an_entry_counts_against_the_lane_cap_whole() {
    let e = Entry {
        write: Arc::new(ReplicaWriteRequest {
            keyspace: "k".repeat(200),
            key: vec![1; 10].into(),
            record: vec![2; 10].into(),
            coordinator: "c".repeat(50),
            layout_version: 7,
            layout_digest: vec![3; 16].into(),
            targets: vec!["t".repeat(40); 3],
            repair: false,
        }),
        timeout_ms: 0,
        traceparent: "0".repeat(55),
        claim: Claim::default(),
    };
    let parts = 200 + 10 + 10 + 50 + 16 + 3 * 40 + 55;
    let counted = held_bytes(&e);
    assert!(counted >= parts, "{counted} < {parts}");
    assert!(counted <= 2 * parts, "{counted}: about what it holds");
}
